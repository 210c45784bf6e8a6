import pandas as pd
import pytest

from kubecycle.components.features.core import plan_columns
from kubecycle.components.tune.core import search_family
from kubecycle.components.validate.core import clean
from kubecycle.config import parse_config
from kubecycle.modelling import TuneResult


def _setup(frame: pd.DataFrame, target: str | None, **overrides):
    cfg = parse_config({"data": {"source": "x.csv", "target": target}, **overrides})
    result = clean(frame, target)
    return cfg, plan_columns(result.contract, cfg.features), result.frame


@pytest.mark.parametrize("strategy", ["grid", "random", "bayesian"])
def test_each_strategy_finds_a_good_model(penguins, strategy):
    cfg, plan, frame = _setup(penguins, "species", tuning={"strategy": strategy, "trials": 4})
    seen = []
    result = search_family(cfg, plan, "logistic_regression", frame,
                         on_trial=lambda n, p, v, e: seen.append((n, p, v, e)))
    expected = 3 if strategy == "grid" else 4  # the grid of C has 3 points
    assert result.trials == expected and result.failed_trials == 0
    assert result.cv_metric > 0.9
    assert set(result.best_params) == {"C"}
    assert [s[0] for s in seen] == list(range(expected)) and all(s[3] is None for s in seen)


def test_grid_is_capped_by_its_size(penguins):
    cfg, plan, frame = _setup(penguins, "species", tuning={"strategy": "grid", "trials": 50})
    assert search_family(cfg, plan, "logistic_regression", frame).trials == 3  # 3 points for C


def test_regression_reports_error_in_metric_units(mixed):
    cfg, plan, frame = _setup(mixed.drop(columns=["churn"]), "amount",
                              tuning={"trials": 2, "strategy": "random"})
    result = search_family(cfg, plan, "ridge", frame)
    assert result.metric == "rmse"
    assert 0 < result.cv_metric < 1.0  # noise scale 0.3, so a linear fit is close
    assert result.score == pytest.approx(-result.cv_metric)


def test_clustering_scores_silhouette(penguins):
    cfg, plan, frame = _setup(penguins.drop(columns=["species"]), None,
                              tuning={"trials": 3, "strategy": "random"})
    result = search_family(cfg, plan, "kmeans", frame)
    assert result.metric == "silhouette" and -1 <= result.cv_metric <= 1


def test_failing_trials_are_reported_not_raised(penguins):
    cfg, plan, frame = _setup(penguins, "species", tuning={"trials": 2, "strategy": "random"},
                              models={"search_spaces": {"random_forest": {
                                  "max_depth": {"type": "int", "low": -5, "high": -1}}}})
    result = search_family(cfg, plan, "random_forest", frame)
    assert result.score is None and result.failed_trials == 2
    assert "all 2 trials failed" in result.error and "max_depth" in result.error
    assert isinstance(TuneResult(**result.to_dict()), TuneResult)


def test_local_runs_cap_the_tune_thread_pools(penguins, monkeypatch):
    from threadpoolctl import threadpool_info

    from kubecycle.settings import TUNE_THREADS

    monkeypatch.setenv(TUNE_THREADS.name, "1")
    cfg, plan, frame = _setup(penguins, "species", tuning={"trials": 1, "strategy": "random"})
    seen = []
    search_family(cfg, plan, "gradient_boosting", frame,
                on_trial=lambda *_: seen.extend(p["num_threads"] for p in threadpool_info()))
    assert seen and set(seen) == {1}


def test_first_trial_is_the_library_default_so_the_search_never_ends_below_it(penguins):
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from kubecycle.catalog import get_family
    from kubecycle.modelling import make_model, scorer_for

    cfg, plan, frame = _setup(penguins, "species", tuning={"trials": 3, "strategy": "bayesian"})
    seen = []
    result = search_family(cfg, plan, "lightgbm", frame,
                           on_trial=lambda n, p, v, e: seen.append((p, v)))
    spec = get_family("classification", "lightgbm")
    assert seen[0][0] == spec.start
    x, y = frame.drop(columns=["species"]), frame["species"]
    folds = StratifiedKFold(n_splits=cfg.tuning.cv_folds, shuffle=True, random_state=cfg.split.seed)
    default = cross_val_score(make_model(plan, spec, spec.start, cfg.split.seed), x, y, cv=folds,
                              scoring=scorer_for("f1")).mean()
    assert seen[0][1] == pytest.approx(default)
    assert result.cv_metric >= default


def test_defaults_outside_a_user_space_are_drawn_from_it(penguins):
    cfg, plan, frame = _setup(penguins, "species", tuning={"trials": 1, "strategy": "random"},
                              models={"search_spaces": {"logistic_regression": {
                                  "C": {"type": "float", "low": 5.0, "high": 10.0}}}})
    seen = []
    search_family(cfg, plan, "logistic_regression", frame,
                  on_trial=lambda n, p, v, e: seen.append(p))
    assert 5.0 <= seen[0]["C"] <= 10.0  # the default C=1 lies outside the user's space
