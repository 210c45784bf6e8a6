import numpy as np
import pytest

from kubecycle.components.explain.columns import by_column, source_columns
from kubecycle.components.explain.core import (
    explain_rows,
    write_class_plots,
    write_report,
    write_summary_plot,
)
from kubecycle.components.explain.lime_rows import lime_weights
from kubecycle.components.features.core import plan_columns
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import ExplainConfig, FeatureConfig
from kubecycle.modelling import TuneResult

PENGUIN_SIGNAL = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "island", "body_mass_g")


def _fit(frame, target, family, params, **features):
    result = clean(frame, target)
    plan = plan_columns(result.contract, FeatureConfig(**features))
    model = fit_final(plan, select_best([TuneResult(family, "f1", params, 0, 0)]), result.frame, 0)
    return model, result.frame


@pytest.mark.parametrize(
    ("family", "params", "method"),
    [("random_forest", {"n_estimators": 20}, "tree"),
     ("gradient_boosting", {"max_iter": 20}, "tree"),
     ("lightgbm", {"n_estimators": 30}, "tree"),
     ("xgboost", {"n_estimators": 30}, "tree"),
     ("logistic_regression", {}, "linear")],
)
def test_importance_in_column_names_and_per_class(penguins, tmp_path, family, params, method):
    model, frame = _fit(penguins, "species", family, params)
    explanation, values = explain_rows(model, frame, "species", "classification",
                                       settings=ExplainConfig(lime_rows=3, lime_samples=300))
    assert explanation.method == method
    assert explanation.top[0] in PENGUIN_SIGNAL
    assert not any("__" in column for column in explanation.importance)  # no encoder prefixes
    assert set(explanation.importance) <= set(frame.columns)
    assert any(name.startswith("onehot__island_") for name in explanation.encoded_importance)
    # per class, for the three species, in the same column names
    assert set(explanation.by_class) == {"Adelie", "Chinstrap", "Gentoo"}
    assert all(set(scores) == set(explanation.importance)
               for scores in explanation.by_class.values())
    png = write_summary_plot(values, tmp_path / "shap.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    plots = write_class_plots(values, png)
    assert set(plots) == {"Adelie", "Chinstrap", "Gentoo"}
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in plots.values())
    page = write_report(explanation, png, tmp_path / "shap.html", plots).read_text()
    assert page.count("data:image/png;base64") == 4 and explanation.top[0] in page
    assert "LIME beside SHAP" in page and "class Gentoo" in page
    lime = explanation.lime
    assert lime["rows"] == 3 and len(lime["comparisons"]) == 3
    assert 0.0 <= lime["agreement"] <= 1.0
    assert all(c["explained"] in {"Adelie", "Chinstrap", "Gentoo"} for c in lime["comparisons"])
    assert set(lime["importance"]) == set(explanation.importance)


def test_column_sums_keep_shap_additivity(penguins):
    """A column's contribution is the sum of its encoded features' (one-hot, date parts):
    per row, the columns' contributions add up to the same total as the features'."""
    model, frame = _fit(penguins, "species", "random_forest", {"n_estimators": 20})
    preprocess = model[:-1]
    owners = source_columns(preprocess)
    encoded = np.asarray(preprocess.transform(frame.drop(columns="species").head(30)), dtype=float)
    import shap

    raw = shap.TreeExplainer(model[-1])(encoded).values
    summed, columns = by_column(raw, owners)
    assert np.allclose(summed.sum(axis=1), raw.sum(axis=1), atol=1e-9)
    assert summed.shape == (30, len(columns), 3)


def test_source_columns_follow_encoders_and_selection(mixed):
    model, _ = _fit(mixed.drop(columns=["amount"]), "churn", "logistic_regression", {},
                    select_k_best=6)
    names = [str(n) for n in model[:-1].get_feature_names_out()]
    owners = source_columns(model[:-1])
    assert len(owners) == len(names) == 6
    for name, owner in zip(names, owners, strict=True):
        assert name.split("__", 1)[1].startswith(owner)
        assert owner in mixed.columns


def test_lime_recovers_a_linear_models_coefficients():
    """The method's definition on a case with a known answer: for a linear model the local
    surrogate is the model itself, so LIME's weights are the coefficients per standard
    deviation of the features it samples."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = rng.normal(scale=[1.0, 2.0, 0.5, 1.0], size=(800, 4))
    coefficients = np.array([3.0, -2.0, 0.5, 0.0])
    model = LinearRegression().fit(x, x @ coefficients + 1.0)
    weights = lime_weights(model.predict, x, x[:5], "regression", samples=2000, seed=0)
    expected = coefficients * x.std(axis=0)
    assert np.allclose(weights, expected, atol=0.05 * np.abs(expected).max())


def test_regression_and_lime_switched_off(make_mixed):
    frame = make_mixed(300).drop(columns=["churn"])
    model, clean_frame = _fit(frame, "amount", "ridge", {})
    explanation, values = explain_rows(model, clean_frame, "amount", "regression",
                                       settings=ExplainConfig(lime_rows=0))
    assert explanation.top[0] == "x1" and explanation.lime is None and explanation.by_class == {}
    assert values.values.ndim == 2


def test_clustering_uses_a_surrogate(penguins):
    frame = penguins.drop(columns=["species"])
    result = clean(frame, None)
    plan = plan_columns(result.contract, FeatureConfig())
    model = fit_final(plan, select_best([TuneResult("kmeans", "silhouette",
                                                    {"n_clusters": 3}, 0, 0)]), result.frame, 0)
    explanation, _ = explain_rows(model, result.frame, None, "clustering")
    assert explanation.method == "surrogate-tree" and len(explanation.importance) > 3
    assert explanation.lime is not None and len(explanation.lime["comparisons"]) == 10
