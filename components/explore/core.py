"""Exploratory data analysis: Evidently's data summary plus target balance and correlations."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kubecycle.contract import DataContract

MAX_REPORT_ROWS = 100_000  # the report is built on a bounded, seeded sample


@dataclass(frozen=True)
class EdaResult:
    """The report written and how many rows it profiled."""

    html_path: Path
    rows_profiled: int


def _target_balance_html(frame: pd.DataFrame, contract: DataContract) -> str:
    target = contract.target
    if target is None or target not in frame.columns:
        return ""
    labels = frame[target]
    if contract.task == "regression":
        table = labels.describe().to_frame("value")
    else:
        table = labels.astype(str).value_counts(normalize=True).rename("share").to_frame()
    return f"<h2>Target {html.escape(target)}</h2>" + table.to_html(float_format="%.4f")


def _correlation_html(frame: pd.DataFrame, contract: DataContract) -> str:
    numeric = frame[[c for c, spec in contract.columns.items() if spec.kind == "numeric"]]
    if numeric.shape[1] < 2:
        return ""
    corr = numeric.corr(method="spearman").round(3)
    return "<h2>Spearman correlations (numeric columns)</h2>" + corr.to_html()


def _cleaning_html(cleaning: dict[str, Any] | None) -> str:
    """The training-row filters: rows before and after, and each filter's counts."""
    if not cleaning:
        return ""
    rows = []
    for name in ("outliers", "label_noise"):
        counts = cleaning.get(name) or {}
        by_column = ", ".join(f"{column}: {n}" for column, n in (counts.get("by_column") or {}).items())
        rows.append({"filter": name, "method": counts.get("method"), "action": counts.get("action"),
                     "flagged": counts.get("flagged"), "dropped": counts.get("dropped"),
                     "flagged by column": by_column})
    table = pd.DataFrame(rows).to_html(index=False, na_rep="")
    return (f"<h2>Cleaning (training rows)</h2><p>{cleaning.get('rows_before')} training rows "
            f"before, {cleaning.get('rows_after')} after the filters.</p>{table}")


def build_eda_report(frame: pd.DataFrame, contract: DataContract, out_path: str | Path,
                     cleaning: dict[str, Any] | None = None) -> EdaResult:
    """Write an HTML EDA report of the data set.

    It shows statistics, missing values and distributions (Evidently's DataSummaryPreset), then
    target balance, correlations and, when given, the training-row cleaning counts.

    Args:
        frame: The cleaned data set.
        contract: Its data contract (target, task, column kinds).
        out_path: The HTML file to write.
        cleaning: The cleaning stage's counts (summary.json's `cleaning`), if it ran.

    Returns:
        The report's path and the rows it profiled (a bounded, seeded sample).
    """
    from evidently import Report
    from evidently.presets import DataSummaryPreset

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sample = frame.sample(MAX_REPORT_ROWS, random_state=0) if len(frame) > MAX_REPORT_ROWS else frame
    snapshot = Report([DataSummaryPreset()]).run(current_data=sample, reference_data=None)
    snapshot.save_html(str(out_path))
    extra = (_target_balance_html(sample, contract) + _correlation_html(sample, contract)
             + _cleaning_html(cleaning))
    if extra:
        text = out_path.read_text()
        section = f'<section style="font-family:sans-serif;margin:2em">{extra}</section>'
        out_path.write_text(text.replace("</body>", section + "</body>", 1))
    return EdaResult(html_path=out_path, rows_profiled=len(sample))
