"""A streaming drift engine with Evidently's default per-column tests and thresholds.

The current window is read in chunks and reduced to counts against the reference points
(and per-gap sums for the Wasserstein distance), so memory does not grow with the window.
Test choice follows Evidently 0.7's defaults: a reference of at most 1,000 rows uses
p-value tests (KS for numeric columns with more than 5 values, chi-square above 2 values,
else a two-proportion Z test; drift when p < 0.05); a larger reference uses distances
(Wasserstein normed by the reference std for numeric columns with more than 5 values,
else Jensen-Shannon; drift when >= 0.1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from kubecycle.reference import ColumnReference, ReferenceStats

P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
KEEP_RAW = 10_000  # scipy's ks_2samp is exact up to this size: keep that many values
LOW_CARDINALITY = 5  # Evidently's switch from KS/Wasserstein to counting tests
SUBDIVISIONS = 8  # finer gaps between reference points for the Wasserstein integral


@dataclass
class ColumnDrift:
    """One column's drift test: which test, its score and threshold, and the verdict."""

    column: str
    kind: str
    test: str  # ks | chisquare | z | wasserstein | jensenshannon | empty
    score: float
    threshold: float
    drifted: bool
    rows: int
    missing_share: float

    def to_dict(self) -> dict:
        """The column's result as a JSON-ready dict."""
        return asdict(self)


def _refine(points: np.ndarray, weights: np.ndarray, refine: bool) -> tuple[np.ndarray, np.ndarray]:
    """Add SUBDIVISIONS-1 zero-weight points inside every gap between reference points.

    Counts and sums per finer gap make the Wasserstein integral nearly exact where the two
    CDFs cross (low-cardinality columns keep their exact value points).
    """
    if not refine or len(points) < 2:
        return points, weights
    steps = np.linspace(0, 1, SUBDIVISIONS + 1)[:-1]
    fine = (points[:-1, None] + np.diff(points)[:, None] * steps[None, :]).ravel()
    fine_weights = np.zeros((len(points) - 1, SUBDIVISIONS))
    fine_weights[:, 0] = weights[:-1]
    return np.append(fine, points[-1]), np.append(fine_weights.ravel(), weights[-1])


