"""Held-out evaluation of a fitted model Pipeline."""

from __future__ import annotations

import html
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.catalog import Task
from kubecycle.components.tune.core import silhouette_scorer, split_xy


@dataclass
class Evaluation:
    task: Task
    metrics: dict[str, float]
    labels: list[str] = field(default_factory=list)  # confusion-matrix order
    confusion: list[list[int]] = field(default_factory=list)
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _classification(model, x: pd.DataFrame, y: pd.Series) -> Evaluation:
    from sklearn import metrics as m

    predicted = model.predict(x)
    result = {
        "accuracy": m.accuracy_score(y, predicted),
        "balanced_accuracy": m.balanced_accuracy_score(y, predicted),
        "precision": m.precision_score(y, predicted, average="macro", zero_division=0),
        "recall": m.recall_score(y, predicted, average="macro", zero_division=0),
        "f1": m.f1_score(y, predicted, average="macro", zero_division=0),
    }
    classes = list(model.classes_)
    if hasattr(model, "predict_proba") and y.nunique() > 1:
        proba = model.predict_proba(x)
        try:
            if len(classes) == 2:
                result["roc_auc"] = m.roc_auc_score(y, proba[:, 1])
            else:
                result["roc_auc"] = m.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
        except ValueError:  # a class absent from the test rows: AUC is undefined
            pass
    matrix = m.confusion_matrix(y, predicted, labels=classes)
    return Evaluation("classification", {k: float(v) for k, v in result.items()},
                      [str(c) for c in classes], matrix.astype(int).tolist(), len(y))


def _regression(model, x: pd.DataFrame, y: pd.Series) -> Evaluation:
    from sklearn import metrics as m

    predicted = model.predict(x)
    result = {
        "rmse": float(np.sqrt(m.mean_squared_error(y, predicted))),
        "mae": float(m.mean_absolute_error(y, predicted)),
        "r2": float(m.r2_score(y, predicted)) if len(y) > 1 else float("nan"),
    }
    return Evaluation("regression", result, rows=len(y))


def evaluate_model(model, test: pd.DataFrame, target: str | None, task: Task) -> Evaluation:
    """Test-set metrics: accuracy/precision/recall/F1/ROC AUC (macro), RMSE/MAE/R2, or
    silhouette, plus the confusion matrix for classifiers."""
    x, y = split_xy(test, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "classification":
            return _classification(model, x, y)
        if task == "regression":
            return _regression(model, x, y)
        return Evaluation("clustering", {"silhouette": silhouette_scorer(model, x)}, rows=len(x))


def score(model, test: pd.DataFrame, target: str | None, task: Task, metric: str) -> float:
    """One test metric of a model (used by the promotion gate on the champion)."""
    return evaluate_model(model, test, target, task).metrics[metric]


def write_report(evaluation: Evaluation, title: str, path: str | Path) -> Path:
    """A self-contained HTML page: metrics table and, for classifiers, the confusion matrix."""
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
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>"
                    f"{html.escape(title)}</title><style>{style}</style></head><body>"
                    + "".join(body) + "</body></html>")
    return path
