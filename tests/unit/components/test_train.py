import pytest

from kubecycle.components.features.core import plan_columns
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.errors import TrainingError
from kubecycle.modelling import TuneResult


def test_select_best_by_score_and_keeps_errors():
    results = [
        TuneResult("ridge", "rmse", {"alpha": 1.0}, score=-3.0, cv_metric=3.0),
        TuneResult("random_forest", "rmse", {"max_depth": 4}, score=-2.0, cv_metric=2.0),
        TuneResult("gradient_boosting", "rmse", error="all 2 trials failed"),
    ]
    chosen = select_best(results)
    assert (chosen.family, chosen.cv_metric) == ("random_forest", 2.0)
    assert [r["family"] for r in chosen.ranking] == ["random_forest", "ridge", "gradient_boosting"]


def test_select_best_fails_when_nothing_trained():
    with pytest.raises(TrainingError, match="ridge: boom"):
        select_best([TuneResult("ridge", "rmse", error="boom")])


def test_fit_final_predicts_raw_rows(penguins):
    result = clean(penguins, "species")
    plan = plan_columns(result.contract, FeatureConfig())
    chosen = select_best([TuneResult("random_forest", "f1", {"n_estimators": 20}, 0.9, 0.9)])
    model = fit_final(plan, chosen, result.frame, seed=0)
    predictions = model.predict(penguins.drop(columns=["species"]).head(10))
    assert set(predictions) <= {"Adelie", "Chinstrap", "Gentoo"}
