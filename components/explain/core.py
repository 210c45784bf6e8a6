"""SHAP (and LIME) explanations of a fitted model Pipeline, in the data's own column names."""

from __future__ import annotations

import base64
import html
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.catalog import Task
from kubecycle.components.explain.columns import by_column, source_columns
from kubecycle.config import ExplainConfig
from kubecycle.modelling import is_booster, split_xy

BACKGROUND_ROWS = 100
TOP_FEATURES = 10
MAX_CLASS_PLOTS = 10


@dataclass
class Explanation:
    """Global SHAP importance per raw column (and per class), measured on a sample of rows."""

    importance: dict[str, float]  # mean |SHAP| per raw column, largest first
    method: str
    rows: int
    by_class: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> column -> mean |SHAP|
    encoded_importance: dict[str, float] = field(default_factory=dict)  # per encoded feature
    lime: dict[str, Any] | None = None  # LIME's importance and agreement (lime_rows.LimeResult)

    @property
    def top(self) -> list[str]:
        """The TOP_FEATURES most important raw columns."""
        return list(self.importance)[:TOP_FEATURES]

    def to_dict(self) -> dict[str, Any]:
        """The explanation as a JSON-ready dict, with the top features added."""
        return {**asdict(self), "top_features": self.top}


def _is_tree(estimator) -> bool:
    return (hasattr(estimator, "estimators_") or type(estimator).__name__.startswith("Hist")
            or is_booster(estimator))


def _explainer(estimator, background: np.ndarray, task: Task):
    import shap

    if _is_tree(estimator):
        return shap.TreeExplainer(estimator), "tree"
    if hasattr(estimator, "coef_"):
        return shap.LinearExplainer(estimator, background), "linear"
    predict = estimator.predict_proba if task == "classification" else estimator.predict
    return shap.PermutationExplainer(predict, background), "permutation"


def _mean_per_feature(values: np.ndarray) -> np.ndarray:
    """The mean over rows (and classes) of values shaped (rows, features[, classes])."""
    return values.mean(axis=tuple(i for i in range(values.ndim) if i != 1))


def _ranked(scores: np.ndarray, names: list[str]) -> dict[str, float]:
    order = np.argsort(-scores, kind="stable")
    return {names[i]: float(scores[i]) for i in order}


