"""Row by row, what in a chunk of input breaks a version's data contract, and why.

The rules are the service's: a numeric field takes finite numbers, a boolean field true/false
(or 1/0), a datetime field what pandas parses as a date, a field with known categories one of
them; a missing value (an empty cell, null) is allowed everywhere and imputed by the model.
Accepted rows come back typed as the service hands them to the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.errors import DataValidationError

REASON_COLUMN = "reject_reason"
SHOWN_CHARACTERS = 40  # of a bad value, in its reason
_TRUE = frozenset({"true", "1", "1.0", "yes"})
_FALSE = frozenset({"false", "0", "0.0", "no"})


@dataclass(frozen=True)
class CheckedChunk:
    """A chunk split into the rows the model scores and the rows it rejects, with reasons."""

    accepted: pd.Series  # bool per input row
    features: pd.DataFrame  # the accepted rows' model inputs, in the contract's column order
    rejected: pd.DataFrame  # the rejected input rows as read, plus REASON_COLUMN


def required_columns(fields: Mapping[str, Mapping[str, Any]], columns: list[str],
                     source: str) -> None:
    """Fail when the input lacks a column the model reads (its rows cannot be scored at all).

    Raises:
        DataValidationError: naming the missing columns and the source.
    """
    missing = [name for name, spec in fields.items()
               if not spec.get("optional") and name not in columns]
    if missing:
        raise DataValidationError(f"{source} lacks the model's input columns {missing}; "
                                  "add them (empty cells are allowed) or score with the model "
                                  "they belong to")


def _shown(values: pd.Series) -> pd.Series:
    return values.astype(str).str.slice(0, SHOWN_CHARACTERS).map(repr)


def _python_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


Reasons = list[pd.Series]  # per broken field, the reason of each row that breaks it (only those)


def _why(column: pd.Series, broken: pd.Series, name: str, problem: str) -> Reasons:
    if not broken.any():
        return []
    return [f"{name}: " + _shown(column[broken]) + f" {problem}"]


def _numeric(column: pd.Series, name: str) -> tuple[pd.Series, Reasons]:
    if column.dtype == bool:
        column = column.astype(float)
    if column.dtype.kind in "fiu":  # typed input (Parquet): only infinities can be wrong
        numbers = column.astype(float)
        unreadable = pd.Series(False, index=column.index)
    else:
        numbers = pd.to_numeric(column, errors="coerce").astype(float)
        unreadable = column.notna() & numbers.isna()
        if unreadable.any():  # pandas gives up on what overflows a float; Python says inf
            numbers[unreadable] = column[unreadable].map(_python_float)
            unreadable = column.notna() & numbers.isna()
    infinite = pd.Series(np.isinf(numbers.to_numpy()), index=column.index)
    return (numbers.mask(infinite) if infinite.any() else numbers,
            _why(column, unreadable, name, "is not a number")
            + _why(column, infinite, name, "is not a finite number"))


def _boolean(column: pd.Series, name: str) -> tuple[pd.Series, Reasons]:
    if column.dtype == bool:
        return column.astype(object), []
    text = column.astype(str).str.strip().str.lower()
    values = pd.Series(None, index=column.index, dtype=object)
    values[text.isin(_TRUE)] = True
    values[text.isin(_FALSE)] = False
    unreadable = column.notna() & values.isna()
    return (values.where(column.notna(), None),
            _why(column, unreadable, name, "is not true or false"))


def _datetime(column: pd.Series, name: str) -> tuple[pd.Series, Reasons]:
    # parsed as the model's DatetimeExpander parses it; the model gets the value as given
    stamps = pd.to_datetime(column, errors="coerce", format="mixed", utc=True)
    unreadable = column.notna() & stamps.isna()
    return (column.astype(object).where(column.notna(), None),
            _why(column, unreadable, name, "is not a date and time"))


def _text(column: pd.Series, name: str, categories: list[str] | None
          ) -> tuple[pd.Series, Reasons]:
    given = column.notna()
    text = column.astype(str).where(given, None)
    if not categories:
        return text, []
    unknown = given & ~text.isin(categories)
    known = ", ".join(categories[:10]) + (", ..." if len(categories) > 10 else "")
    return text, _why(column, unknown, name, f"is not a known category ({known})")


def check_chunk(chunk: pd.DataFrame, fields: Mapping[str, Mapping[str, Any]]) -> CheckedChunk:
    """Check every row of a chunk against the contract's fields.

    Args:
        chunk: Input rows (CSV read as text, or typed Parquet); required columns present.
        fields: The version's serving fields (name -> kind, categories, optional).

    Returns:
        The accepted rows' model inputs and the rejected rows with their reasons (every broken
        field of a row named, separated by "; ").
    """
    inputs = {}
    reasons: Reasons = []
    for name, spec in fields.items():
        if name not in chunk.columns:  # an optional column: the model does not read it
            inputs[name] = pd.Series(None, index=chunk.index, dtype=object)
            continue
        column = chunk[name]
        if spec.get("optional"):
            inputs[name] = column
            continue
        if spec["kind"] == "numeric":
            values, why = _numeric(column, name)
        elif spec["kind"] == "boolean":
            values, why = _boolean(column, name)
        elif spec["kind"] == "datetime":
            values, why = _datetime(column, name)
        else:
            values, why = _text(column, name, spec.get("categories"))
        inputs[name] = values
        reasons += why
    features = pd.DataFrame(inputs, index=chunk.index)
    if not reasons:
        accepted = pd.Series(True, index=chunk.index)
        return CheckedChunk(accepted, features, chunk.iloc[:0].assign(**{REASON_COLUMN: ""}))
    # every broken field of a row, in the fields' order
    joined = pd.concat(reasons).groupby(level=0, sort=False).agg("; ".join)
    accepted = pd.Series(~chunk.index.isin(joined.index), index=chunk.index)
    rejected = chunk[~accepted].assign(**{REASON_COLUMN: joined})
    return CheckedChunk(accepted, features[accepted], rejected)
