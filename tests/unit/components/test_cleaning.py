"""The training-rows filters find injected outliers and flipped labels, and training without
them scores better on the same untouched test rows."""

import numpy as np
import pandas as pd
import pytest

from kubecycle.components.cleaning.core import filter_training_rows
from kubecycle.components.features.core import plan_columns
from kubecycle.components.split.core import split_frame
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import CleaningConfig, FeatureConfig, parse_config
from kubecycle.errors import DataValidationError
from kubecycle.evaluation import evaluate_model
from kubecycle.modelling import TuneResult


def regression_with_outliers(rows: int = 600, share: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(0, 1, rows), "b": rng.normal(5, 2, rows),
                          "c": rng.uniform(-1, 1, rows)})
    frame["y"] = 3 * frame.a - 2 * frame.b + 4 * frame.c + rng.normal(0, 0.3, rows)
    bad = rng.choice(rows, int(rows * share), replace=False)
    frame.loc[bad, "a"] += rng.choice([-1, 1], len(bad)) * 40  # gross errors in a feature
    frame.loc[bad, "y"] += rng.choice([-1, 1], len(bad)) * 400  # and in the target
    return frame.assign(injected=frame.index.isin(bad))


def classification_with_flipped_labels(rows: int = 900, share: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(0, 1, rows), "b": rng.normal(0, 1, rows)})
    frame["label"] = np.where(frame.a + frame.b > 0, "pos", "neg")
    flipped = rng.choice(rows, int(rows * share), replace=False)
    frame.loc[flipped, "label"] = np.where(frame.loc[flipped, "label"] == "pos", "neg", "pos")
    return frame.assign(injected=frame.index.isin(flipped))


def _fit_and_score(train, test, plan, family, params, target, task, metric):
    model = fit_final(plan, select_best([TuneResult(family, metric, params, 0, 0)]), train, 0)
    return evaluate_model(model, test, target, task).metrics[metric]


@pytest.mark.parametrize("method", ["iqr", "zscore", "isolation_forest", "lof"])
def test_outlier_filters_find_injected_rows_and_help_the_held_out_score(method):
    frame = regression_with_outliers()
    train, test = split_frame(frame, "y", "regression", 0.3, 0)
    test = test[~test.injected]  # the held-out truth: clean rows
    injected = train.injected.to_numpy()
    train, test = train.drop(columns="injected"), test.drop(columns="injected")
    cleaned = clean(train, "y")
    plan = plan_columns(cleaned.contract, FeatureConfig())
    contract = cleaned.contract.with_inputs(plan.dropped)
    settings = CleaningConfig.model_validate(
        {"outliers": {"method": method, "action": "drop", "contamination": 0.06}})
    result = filter_training_rows(train, contract, plan, settings, 0)
    dropped = result.rows_before - len(result.frame)
    assert result.outliers.flagged == result.outliers.dropped == dropped > 0
    kept_injected = train[injected].merge(result.frame, how="inner").shape[0]
    assert kept_injected <= 0.2 * injected.sum(), (method, kept_injected, injected.sum())
    assert dropped <= 2 * injected.sum()  # and not many clean rows with them
    if method in ("iqr", "zscore"):
        assert set(result.outliers.by_column) >= {"a"}
    before = _fit_and_score(train, test, plan, "ridge", {}, "y", "regression", "r2")
    after = _fit_and_score(result.frame, test, plan, "ridge", {}, "y", "regression", "r2")
    assert after > before + 0.05, (method, before, after)


def test_confident_learning_finds_flipped_labels_and_helps_the_held_out_score():
    frame = classification_with_flipped_labels()
    train, test = split_frame(frame, "label", "classification", 0.3, 0)
    flipped = train.injected.to_numpy()
    train = train.drop(columns="injected")
    test = test[~test.injected].drop(columns="injected")
    cleaned = clean(train, "label")
    plan = plan_columns(cleaned.contract, FeatureConfig())
    settings = CleaningConfig.model_validate(
        {"label_noise": {"method": "confident_learning", "action": "drop"},
         "max_drop_share": 0.3})
    result = filter_training_rows(train, cleaned.contract, plan, settings, 0)
    kept = train.assign(flipped=flipped).merge(result.frame, how="inner")
    assert kept.flipped.sum() <= 0.35 * flipped.sum()  # most flipped rows are gone
    assert result.label_noise.flagged <= 2 * flipped.sum()  # and few correct ones with them
    before = _fit_and_score(train, test, plan, "random_forest", {"n_estimators": 50,
                            "min_samples_leaf": 1}, "label", "classification", "accuracy")
    after = _fit_and_score(result.frame, test, plan, "random_forest", {"n_estimators": 50,
                           "min_samples_leaf": 1}, "label", "classification", "accuracy")
    assert after > before, (before, after)


def test_report_counts_without_dropping_and_too_much_dropping_stops():
    frame = regression_with_outliers().drop(columns="injected")
    cleaned = clean(frame, "y")
    plan = plan_columns(cleaned.contract, FeatureConfig())
    report = CleaningConfig.model_validate({"outliers": {"method": "iqr"}})
    result = filter_training_rows(frame, cleaned.contract, plan, report, 0)
    assert result.outliers.flagged > 0 and result.outliers.dropped == 0
    assert len(result.frame) == len(frame)
    strict = CleaningConfig.model_validate(
        {"outliers": {"method": "zscore", "threshold": 0.5, "action": "drop"}})
    with pytest.raises(DataValidationError, match=r"cleaning\.max_drop_share"):
        filter_training_rows(frame, cleaned.contract, plan, strict, 0)
    unknown = CleaningConfig.model_validate({"outliers": {"method": "iqr", "columns": ["zz"]}})
    with pytest.raises(DataValidationError, match=r"outliers.columns \['zz'\]"):
        filter_training_rows(frame, cleaned.contract, plan, unknown, 0)


def test_label_noise_is_for_classification_only():
    with pytest.raises(Exception, match="label_noise applies to classification"):
        parse_config({"data": {"source": "x.csv", "target": "y"}, "task": "regression",
                      "cleaning": {"label_noise": {"method": "confident_learning"}}})
