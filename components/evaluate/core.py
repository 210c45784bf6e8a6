"""Held-out evaluation of a fitted model Pipeline: the HTML report.

The metrics are computed in kubecycle.evaluation.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from kubecycle.evaluation import Evaluation


def write_report(evaluation: Evaluation, title: str, path: str | Path,
                 plots: dict[str, Path] | None = None) -> Path:
    """A self-contained HTML page: metrics, per-class metrics, confusion matrix, the plots."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:.4f}</td></tr>"
                   for k, v in sorted(evaluation.metrics.items()))
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>{evaluation.rows} held-out rows, task {evaluation.task}</p>",
            f"<table><tr><th>metric</th><th>value</th></tr>{rows}</table>"]
    if evaluation.confusion:
        matrix = pd.DataFrame(evaluation.confusion, index=evaluation.labels,
                              columns=evaluation.labels)
        matrix.index.name, matrix.columns.name = "actual", "predicted"
        body.append("<h2>Confusion matrix</h2>" + matrix.to_html())
    if evaluation.per_class:
        body.append("<h2>Per class</h2>" + pd.DataFrame(evaluation.per_class).T.to_html(
            float_format=lambda v: f"{v:.4f}"))
    for name, png in (plots or {}).items():
        image = base64.b64encode(Path(png).read_bytes()).decode()
        body.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>"
                    f"<img alt='{html.escape(name)}' src='data:image/png;base64,{image}'/>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>"
                    f"{html.escape(title)}</title><style>{style}</style></head><body>"
                    + "".join(body) + "</body></html>")
    return path
