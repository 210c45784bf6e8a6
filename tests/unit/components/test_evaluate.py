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
