"""Evaluation plots a person can look at, drawn by scikit-learn's displays.

Classification: confusion-matrix heatmap, ROC and precision-recall curves (one-vs-rest per
class), calibration. Regression: predicted vs actual and residuals. Clustering: cluster sizes
and a 2-D PCA projection of the encoded rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kubecycle.catalog import Task
from kubecycle.modelling import split_xy

MAX_CURVES = 10  # classes drawn on the ROC, precision-recall and calibration plots
MAX_POINTS = 5000  # rows drawn on scatter plots


def _save(draw: Callable, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        draw(axes)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _one_vs_rest(display, y: pd.Series, proba: np.ndarray, classes: list, axes, **options) -> None:
    """One curve per class (the positive class only for two classes)."""
    shown = classes[1:] if len(classes) == 2 else classes[:MAX_CURVES]
    for label in shown:
        display.from_predictions(np.asarray(y) == label, proba[:, classes.index(label)],
                                 name=str(label), ax=axes, **options)


def _classification(model, x: pd.DataFrame, y: pd.Series, folder: Path) -> dict[str, Path]:
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    classes = list(model.classes_)
    plots = {"confusion_matrix": _save(lambda axes: ConfusionMatrixDisplay.from_predictions(
        y, model.predict(x), labels=classes, display_labels=[str(c) for c in classes], ax=axes,
        colorbar=False, xticks_rotation=45), folder / "confusion_matrix.png")}
    if hasattr(model, "predict_proba") and y.nunique() > 1:
        proba = model.predict_proba(x)
        plots["roc"] = _save(lambda axes: _one_vs_rest(RocCurveDisplay, y, proba, classes, axes),
                             folder / "roc.png")
        plots["precision_recall"] = _save(lambda axes: _one_vs_rest(
            PrecisionRecallDisplay, y, proba, classes, axes), folder / "precision_recall.png")
        plots["calibration"] = _save(lambda axes: _one_vs_rest(
            CalibrationDisplay, y, proba, classes, axes, n_bins=10, strategy="quantile"),
            folder / "calibration.png")
    return plots


def _regression(model, x: pd.DataFrame, y: pd.Series, folder: Path) -> dict[str, Path]:
    from sklearn.metrics import PredictionErrorDisplay

    predicted = model.predict(x)
    points = min(len(y), MAX_POINTS)
    return {kind: _save(lambda axes, kind=kind: PredictionErrorDisplay.from_predictions(
        y, predicted, kind=kind, subsample=points, random_state=0, ax=axes), folder / f"{kind}.png")
        for kind in ("actual_vs_predicted", "residual_vs_predicted")}


def _clustering(model, x: pd.DataFrame, folder: Path) -> dict[str, Path]:
    from sklearn.decomposition import PCA

    clusters = np.asarray(model.predict(x))
    labels, counts = np.unique(clusters, return_counts=True)
    encoded = np.asarray(model[:-1].transform(x), dtype=float)
    shown = np.random.default_rng(0).permutation(len(x))[:MAX_POINTS]
    components = min(2, encoded.shape[1], len(x))
    projected = PCA(n_components=components, random_state=0).fit_transform(encoded[shown])
    if components < 2:
        projected = np.column_stack([projected, np.zeros(len(projected))])

    def sizes(axes) -> None:
        axes.bar([str(label) for label in labels], counts)
        axes.set(xlabel="cluster", ylabel="rows", title="cluster sizes")

    def projection(axes) -> None:
        scatter = axes.scatter(projected[:, 0], projected[:, 1], c=clusters[shown], s=8,
                               cmap="tab10")
        axes.legend(*scatter.legend_elements(), title="cluster", fontsize="small")
        axes.set(xlabel="PC 1", ylabel="PC 2", title="rows projected on 2 principal components")

    return {"cluster_sizes": _save(sizes, folder / "cluster_sizes.png"),
            "projection": _save(projection, folder / "projection.png")}


def write_plots(model, test: pd.DataFrame, target: str | None, task: Task,
                folder: str | Path) -> dict[str, Path]:
    """Draw the task's evaluation plots of a fitted model on the held-out rows.

    Args:
        model: The fitted model Pipeline.
        test: Held-out rows (features and, unless clustering, the target).
        target: The target column, or None.
        task: The model's task.
        folder: Where the PNG files go (created).

    Returns:
        Plot name -> PNG path, in display order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x, y = split_xy(test, target)
    if task == "classification":
        return _classification(model, x, y, folder)
    if task == "regression":
        return _regression(model, x, y, folder)
    return _clustering(model, x, folder)