class NumericWindow:
    """Counts of a numeric column's current values against the reference points."""

    def __init__(self, reference: ColumnReference) -> None:
        self.reference = reference
        # quantile points of a huge reference are approximate already: no refinement there
        self.points, self.weights = _refine(np.asarray(reference.points, dtype=float),
                                            np.asarray(reference.weights, dtype=float),
                                            reference.exact and reference.distinct > LOW_CARDINALITY)
        size = len(self.points)
        self.equal = np.zeros(size, dtype=np.int64)
        self.gap_count = np.zeros(size + 1, dtype=np.int64)
        self.gap_sum = np.zeros(size + 1, dtype=float)
        # values the reference lacks, counted only while the union may stay <= LOW_CARDINALITY
        self.new_values: dict[float, int] | None = (
            {} if reference.distinct <= LOW_CARDINALITY else None)
        self.raw: list[np.ndarray] = []
        self.rows = 0
        self.nulls = 0

    def add(self, values: np.ndarray) -> None:
        """Count a chunk's values against the reference points (missing values apart)."""
        values = np.asarray(values, dtype=float)
        missing = ~np.isfinite(values)
        self.nulls += int(missing.sum())
        values = values[~missing]
        self.rows += len(values)
        if self.rows <= KEEP_RAW:
            self.raw.append(values)
        elif self.raw:
            self.raw = []
        if not len(self.points):  # an all-empty reference column: nothing to bin against
            return
        left = np.searchsorted(self.points, values, side="left")
        hit = self.points[np.minimum(left, len(self.points) - 1)] == values
        self.equal += np.bincount(left[hit], minlength=len(self.points))
        gaps, gap_values = left[~hit], values[~hit]
        self.gap_count += np.bincount(gaps, minlength=len(self.points) + 1)
        self.gap_sum += np.bincount(gaps, weights=gap_values, minlength=len(self.points) + 1)
        if self.new_values is not None and len(gap_values):
            distinct, counts = np.unique(gap_values, return_counts=True)
            if len(distinct) > LOW_CARDINALITY:
                self.new_values = None
                return
            for value, count in zip(distinct.tolist(), counts.tolist(), strict=True):
                self.new_values[value] = self.new_values.get(value, 0) + count
            if len(self.new_values) > LOW_CARDINALITY:
                self.new_values = None

    def distinct_union(self) -> int:
        """Distinct values of reference and current together (capped above 5)."""
        if self.new_values is None:
            return self.reference.distinct + LOW_CARDINALITY + 1
        return self.reference.distinct + len(self.new_values)

    def value_counts(self) -> tuple[dict[float, float], dict[float, float]]:
        """Reference and current counts per value (only for low-cardinality columns)."""
        ref = {p: w * self.reference.rows for p, w in
               zip(self.points.tolist(), self.weights.tolist(), strict=True)}
        cur = {p: float(c) for p, c in zip(self.points.tolist(), self.equal.tolist(), strict=True)}
        for value, count in (self.new_values or {}).items():
            ref.setdefault(value, 0.0)
            cur[value] = float(count)
        return ref, cur

    def ks_statistic(self) -> float:
        """The KS statistic sup |F_ref - F_cur|, computed exactly.

        The supremum lies at a reference point or just below one.
        """
        n = self.rows
        ref_cdf = np.cumsum(self.weights)
        before = np.cumsum(self.gap_count[:-1]) + np.concatenate([[0], np.cumsum(self.equal)[:-1]])
        at = before + self.equal
        below = np.abs(np.concatenate([[0.0], ref_cdf[:-1]]) - before / n)
        at_or_below = np.abs(ref_cdf - at / n)
        return float(max(below.max(initial=0), at_or_below.max(initial=0)))

    def wasserstein(self) -> float:
        """First Wasserstein distance, exact except inside gaps where the two CDFs cross.

        There the current values are taken as spread evenly.
        """
        n, points = self.rows, self.points
        ref_cdf = np.concatenate([[0.0], np.cumsum(self.weights)])  # per gap
        # current values up to and including each gap's left point
        cum_before_gap = (np.concatenate([[0], np.cumsum(self.gap_count)[:-1]])
                          + np.concatenate([[0], np.cumsum(self.equal)]))
        # tails: below the first point F_ref = 0, above the last F_ref = 1
        total = (self.gap_count[0] * points[0] - self.gap_sum[0]) / n
        total += (self.gap_sum[-1] - self.gap_count[-1] * points[-1]) / n
        if len(points) > 1:
            a, b = points[:-1], points[1:]
            width = b - a
            ref = ref_cdf[1:-1]
            start = cum_before_gap[1:-1] / n
            count = self.gap_count[1:-1]
            end = start + count / n
            area = (count * b - self.gap_sum[1:-1]) / n  # integral of the rise within the gap
            above = (start - ref) * width + area  # F_cur >= F_ref over the whole gap
            below = (ref - start) * width - area  # F_cur <= F_ref over the whole gap
            crossing = (start < ref) & (end > ref)
            frac = np.where(crossing, (ref - start) / np.where(end > start, end - start, 1), 0)
            crossed = width * ((ref - start) * frac / 2 + (end - ref) * (1 - frac) / 2)
            total += float(np.where(start >= ref, above, np.where(end <= ref, below, crossed)).sum())
        return float(total)


class CategoricalWindow:
    """Counts of a categorical column's current values, per category."""

    def __init__(self, reference: ColumnReference) -> None:
        self.reference = reference
        self.counts: dict[str, int] = {}
        self.rows = 0
        self.nulls = 0

    def add(self, values: pd.Series) -> None:
        """Count a chunk's values per category (missing values apart)."""
        self.nulls += int(values.isna().sum())
        present = values.dropna()
        self.rows += len(present)
        for key, count in present.value_counts().items():  # count first, then name: cheaper
            self.counts[str(key)] = self.counts.get(str(key), 0) + int(count)

    def distinct_union(self) -> int:
        """Distinct categories of reference and current together."""
        return len(set(self.reference.counts) | set(self.counts))

    def value_counts(self) -> tuple[dict[str, float], dict[str, float]]:
        """Reference and current counts per category, over the categories of both."""
        keys = set(self.reference.counts) | set(self.counts)
        return ({k: float(self.reference.counts.get(k, 0)) for k in keys},
                {k: float(self.counts.get(k, 0)) for k in keys})


def _chisquare(ref: dict, cur: dict) -> float:
    from scipy.stats import chisquare

    keys = list(ref)
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    expected = [ref[k] * n_cur / n_ref for k in keys]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(chisquare([cur[k] for k in keys], expected)[1])


