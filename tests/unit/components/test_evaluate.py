import math

import pytest

from kubecycle.components.evaluate.core import write_report
from kubecycle.components.features.core import plan_columns
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.evaluation import evaluate_model, score
from kubecycle.modelling import TuneResult


def fitted(frame, target, family, task_metric, **params):
    result = clean(frame, target)
    plan = plan_columns(result.contract, FeatureConfig())
    chosen = select_best([TuneResult(family, task_metric, params, 0.0, 0.0)])
    return fit_final(plan, chosen, result.frame, seed=0), result.frame


def test_classification_metrics_and_confusion(penguins, tmp_path):
    model, frame = fitted(penguins, "species", "logistic_regression", "f1")
    evaluation = evaluate_model(model, frame, "species", "classification")
    assert set(evaluation.metrics) == {"accuracy", "balanced_accuracy", "precision", "recall",
                                       "f1", "roc_auc"}
    assert evaluation.metrics["accuracy"] > 0.95
    assert evaluation.labels == ["Adelie", "Chinstrap", "Gentoo"]
    assert sum(map(sum, evaluation.confusion)) == len(frame)
    page = write_report(evaluation, "eval", tmp_path / "r.html").read_text()
    assert "Confusion matrix" in page and "Gentoo" in page


def test_binary_imbalanced_string_labels(mixed):
    model, frame = fitted(mixed, "churn", "random_forest", "f1", n_estimators=30)
    metrics = evaluate_model(model, frame, "churn", "classification").metrics
    assert 0.5 < metrics["roc_auc"] <= 1.0


def test_regression_metrics(mixed):
    model, frame = fitted(mixed.drop(columns=["churn"]), "amount", "ridge", "rmse")
    metrics = evaluate_model(model, frame, "amount", "regression").metrics
    assert metrics["rmse"] < 1.0 and metrics["mae"] <= metrics["rmse"] and metrics["r2"] > 0.9
    assert score(model, frame, "amount", "regression", "r2") == pytest.approx(metrics["r2"])


def test_clustering_silhouette(penguins):
    model, frame = fitted(penguins.drop(columns=["species"]), None, "kmeans", "silhouette",
                          n_clusters=3)
    value = evaluate_model(model, frame, None, "clustering").metrics["silhouette"]
    assert not math.isnan(value) and 0 < value <= 1


def _pngs(plots):
    return {name: path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000
            for name, path in plots.items()}


def test_classification_plots_and_per_class_metrics(penguins, tmp_path):
    from kubecycle.components.evaluate.plots import write_plots

    model, frame = fitted(penguins, "species", "random_forest", "f1", n_estimators=30)
    evaluation = evaluate_model(model, frame, "species", "classification")
    assert set(evaluation.per_class) == {"Adelie", "Chinstrap", "Gentoo"}
    assert evaluation.per_class["Gentoo"]["support"] == (frame.species == "Gentoo").sum()
    plots = write_plots(model, frame, "species", "classification", tmp_path / "plots")
    assert _pngs(plots) == {"confusion_matrix": True, "roc": True, "precision_recall": True,
                            "calibration": True}
    page = write_report(evaluation, "eval", tmp_path / "r.html", plots).read_text()
    assert page.count("data:image/png;base64") == 4 and "Per class" in page


def test_binary_regression_and_clustering_plots(mixed, penguins, tmp_path):
    from kubecycle.components.evaluate.plots import write_plots

    model, frame = fitted(mixed, "churn", "logistic_regression", "f1")
    assert set(write_plots(model, frame, "churn", "classification", tmp_path / "b")) == {
        "confusion_matrix", "roc", "precision_recall", "calibration"}
    model, frame = fitted(mixed.drop(columns=["churn"]), "amount", "ridge", "rmse")
    assert _pngs(write_plots(model, frame, "amount", "regression", tmp_path / "r")) == {
        "actual_vs_predicted": True, "residual_vs_predicted": True}
    model, frame = fitted(penguins.drop(columns=["species"]), None, "kmeans", "silhouette",
                          n_clusters=3)
    assert _pngs(write_plots(model, frame, None, "clustering", tmp_path / "c")) == {
        "cluster_sizes": True, "projection": True}
