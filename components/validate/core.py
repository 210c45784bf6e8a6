"""Row cleaning, numpy dtypes and task inference (the contract itself: kubecycle.contract)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd
from pandas.api import types as ptypes

from kubecycle.catalog import Task
from kubecycle.contract import DataContract, infer_contract
from kubecycle.errors import DataValidationError

MAX_CLASSIFICATION_LEVELS = 20  # integer targets with at most this many levels are classes


def numpy_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Convert pandas extension dtypes to numpy ones (what every stage and Evidently read).

    Nullable integers and floats become int64 (no missing value) or float64 with NaN, nullable
    booleans bool or objects with None, strings and categories objects with None;
    timezone-aware datetimes stay; decimal objects become float64, date objects datetime64.
    """
    converted = {}
    for name in frame.columns:
        series = frame[name]
        dtype = series.dtype
        if ptypes.is_object_dtype(dtype):
            values = _typed_objects(series)
            if values is not None:
                converted[name] = values
            continue
        if isinstance(dtype, pd.DatetimeTZDtype) or not ptypes.is_extension_array_dtype(dtype):
            continue
        complete = not series.isna().any()
        if isinstance(dtype, pd.CategoricalDtype):
            values = series.astype(object)
        elif ptypes.is_bool_dtype(dtype):
            values = series.astype(bool if complete else object)
        elif ptypes.is_integer_dtype(dtype) and complete:
            values = series.astype("int64")
        elif ptypes.is_numeric_dtype(dtype):
            values = series.astype("float64")
        else:
            values = series.astype(object)
        converted[name] = values.where(values.notna(), None) if values.dtype == object else values
    if not converted:
        return frame
    frame = frame.copy()  # the caller's frame stays as it was
    for name, values in converted.items():
        frame[name] = values
    return frame


def _typed_objects(series: pd.Series) -> pd.Series | None:
    """Convert an object column of decimals or dates to float64 or datetime64.

    Decimals (Parquet decimal columns) become float64, dates and datetimes (SQL DATE columns)
    datetime64; None when the column is something else.
    """
    inferred = ptypes.infer_dtype(series, skipna=True)
    if inferred == "decimal":
        return series.astype("float64")
    if inferred in ("date", "datetime"):
        aware = any(getattr(value, "tzinfo", None) is not None for value in series.dropna())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # offsets that differ between values become UTC
            return pd.to_datetime(series, errors="coerce", utc=aware)
    return None


def infer_task(frame: pd.DataFrame, target: str | None) -> Task:
    """Infer the task: clustering without a target, classification for text/boolean or few integer levels.

    Any other numeric target means regression.
    """
    if target is None:
        return "clustering"
    labels = frame[target].dropna()
    if not ptypes.is_numeric_dtype(labels) or ptypes.is_bool_dtype(labels):
        return "classification"
    integral = bool((labels == labels.round()).all())
    if integral and labels.nunique() <= MAX_CLASSIFICATION_LEVELS:
        return "classification"
    return "regression"


@dataclass
class CleanResult:
    """The cleaned table, its task and data contract, and how many rows cleaning dropped."""

    frame: pd.DataFrame
    task: Task
    dropped_duplicates: int
    dropped_missing_target: int
    contract: DataContract


def _drop_configured(frame: pd.DataFrame, target: str | None,
                     drop_columns: list[str] | None) -> pd.DataFrame:
    """The frame without data.drop_columns, after checking those and the target exist."""
    unknown = [c for c in drop_columns or [] if c not in frame.columns]
    if unknown:
        raise DataValidationError(
            f"data.drop_columns names {unknown}, which the data lacks; "
            f"available columns: {list(frame.columns)}")
    frame = frame.drop(columns=list(drop_columns or []))
    if target is not None and target not in frame.columns:
        raise DataValidationError(
            f"target column {target!r} not found; data.target must be one of {list(frame.columns)}")
    if frame.empty:
        raise DataValidationError("the data set is empty; give a source with rows")
    return frame


def _check_columns(frame: pd.DataFrame, target: str | None, missing_target: int) -> None:
    """Refuse a table left without rows, with an all-empty column, or without features."""
    if frame.empty:
        raise DataValidationError(
            f"no rows left after dropping {missing_target} rows without a target {target!r}; "
            "the target column is empty")
    empty_columns = [c for c in frame.columns if frame[c].isna().all()]
    if empty_columns:
        raise DataValidationError(
            f"column(s) {empty_columns} hold no values at all; add them to data.drop_columns "
            "or fix the source")
    if len([c for c in frame.columns if c != target]) == 0:
        raise DataValidationError("the data has no feature columns besides the target")


def _check_target(labels: pd.Series, target: str, task: Task) -> None:
    """Refuse a single-class classification target or a non-numeric regression target."""
    if task == "classification" and labels.nunique() < 2:
        raise DataValidationError(
            f"target {target!r} has a single class ({labels.iloc[0]!r}); "
            "classification needs at least two")
    if task == "regression" and (not ptypes.is_numeric_dtype(labels)
                                 or ptypes.is_bool_dtype(labels)):
        raise DataValidationError(
            f"target {target!r} is not numeric (dtype {labels.dtype}), so it cannot be "
            "regressed; set task: classification or pick a numeric target")


def clean(
    frame: pd.DataFrame,
    target: str | None,
    task: Task | None = None,
    drop_columns: list[str] | None = None,
) -> CleanResult:
    """Drop configured columns, duplicate rows and rows without a target; check the result.

    Args:
        frame: The ingested table.
        target: The target column (None: clustering).
        task: The configured task (None: inferred from the target).
        drop_columns: data.drop_columns.

    Returns:
        The cleaned rows (numpy dtypes), the task, the counts of dropped rows and the contract.

    Raises:
        DataValidationError: a missing target column, an empty table, an all-empty column, a
            single-class target or a non-numeric regression target.
    """
    frame = _drop_configured(frame, target, drop_columns)
    before = len(frame)
    frame = frame.drop_duplicates()
    duplicates = before - len(frame)
    missing_target = 0
    if target is not None:
        keep = frame[target].notna()
        missing_target = int((~keep).sum())
        frame = frame[keep]
    frame = numpy_dtypes(frame)
    _check_columns(frame, target, missing_target)
    task = task or infer_task(frame, target)
    if target is not None:
        _check_target(frame[target], target, task)
    frame = frame.reset_index(drop=True)
    return CleanResult(frame=frame, task=task, dropped_duplicates=duplicates,
                       dropped_missing_target=missing_target,
                       contract=infer_contract(frame, target, task))