def _z_test(ref: dict, cur: dict) -> float:
    from scipy.stats import norm

    keys = sorted(ref, key=lambda k: (str(type(k)), k))
    if len(keys) == 1:
        return 1.0
    n1, n2 = sum(ref.values()), sum(cur.values())
    p1 = (n1 - ref[keys[0]]) / n1
    p2 = (n2 - cur[keys[0]]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z))))


def _jensenshannon(ref: dict, cur: dict) -> float:
    from scipy.spatial import distance

    keys = list(ref)
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    return float(distance.jensenshannon([ref[k] / n_ref for k in keys],
                                        [cur[k] / n_cur for k in keys]))


def _ks_pvalue(window: NumericWindow) -> float:
    from scipy import stats

    if window.raw:  # small window: scipy's own (exact) test on the same values
        reference = np.repeat(np.asarray(window.reference.points), np.round(
            np.asarray(window.reference.weights) * window.reference.rows).astype(int))
        return float(stats.ks_2samp(reference, np.concatenate(window.raw))[1])
    m, n = sorted([float(window.reference.rows), float(window.rows)], reverse=True)
    return float(np.clip(stats.kstwo.sf(window.ks_statistic(), np.round(m * n / (m + n))), 0, 1))


def column_drift(window: NumericWindow | CategoricalWindow) -> ColumnDrift:
    """The drift test Evidently would pick for this column, and its verdict."""
    reference = window.reference
    total = window.rows + window.nulls
    missing = window.nulls / total if total else 1.0

    def verdict(test: str, score: float) -> ColumnDrift:
        if test in ("ks", "chisquare", "z"):
            drifted = bool(score < P_VALUE_THRESHOLD)
            threshold = P_VALUE_THRESHOLD
        else:
            drifted = bool(score >= DISTANCE_THRESHOLD)
            threshold = DISTANCE_THRESHOLD
        return ColumnDrift(reference.name, reference.kind, test, score, threshold, drifted,
                           window.rows, missing)

    if window.rows == 0 or reference.rows == 0:
        return ColumnDrift(reference.name, reference.kind, "empty", float("nan"), 0.0, False,
                           window.rows, missing)
    distinct = window.distinct_union()
    counting = reference.kind == "categorical" or distinct <= LOW_CARDINALITY
    if reference.small:
        if not counting:
            return verdict("ks", _ks_pvalue(window))
        ref, cur = window.value_counts()
        if distinct > 2:
            return verdict("chisquare", _chisquare(ref, cur))
        return verdict("z", _z_test(ref, cur))
    if counting:
        return verdict("jensenshannon", _jensenshannon(*window.value_counts()))
    return verdict("wasserstein", window.wasserstein() / max(reference.std, 0.001))


@dataclass
class DriftResult:
    """The drift of every checked column and whether they add up to dataset drift."""

    columns: dict[str, ColumnDrift]
    drift_share: float  # threshold: share of drifted columns that means dataset drift
    rows: int

    @property
    def drifted_columns(self) -> list[str]:
        """The names of the columns that drifted."""
        return [name for name, col in self.columns.items() if col.drifted]

    @property
    def share(self) -> float:
        """The share of checked columns that drifted."""
        return len(self.drifted_columns) / max(len(self.columns), 1)

    @property
    def dataset_drift(self) -> bool:
        """Whether the drifted share reaches drift_share."""
        return self.share >= self.drift_share

    def to_dict(self) -> dict:
        """The result as a JSON-ready dict, with the share and drifted columns."""
        return {"rows": self.rows, "drift_share": self.drift_share, "share": self.share,
                "dataset_drift": self.dataset_drift, "drifted_columns": self.drifted_columns,
                "columns": {name: col.to_dict() for name, col in self.columns.items()}}


class DriftEngine:
    """Feed the current window chunk by chunk, then ask for the result."""

    def __init__(self, reference: ReferenceStats, drift_share: float = 0.5) -> None:
        self.drift_share = drift_share
        self.windows = {name: (NumericWindow(col) if col.kind == "numeric"
                               else CategoricalWindow(col))
                        for name, col in reference.columns.items()}
        self.rows = 0

    def add(self, chunk: pd.DataFrame) -> None:
        """Feed one chunk of the window to every column's counts."""
        self.rows += len(chunk)
        for name, window in self.windows.items():
            column = chunk[name]
            if isinstance(window, NumericWindow):
                window.add(pd.to_numeric(column, errors="coerce").to_numpy(dtype=float))
            else:
                window.add(column)

    def result(self) -> DriftResult:
        """Test every column on what was fed so far."""
        return DriftResult({name: column_drift(w) for name, w in self.windows.items()},
                           self.drift_share, self.rows)
