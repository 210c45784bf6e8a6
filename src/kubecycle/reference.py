"""Reference statistics, computed once from the registered reference sample.

Shared by two stages: register computes them with each version, monitor bins the current
window against them.

Numeric columns keep their exact sorted distinct values (or, for very large references,
quantile points), so the current window can be binned against them and the drift tests
computed from counts; categorical columns keep their value counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.contract import DriftKind, column_kind, drift_kind

MAX_EXACT_POINTS = 20_000  # above this many distinct values, quantile points stand in
QUANTILE_POINTS = 5_000
SMALL_REFERENCE = 1_000  # Evidently switches from p-value tests to distances above this


@dataclass
class ColumnReference:
    """One column's reference statistics: value points and weights, or category counts."""

    name: str
    kind: str  # "numeric" | "categorical" (Evidently's Numerical / Categorical)
    rows: int  # non-null reference rows
    distinct: int
    points: list[float] = field(default_factory=list)  # sorted distinct values / quantiles
    weights: list[float] = field(default_factory=list)  # reference share at each point
    exact: bool = True  # points hold every distinct value with its exact share
    std: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)  # categorical value counts

    @property
    def small(self) -> bool:
        """Whether the reference is small enough for p-value tests (at most SMALL_REFERENCE rows)."""
        return self.rows <= SMALL_REFERENCE


@dataclass
class ReferenceStats:
    """The reference statistics of every column, by name."""

    columns: dict[str, ColumnReference]

    def to_dict(self) -> dict[str, Any]:
        """The statistics as a JSON-ready dict."""
        return {"columns": {name: asdict(col) for name, col in self.columns.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceStats:
        """Read the statistics from the dict to_dict wrote."""
        return cls({name: ColumnReference(**col) for name, col in data["columns"].items()})


def category_key(values: pd.Series) -> pd.Series:
    """Categorical values as the strings both sides are counted by."""
    return values.astype(str)


def column_reference(series: pd.Series, kind: DriftKind | None = None) -> ColumnReference:
    """Reference statistics of one column, tested for drift as `kind`.

    The default kind is what the contract's kind of the column says.
    """
    kind = kind or drift_kind(column_kind(series))
    values = series.dropna()
    if kind == "categorical":
        counts = category_key(values).value_counts()
        return ColumnReference(series.name, kind, len(values), len(counts),
                               counts={str(k): int(v) for k, v in counts.items()})
    array = values.to_numpy(dtype=float)
    distinct, counts = np.unique(array, return_counts=True)
    reference = ColumnReference(series.name, kind, len(array), len(distinct),
                                std=float(np.std(array)) if len(array) else 0.0)
    if len(distinct) <= MAX_EXACT_POINTS:
        reference.points = distinct.tolist()
        reference.weights = (counts / max(len(array), 1)).tolist()
    else:
        reference.points = np.quantile(array, np.linspace(0, 1, QUANTILE_POINTS)).tolist()
        reference.weights = [1.0 / QUANTILE_POINTS] * QUANTILE_POINTS
        reference.exact = False
    return reference


def build_reference(frame: pd.DataFrame, columns: list[str] | None = None,
                    kinds: dict[str, DriftKind] | None = None) -> ReferenceStats:
    """Statistics of the given columns (default: all) of the reference frame.

    Each column is tested for drift as kinds says (default: as its contract kind says).
    """
    kinds = kinds or {}
    names = columns if columns is not None else list(frame.columns)
    return ReferenceStats({name: column_reference(frame[name], kinds.get(name))
                           for name in names})