def _colour_data(sample: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The raw values that colour a beeswarm: numeric columns as they are, others blank."""
    data = np.full((len(sample), len(columns)), np.nan)
    for index, column in enumerate(columns):
        if column in sample and pd.api.types.is_numeric_dtype(sample[column]) and \
                not pd.api.types.is_bool_dtype(sample[column]):
            data[:, index] = pd.to_numeric(sample[column], errors="coerce").to_numpy(dtype=float)
    return data


def explain_rows(model, frame: pd.DataFrame, target: str | None, task: Task, seed: int = 0,
                 settings: ExplainConfig | None = None) -> tuple[Explanation, Any]:
    """Global importance (mean |SHAP|) per raw column on a bounded sample of rows, and LIME's.

    Clustering models are explained through a random-forest surrogate trained to predict
    the assigned cluster (SHAP needs a supervised output).

    Args:
        model: The fitted model Pipeline (preprocessing, then the estimator).
        frame: Held-out rows (the target column is dropped if present).
        target: The target column, or None.
        task: The model's task.
        seed: Sampling and LIME random state.
        settings: Rows explained by SHAP and LIME (defaults when None).

    Returns:
        The Explanation and a shap.Explanation per raw column (rows, columns[, classes]).
    """
    import shap

    settings = settings or ExplainConfig()
    x, _ = split_xy(frame, target)
    sample = x.sample(min(len(x), settings.rows), random_state=seed)
    preprocess, estimator = model[:-1], model[-1]
    names = [str(n) for n in preprocess.get_feature_names_out()]
    encoded = np.asarray(preprocess.transform(sample), dtype=float)
    method_prefix = ""
    if task == "clustering":
        from sklearn.ensemble import RandomForestClassifier

        clusters = estimator.predict(encoded)
        estimator = RandomForestClassifier(n_estimators=50, random_state=seed).fit(encoded, clusters)
        task, method_prefix = "classification", "surrogate-"
    explainer, method = _explainer(estimator, encoded[:BACKGROUND_ROWS], task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = explainer(encoded)
    raw = np.asarray(values.values, dtype=float)
    owners = source_columns(preprocess)
    per_column, columns = by_column(raw, owners)
    magnitude = np.abs(per_column)
    explanation = Explanation(_ranked(_mean_per_feature(magnitude), columns),
                              method_prefix + method, len(sample),
                              encoded_importance=_ranked(_mean_per_feature(np.abs(raw)), names))
    classes = [str(c) for c in getattr(estimator, "classes_", [])]
    if per_column.ndim == 3 and per_column.shape[2] == len(classes):
        explanation.by_class = {label: _ranked(magnitude[:, :, k].mean(axis=0), columns)
                                for k, label in enumerate(classes)}
    if settings.lime_rows and task in ("classification", "regression"):
        from kubecycle.components.explain.lime_rows import compare_with_shap

        explanation.lime = compare_with_shap(
            estimator, encoded, per_column, owners, columns, task, rows=settings.lime_rows,
            samples=settings.lime_samples, top=settings.top_features, seed=seed).to_dict()
    column_values = shap.Explanation(per_column, data=_colour_data(sample, columns),
                                     feature_names=columns)
    column_values.output_names = classes or None
    return explanation, column_values


def _beeswarm(values, png_path: Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    png_path.parent.mkdir(parents=True, exist_ok=True)
    plt.figure()
    shap.plots.beeswarm(values, max_display=TOP_FEATURES, show=False, color_bar=False)
    if title:
        plt.title(title)
    plt.tight_layout()
    plt.savefig(png_path, dpi=100)
    plt.close("all")
    return png_path


def write_summary_plot(values, png_path: str | Path) -> Path:
    """SHAP's beeswarm summary in raw column names (classes: mean |SHAP|) as a PNG."""
    import shap

    title = None
    if values.values.ndim == 3:  # (rows, columns, classes): mean |SHAP| over classes
        values = shap.Explanation(np.abs(values.values).mean(axis=2), data=values.data,
                                  feature_names=values.feature_names)
        title = "mean |SHAP| over classes"
    return _beeswarm(values, Path(png_path), title)


def write_class_plots(values, png_path: str | Path) -> dict[str, Path]:
    """One signed beeswarm per class (up to MAX_CLASS_PLOTS) beside png_path: {class: PNG}."""
    import shap

    if values.values.ndim != 3 or not values.output_names:
        return {}
    png_path = Path(png_path)
    plots = {}
    for k, label in enumerate(values.output_names[:MAX_CLASS_PLOTS]):
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(label))[:60]
        per_class = shap.Explanation(values.values[:, :, k], data=values.data,
                                     feature_names=values.feature_names)
        plots[str(label)] = _beeswarm(per_class, png_path.with_name(
            f"{png_path.stem}-class-{k}-{slug}.png"), f"class {label}")
    return plots


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td>{v:.5f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
        for v in row) + "</tr>" for row in rows)
    return f"<table border='1' cellpadding='4'><tr>{cells}</tr>{body}</table>"


def _image(path: Path, alt: str) -> str:
    return (f"<img alt='{html.escape(alt)}' "
            f"src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}'/>")


def _lime_section(lime: dict[str, Any]) -> str:
    rows = [(c["row"], c["explained"], ", ".join(c["shap_top"]), ", ".join(c["lime_top"]),
             f"{c['agreement']:.0%}") for c in lime["comparisons"]]
    disagree = ", ".join(f"{html.escape(k)} ({v} rows)" for k, v in lime["disagreements"].items())
    return (f"<h2>LIME beside SHAP</h2><p>{lime['rows']} held-out rows explained by LIME "
            f"({lime['samples']} samples each). The top {lime['top']} columns of both methods "
            f"agree on {lime['agreement']:.0%} on average.</p>"
            f"<p>Where they disagree (a column in one top {lime['top']} only): "
            f"{disagree or 'nowhere'}</p>"
            + _table(("row", "explained", "SHAP top", "LIME top", "agreement"), rows)
            + "<h3>mean |LIME weight| per column</h3>"
            + _table(("column", "mean |weight|"), list(lime["importance"].items())))


def write_report(explanation: Explanation, png_path: Path, html_path: str | Path,
                 class_plots: dict[str, Path] | None = None) -> Path:
    """HTML page: the summary plot, per-class plots and tables, LIME's comparison."""
    html_path = Path(html_path)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>SHAP and LIME</title>"
             "</head><body style='font-family:sans-serif;margin:2em'>"
             "<h1>Global feature importance</h1>"
             f"<p>mean |SHAP value| per column over {explanation.rows} held-out rows, "
             f"{html.escape(explanation.method)} explainer</p>",
             _image(Path(png_path), "SHAP summary"),
             _table(("column", "mean |SHAP|"), list(explanation.importance.items()))]
    for label, path in (class_plots or {}).items():
        parts += [f"<h2>class {html.escape(label)}</h2>", _image(path, f"SHAP class {label}"),
                  _table(("column", "mean |SHAP|"),
                         list(explanation.by_class.get(label, {}).items())[:TOP_FEATURES])]
    if explanation.lime:
        parts.append(_lime_section(explanation.lime))
    html_path.write_text("".join(parts) + "</body></html>")
    return html_path
