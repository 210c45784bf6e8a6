"""LIME explanations of single rows, next to SHAP's, and where the two disagree.

LIME (Ribeiro et al., 2016) fits a weighted linear model to the estimator's outputs on samples
drawn around one row; its coefficients are the row's explanation. Both methods are run on the
encoded features the estimator sees and summed per raw column (components.explain.columns),
so they are compared in the data's own column names.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kubecycle.catalog import Task


@dataclass
class RowComparison:
    """The top columns of one explained row by SHAP and by LIME."""

    row: int  # position in the explained sample
    explained: str  # the class whose probability is explained, or "prediction"
    shap_top: list[str]
    lime_top: list[str]

    @property
    def agreement(self) -> float:
        """The share of the top columns both methods name."""
        return len(set(self.shap_top) & set(self.lime_top)) / max(1, len(self.shap_top))


@dataclass
class LimeResult:
    """LIME's per-column importance over the explained rows, and its agreement with SHAP."""

    rows: int
    samples: int
    top: int
    importance: dict[str, float]  # mean |LIME weight| per raw column, largest first
    agreement: float  # mean share of the top columns SHAP and LIME both name
    disagreements: dict[str, int]  # column -> rows where it is top for one method only
    comparisons: list[RowComparison] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        data = asdict(self)
        for item, comparison in zip(data["comparisons"], self.comparisons, strict=True):
            item["agreement"] = comparison.agreement
        return data


def _top(scores: np.ndarray, columns: list[str], count: int) -> list[str]:
    order = np.argsort(-np.abs(scores), kind="stable")
    return [columns[i] for i in order[:count]]


def lime_weights(predict, encoded: np.ndarray, rows: np.ndarray, task: Task, samples: int,
                 seed: int, labels: list[int] | None = None) -> np.ndarray:
    """LIME's coefficients per encoded feature for each of the given rows.

    Args:
        predict: predict_proba (classification) or predict (regression) on encoded rows.
        encoded: The encoded rows LIME takes its sampling statistics from.
        rows: The encoded rows to explain.
        task: classification or regression.
        samples: Perturbed samples per row.
        seed: LIME's random state.
        labels: For classification, the class index explained for each row.

    Returns:
        Shape (rows, features): the linear surrogate's coefficient of each encoded feature,
        per standard deviation of the feature (LIME scales what it samples).
    """
    from lime.lime_tabular import LimeTabularExplainer

    mode = "classification" if task == "classification" else "regression"
    explainer = LimeTabularExplainer(encoded, mode=mode, discretize_continuous=False,
                                     random_state=seed)
    weights = np.zeros(rows.shape, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index, row in enumerate(rows):
            label = labels[index] if labels is not None else 1
            found = explainer.explain_instance(row, predict, labels=(label,),
                                               num_features=rows.shape[1], num_samples=samples)
            for feature, weight in found.as_map()[label if mode == "classification" else 1]:
                weights[index, int(feature)] = weight
    return weights


def compare_with_shap(estimator, encoded: np.ndarray, shap_by_column: np.ndarray,
                      owners: list[str], columns: list[str], task: Task, *, rows: int,
                      samples: int, top: int, seed: int) -> LimeResult:
    """Explain the first rows with LIME and compare their top columns with SHAP's.

    Args:
        estimator: The fitted estimator (on encoded features).
        encoded: The encoded sample SHAP explained.
        shap_by_column: SHAP values summed per column, (rows, columns[, classes]).
        owners: The raw column of each encoded feature.
        columns: The raw columns, in the order of shap_by_column.
        task: classification (the predicted class is explained) or regression.
        rows: How many rows to explain.
        samples: LIME's perturbed samples per row.
        top: How many top columns to compare.
        seed: LIME's random state.

    Returns:
        LIME's importance, and per row the top columns of both methods.
    """
    from kubecycle.components.explain.columns import by_column

    chosen = encoded[:rows]
    labels, names = None, ["prediction"] * len(chosen)
    predict = estimator.predict
    if task == "classification":
        predict = estimator.predict_proba
        labels = [int(i) for i in np.argmax(predict(chosen), axis=1)]
        names = [str(estimator.classes_[i]) for i in labels]
    weights = lime_weights(predict, encoded, chosen, task, samples, seed, labels)
    lime_columns, _ = by_column(np.abs(weights), owners)  # a column's weight: its features' |w|
    comparisons = []
    for index in range(len(chosen)):
        shap_row = shap_by_column[index]
        if shap_row.ndim == 2:  # per class: the explained class's contributions
            shap_row = shap_row[:, labels[index] if labels is not None else 0]
        comparisons.append(RowComparison(index, names[index], _top(shap_row, columns, top),
                                         _top(lime_columns[index], columns, top)))
    disagreements: dict[str, int] = {}
    for comparison in comparisons:
        for column in set(comparison.shap_top) ^ set(comparison.lime_top):
            disagreements[column] = disagreements.get(column, 0) + 1
    mean = lime_columns.mean(axis=0)
    order = np.argsort(-mean, kind="stable")
    return LimeResult(
        len(chosen), samples, top, {columns[i]: float(mean[i]) for i in order},
        float(np.mean([c.agreement for c in comparisons])) if comparisons else 1.0,
        dict(sorted(disagreements.items(), key=lambda item: -item[1])), comparisons)
