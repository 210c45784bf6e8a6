"""Exploratory data analysis: Evidently's data summary plus target balance and correlations."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

MAX_REPORT_ROWS = 100_000  # the report is built on a bounded, seeded sample


@dataclass(frozen=True)
class EdaResult:
    html_path: Path
    rows_profiled: int
    missing_by_column: dict[str, float]


def _target_balance_html(frame: pd.DataFrame, target: str | None) -> str:
    if target is None or target not in frame.columns:
        return ""
    labels = frame[target]
    if pd.api.types.is_numeric_dtype(labels) and labels.nunique() > 20:
        table = labels.describe().to_frame("value")
    else:
        table = labels.astype(str).value_counts(normalize=True).rename("share").to_frame()
    return f"<h2>Target {html.escape(target)}</h2>" + table.to_html(float_format="%.4f")


def _correlation_html(frame: pd.DataFrame) -> str:
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] < 2:
        return ""
    corr = numeric.corr(method="spearman").round(3)
    return "<h2>Spearman correlations (numeric columns)</h2>" + corr.to_html()


def build_eda_report(frame: pd.DataFrame, target: str | None, out_path: str | Path) -> EdaResult:
    """Write an HTML EDA report: statistics, missing values, distributions (Evidently's
    DataSummaryPreset), then target balance and correlations.

    Args:
        frame: the cleaned data set.
        target: label column or None.
        out_path: HTML file to write.
    """
    from evidently import Report
    from evidently.presets import DataSummaryPreset

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sample = frame.sample(MAX_REPORT_ROWS, random_state=0) if len(frame) > MAX_REPORT_ROWS else frame
    snapshot = Report([DataSummaryPreset()]).run(current_data=sample, reference_data=None)
    snapshot.save_html(str(out_path))
    extra = _target_balance_html(sample, target) + _correlation_html(sample)
    if extra:
        text = out_path.read_text()
        section = f'<section style="font-family:sans-serif;margin:2em">{extra}</section>'
        out_path.write_text(text.replace("</body>", section + "</body>", 1))
    missing = {c: round(float(frame[c].isna().mean()), 6) for c in frame.columns}
    return EdaResult(html_path=out_path, rows_profiled=len(sample), missing_by_column=missing)
