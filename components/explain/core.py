"""SHAP explanations of a fitted model Pipeline, on the encoded features."""

from __future__ import annotations

import base64
import html
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.catalog import Task
from kubecycle.modelling import split_xy

EXPLAIN_ROWS = 200
BACKGROUND_ROWS = 100
TOP_FEATURES = 10


@dataclass
class Explanation:
    """Global SHAP importance of the encoded features, measured on a sample of rows."""

    importance: dict[str, float]  # mean |SHAP| per encoded feature, largest first
    method: str
    rows: int

    @property
    def top(self) -> list[str]:
        """The TOP_FEATURES most important encoded features."""
        return list(self.importance)[:TOP_FEATURES]

    def to_dict(self) -> dict[str, Any]:
        """The explanation as a JSON-ready dict, with the top features added."""
        return {**asdict(self), "top_features": self.top}


def _explainer(estimator, background: np.ndarray, task: Task):
    import shap

    tree_like = hasattr(estimator, "estimators_") or type(estimator).__name__.startswith("Hist")
    if tree_like:
        return shap.TreeExplainer(estimator), "tree"
    if hasattr(estimator, "coef_"):
        return shap.LinearExplainer(estimator, background), "linear"
    predict = estimator.predict_proba if task == "classification" else estimator.predict
    return shap.PermutationExplainer(predict, background), "permutation"


def explain_rows(model, frame: pd.DataFrame, target: str | None, task: Task, seed: int = 0
                  ) -> tuple[Explanation, Any]:
    """Global importance (mean |SHAP|) on a bounded sample of rows.

    Clustering models are explained through a random-forest surrogate trained to predict
    the assigned cluster (SHAP needs a supervised output).
    Returns the Explanation and the shap.Explanation for plotting.
    """
    x, _ = split_xy(frame, target)
    sample = x.sample(min(len(x), EXPLAIN_ROWS), random_state=seed)
    preprocess, estimator = model[:-1], model[-1]
    names = [str(n) for n in preprocess.get_feature_names_out()]
    encoded = np.asarray(preprocess.transform(sample), dtype=float)
    background = encoded[:BACKGROUND_ROWS]
    method_prefix = ""
    if task == "clustering":
        from sklearn.ensemble import RandomForestClassifier

        clusters = estimator.predict(encoded)
        estimator = RandomForestClassifier(n_estimators=50, random_state=seed).fit(encoded, clusters)
        task, method_prefix = "classification", "surrogate-"
    explainer, method = _explainer(estimator, background, task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = explainer(encoded)
    raw = np.abs(np.asarray(values.values, dtype=float))
    per_feature = raw.mean(axis=tuple(i for i in range(raw.ndim) if i != 1))
    order = np.argsort(per_feature)[::-1]
    importance = {names[i]: float(per_feature[i]) for i in order}
    values.feature_names = names
    return Explanation(importance, method_prefix + method, len(sample)), values


def write_summary_plot(values, png_path: str | Path) -> Path:
    """SHAP's beeswarm summary (classes averaged) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    if values.values.ndim == 3:  # (rows, features, classes): mean |SHAP| over classes
        values = shap.Explanation(np.abs(values.values).mean(axis=2), data=values.data,
                                  feature_names=values.feature_names)
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    plt.figure()
    shap.plots.beeswarm(values, max_display=TOP_FEATURES, show=False)
    plt.tight_layout()
    plt.savefig(png_path, dpi=100)
    plt.close("all")
    return png_path


def write_report(explanation: Explanation, png_path: Path, html_path: str | Path) -> Path:
    """HTML page: the summary plot (embedded) and the importance table."""
    html_path = Path(html_path)
    image = base64.b64encode(Path(png_path).read_bytes()).decode()
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.5f}</td></tr>"
                   for k, v in explanation.importance.items())
    html_path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>SHAP</title></head>"
        "<body style='font-family:sans-serif;margin:2em'><h1>Global feature importance</h1>"
        f"<p>mean |SHAP value| over {explanation.rows} rows, {explanation.method} explainer</p>"
        f"<img alt='SHAP summary' src='data:image/png;base64,{image}'/>"
        f"<table><tr><th>feature</th><th>mean |SHAP|</th></tr>{rows}</table></body></html>")
    return html_path
