"""Held-out metrics of a fitted model Pipeline.

Shared by two stages: evaluate reports them for the new model, register rescores the champion
with them on the same rows before the promotion gate.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.catalog import Task
from kubecycle.modelling import silhouette_scorer, split_xy


@dataclass
class Evaluation:
    """Held-out metrics of one model (and, for classifiers, its confusion matrix)."""

    task: Task
    metrics: dict[str, float]
    labels: list[str] = field(default_factory=list)  # confusion-matrix order
    confusion: list[list[int]] = field(default_factory=list)
    rows: int = 0
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # precision, recall, f1, support

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as a JSON-ready dict."""
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
    report = m.classification_report(y, predicted, labels=classes, output_dict=True,
                                     zero_division=0)
    per_class = {str(c): {k: float(v) for k, v in report[str(c)].items()} for c in classes
                 if str(c) in report}
    return Evaluation("classification", {k: float(v) for k, v in result.items()},
                      [str(c) for c in classes], matrix.astype(int).tolist(), len(y), per_class)


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
    """Compute a model's metrics on the held-out test rows.

    The metrics are accuracy/precision/recall/F1/ROC AUC (macro), RMSE/MAE/R2, or silhouette,
    plus the confusion matrix for classifiers.

    Args:
        model: A fitted model Pipeline.
        test: Held-out rows (features and, unless clustering, the target).
        target: The target column, or None (clustering).
        task: The model's task.

    Returns:
        The metrics by name, with the confusion matrix and its labels for classifiers.
    """
    x, y = split_xy(test, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "classification":
            return _classification(model, x, y)
        if task == "regression":
            return _regression(model, x, y)
        return Evaluation("clustering", {"silhouette": silhouette_scorer(model, x)}, rows=len(x))


def score(model, test: pd.DataFrame, target: str | None, task: Task, metric: str) -> float:
    """One test metric of a model (used by the promotion gate on the champion).

    Args:
        model: A fitted model Pipeline.
        test: Held-out rows.
        target: The target column, or None (clustering).
        task: The model's task.
        metric: A metric name evaluate_model reports for the task.

    Returns:
        The metric's value.
    """
    return evaluate_model(model, test, target, task).metrics[metric]
