"""Realized performance: the model's metrics on its logged predictions once their labels arrived.

The inference log is read in chunks and joined with the label store (by request id, or by the
configured id columns for labels without one), then grouped into time chunks of the
predictions' timestamps. Each pass recomputes every chunk from the whole log and every label
received so far, so a chunk whose labels came late is filled in (backfilled) by a later pass.
Per chunk: predictions, labelled predictions, label coverage, mean label delay and the task's
metrics (bounded counters, kubecycle.monitoring.quality.ModelQuality).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from kubecycle.errors import DataValidationError
from kubecycle.monitoring.labels import LABEL, RECEIVED, LabelJoiner
from kubecycle.monitoring.quality import ModelQuality
from kubecycle.monitoring.window import TIMESTAMP_COLUMN, read_window

PREDICTION = "prediction"


@dataclass
class ChunkPerformance:
    """One time chunk: its start, predictions, labelled ones, coverage, delay and metrics."""

    start: str
    predictions: int = 0
    labelled: int = 0
    delay_hours: float | None = None  # mean time from prediction to label
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """The share of the chunk's predictions that have a label."""
        return self.labelled / self.predictions if self.predictions else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {**asdict(self), "coverage": round(self.coverage, 6)}


@dataclass(frozen=True)
class RealizedPerformance:
    """Every chunk, the newest one with enough labels, and how it compares with the floor."""

    metric: str
    chunks: list[ChunkPerformance]
    latest: ChunkPerformance | None  # newest chunk with at least min_labels labels
    floor: float | None
    below_floor: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (summary.json's `realized`)."""
        return {"metric": self.metric, "floor": self.floor, "below_floor": self.below_floor,
                "latest": self.latest.to_dict() if self.latest else None,
                "chunks": [c.to_dict() for c in self.chunks]}

    def reason(self) -> str:
        """Why the floor calls for retraining ("" when it does not)."""
        if not self.below_floor or self.latest is None:
            return ""
        return (f"realized {self.metric} {self.latest.metrics[self.metric]:.4g} on the "
                f"{self.latest.labelled} labelled predictions from {self.latest.start} is "
                f"past the floor {self.floor:g}")


def realized_performance(log: str, labels: pd.DataFrame, *, task: str, metric: str,
                         greater_is_better: bool, chunk: timedelta, min_labels: int,
                         floor: float | None, id_columns: list[str], now: datetime
                         ) -> RealizedPerformance:
    """The metrics of the logged predictions per time chunk, with the labels received by `now`.

    Args:
        log: The inference log (folder or URI) with timestamp and prediction columns.
        labels: The label store's labels (kubecycle.monitoring.labels.read_labels).
        task: classification or regression.
        metric: The metric compared with the floor (accuracy, f1, rmse or mae).
        greater_is_better: Whether a larger value of the metric is better.
        chunk: The length of a time chunk.
        min_labels: Labels a chunk needs before its metrics count.
        floor: The worst acceptable value of the metric (None: no floor).
        id_columns: Columns joining labels that have no request id.
        now: Labels received later are not used (a pass as of then).
    """
    labels = labels[pd.to_datetime(labels[RECEIVED], utc=True) <= now] if len(labels) else labels
    joiner = LabelJoiner(labels, id_columns)
    size = pd.Timedelta(chunk)
    counts: dict[pd.Timestamp, list[float]] = {}  # start -> predictions, labelled, delay sum
    qualities: dict[pd.Timestamp, ModelQuality] = {}
    for part in read_window(log, now=now):
        missing = [c for c in (TIMESTAMP_COLUMN, PREDICTION) if c not in part.columns]
        if missing:
            raise DataValidationError(f"realized performance needs the inference log's "
                                      f"{missing} columns; {log} has none")
        stamps = pd.to_datetime(part[TIMESTAMP_COLUMN], utc=True)
        part, stamps = part[stamps <= now], stamps[stamps <= now]  # as of `now`
        starts = stamps.dt.floor(size)
        found = joiner.labels_for(part)
        known = found[LABEL].notna()
        delays = (pd.to_datetime(found[RECEIVED], utc=True) - stamps).dt.total_seconds() / 3600
        for start, rows in part.groupby(starts, sort=False).groups.items():
            tally = counts.setdefault(start, [0, 0, 0.0])
            labelled = rows[known[rows].to_numpy()]
            tally[0] += len(rows)
            tally[1] += len(labelled)
            tally[2] += float(delays[labelled].sum())
            if len(labelled):
                qualities.setdefault(start, ModelQuality(task)).add(
                    found.loc[labelled, LABEL], part.loc[labelled, PREDICTION].to_numpy())
    chunks = [ChunkPerformance(start.isoformat(), int(n), int(k), (d / k) if k else None,
                               qualities[start].metrics() if start in qualities else {})
              for start, (n, k, d) in sorted(counts.items())]
    usable = [c for c in chunks if c.labelled >= min_labels and metric in c.metrics]
    latest = usable[-1] if usable else None
    below = bool(latest and floor is not None and (
        latest.metrics[metric] < floor if greater_is_better else latest.metrics[metric] > floor))
    return RealizedPerformance(metric, chunks, latest, floor, below)
