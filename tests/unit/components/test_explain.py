import pytest

from kubecycle.components.explain.core import explain_rows, write_report, write_summary_plot
from kubecycle.components.features.core import plan_columns
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.modelling import TuneResult


@pytest.mark.parametrize(
    ("family", "params", "method"),
    [("random_forest", {"n_estimators": 20}, "tree"),
     ("gradient_boosting", {"max_iter": 20}, "tree"),
     ("logistic_regression", {}, "linear")],
)
def test_importance_finds_the_informative_features(penguins, tmp_path, family, params, method):
    result = clean(penguins, "species")
    plan = plan_columns(result.contract, FeatureConfig())
    model = fit_final(plan, select_best([TuneResult(family, "f1", params, 0, 0)]),
                      result.frame, 0)
    explanation, values = explain_rows(model, result.frame, "species", "classification")
    assert explanation.method == method
    assert explanation.top[0].startswith(("numeric__bill", "numeric__flipper", "onehot__island"))
    assert "numeric__year" not in explanation.top[:3]
    png = write_summary_plot(values, tmp_path / "shap.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    page = write_report(explanation, png, tmp_path / "shap.html").read_text()
    assert "data:image/png;base64" in page and explanation.top[0] in page


def test_clustering_uses_a_surrogate(penguins):
    frame = penguins.drop(columns=["species"])
    result = clean(frame, None)
    plan = plan_columns(result.contract, FeatureConfig())
    model = fit_final(plan, select_best([TuneResult("kmeans", "silhouette",
                                                    {"n_clusters": 3}, 0, 0)]), result.frame, 0)
    explanation, _ = explain_rows(model, result.frame, None, "clustering")
    assert explanation.method == "surrogate-tree" and len(explanation.importance) > 3
