"""Evidently's DataDriftPreset on a bounded sample: the human report and its per-column verdicts.

The verdicts are used to check the engine agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kubecycle.monitoring.workspace import WorkspaceRun, save_to_workspace

MAX_REPORT_ROWS = 20_000  # Evidently gets slow and memory-hungry on big windows


@dataclass(frozen=True)
class EvidentlyColumn:
    """Evidently's drift test of one column: its method, score and threshold."""

    method: str
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        """Whether the column drifted: p-value below the threshold, or distance at or above it."""
        if "p_value" in self.method:
            return self.score < self.threshold
        return self.score >= self.threshold


def bounded(frame: pd.DataFrame, rows: int = MAX_REPORT_ROWS, seed: int = 0) -> pd.DataFrame:
    """The frame, or a seeded random sample of `rows` rows when it is longer."""
    return frame.sample(rows, random_state=seed) if len(frame) > rows else frame


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame, kinds: dict[str, str],
                    drift_share: float = 0.5, html_path: str | Path | None = None,
                    workspace: WorkspaceRun | None = None) -> dict[str, EvidentlyColumn]:
    """Run DataDriftPreset with the given column kinds; optionally save the HTML report.

    Args:
        reference: the reference frame, holding at least the columns in kinds.
        current: the current window's frame, holding at least the columns in kinds.
        kinds: column -> "numeric" | "categorical".
        drift_share: share of drifted columns that means dataset drift in the report.
        html_path: where to save the HTML report (None: not saved).
        workspace: an Evidently workspace the snapshot is added to (None: none).

    Returns:
        Evidently's method, score and threshold per column.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = list(kinds)
    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "numeric"],
        categorical_columns=[c for c in columns if kinds[c] == "categorical"])
    snapshot = Report([DataDriftPreset(drift_share=drift_share)]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
        timestamp=workspace.timestamp if workspace else None,
        metadata=dict(workspace.tags) if workspace else None)
    if html_path is not None:
        Path(html_path).parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    if workspace is not None:
        save_to_workspace(snapshot, workspace)
    result = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config") or {}
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            result[config["column"]] = EvidentlyColumn(config["method"], float(metric["value"]),
                                                       float(config["threshold"]))
    return result
