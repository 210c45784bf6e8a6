"""The data contract: what the data is, and what the model reads of it.

validate infers it (`infer_contract`); features records which columns the model uses and which
it dropped, and why (`DataContract.with_inputs`); the registry keeps it with each version;
explore, package (request fields, ONNX feed, service) and monitoring read it. A column's kind
is decided here, by `column_kind`, and nowhere else.

Copied into every bento (the service reads the request fields with it): pandas is imported
only by the functions that look at data.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

ColumnKind = Literal["numeric", "boolean", "datetime", "categorical"]
DriftKind = Literal["numeric", "categorical"]  # Evidently's Numerical / Categorical
MAX_CONTRACT_CATEGORIES = 200  # a categorical column keeps its levels up to this many
DATETIME_PARSE_SHARE = 0.95  # text is a datetime when this share of a sample parses
DATETIME_TEXT_LENGTH = (6, 40)  # only text of these lengths is tried as a date


def column_kind(series: pd.Series) -> ColumnKind:
    """The kind of a column, from its dtype and, for text, its values.

    Args:
        series: The column, with numpy dtypes (see validate's numpy_dtypes).

    Returns:
        numeric, boolean (bool dtype, or booleans with missing values), datetime (datetime
        dtype, or text of which 95% parses as dates) or categorical (anything else).
    """
    import pandas as pd
    from pandas.api import types as ptypes

    if ptypes.is_bool_dtype(series):
        return "boolean"
    if ptypes.is_numeric_dtype(series):
        return "numeric"
    if ptypes.is_datetime64_any_dtype(series):
        return "datetime"
    values = series.dropna()
    if len(values) and ptypes.infer_dtype(values, skipna=True) == "boolean":
        return "boolean"
    shortest, longest = DATETIME_TEXT_LENGTH
    if len(values) and values.map(type).eq(str).all() and values.str.len().between(
            shortest, longest).all():
        sample = values.sample(min(len(values), 500), random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if parsed.notna().mean() >= DATETIME_PARSE_SHARE:
            return "datetime"
    return "categorical"


def drift_kind(kind: ColumnKind) -> DriftKind:
    """How drift is tested for a column kind: numeric columns as numbers, the rest by counts.

    Booleans, datetimes and text are all tested by counts.
    """
    return "numeric" if kind == "numeric" else "categorical"


@dataclass(frozen=True)
class ColumnSpec:
    """One column as validate saw it."""

    kind: ColumnKind
    dtype: str
    nullable: bool
    missing_share: float
    unique: int
    min: float | None = None  # numeric columns
    max: float | None = None
    categories: list[str] | None = None  # categorical columns with at most 200 levels

    @property
    def integral(self) -> bool:
        """Whether the column holds integers (an integer dtype)."""
        return self.dtype.startswith(("int", "uint"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (keys without a value are left out)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def of(cls, series: pd.Series) -> ColumnSpec:
        """The spec of a column: its kind, dtype, missing values, range or categories."""
        kind = column_kind(series)
        values = series.dropna()
        spec = cls(kind, str(series.dtype), bool(series.isna().any()),
                   round(float(series.isna().mean()), 6), int(series.nunique(dropna=True)))
        if kind == "numeric" and len(values):
            return replace(spec, min=float(values.min()), max=float(values.max()))
        if kind == "categorical":
            levels = values.astype(str).value_counts()
            if len(levels) <= MAX_CONTRACT_CATEGORIES:
                return replace(spec, categories=sorted(levels.index.tolist()))
        return spec


@dataclass(frozen=True)
class DataContract:
    """The columns of a data set, its target and task, and the model's inputs.

    `dropped` is empty until the feature plan decided (and for versions registered before it
    was recorded): then every feature column is an input.
    """

    target: str | None
    task: str
    rows: int
    columns: dict[str, ColumnSpec]
    classes: list[str] | None = None
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why the model ignores it

    @property
    def features(self) -> list[str]:
        """Every column but the target."""
        return [name for name in self.columns if name != self.target]

    @property
    def inputs(self) -> list[str]:
        """The feature columns the model reads (the feature plan kept them)."""
        return [name for name in self.features if name not in self.dropped]

    def with_inputs(self, dropped: dict[str, str]) -> DataContract:
        """This contract with the feature plan's decisions: the columns it dropped, and why.

        Entries that are not columns, such as notes on selection, are left out.
        """
        return replace(self, dropped={name: reason for name, reason in dropped.items()
                                      if name in self.columns and name != self.target})

    def serving_fields(self) -> dict[str, dict[str, Any]]:
        """The request fields of the service: every feature column with its kind and categories.

        Each field also says whether a request must carry it (dropped columns are optional).
        """
        fields = {}
        for name in self.features:
            spec = self.columns[name]
            fields[name] = {"kind": spec.kind,
                            **({"categories": spec.categories} if spec.categories else {}),
                            **({"optional": True} if name in self.dropped else {})}
        return fields

    def drift_kinds(self) -> dict[str, DriftKind]:
        """How each column is tested for drift."""
        return {name: drift_kind(spec.kind) for name, spec in self.columns.items()}

    def violations(self, frame: pd.DataFrame) -> list[str]:
        """What in the data breaks this contract: missing columns and changed kinds (empty: none).

        A missing target is not a violation (unlabelled data), nor is a missing column the model
        does not read; new categories and out-of-range values are not either (the model handles
        them, monitoring reports them).
        """
        found = []
        for name, spec in self.columns.items():
            if name not in frame.columns:
                if name != self.target and name not in self.dropped:
                    found.append(f"column {name!r} is missing")
                continue
            kind = column_kind(frame[name])
            if frame[name].notna().any() and kind != spec.kind and not (
                    {kind, spec.kind} <= {"numeric", "boolean"}):
                found.append(f"column {name!r} is {kind}, the contract says {spec.kind}")
        return found

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (contract/contract.json of a registered version)."""
        data: dict[str, Any] = {"target": self.target, "task": self.task, "rows": self.rows,
                                "columns": {n: s.to_dict() for n, s in self.columns.items()}}
        if self.classes is not None:
            data["classes"] = self.classes
        if self.dropped:
            data["dropped"] = self.dropped
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataContract:
        """Read the JSON form (also of contracts registered before `dropped` existed)."""
        return cls(data.get("target"), data["task"], int(data.get("rows", 0)),
                   {name: ColumnSpec(**spec) for name, spec in data["columns"].items()},
                   data.get("classes"), dict(data.get("dropped", {})))


def infer_contract(frame: pd.DataFrame, target: str | None, task: str) -> DataContract:
    """Infer the contract of a cleaned data set.

    It records per column its kind, dtype, missing values, range or categories, and the classes
    of a classification target.
    """
    classes = None
    if task == "classification" and target is not None:
        classes = sorted(frame[target].dropna().astype(str).unique().tolist())
    return DataContract(target, task, len(frame),
                        {name: ColumnSpec.of(frame[name]) for name in frame.columns}, classes)
