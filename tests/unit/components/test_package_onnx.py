"""ONNX graphs of kubecycle Pipelines: used only when they reproduce the scikit-learn model."""

import numpy as np
import pandas as pd
import pytest

from kubecycle.catalog import DEFAULT_FAMILIES, FAMILIES, family_names
from kubecycle.components.features.core import plan_features
from kubecycle.components.package.core import serving_fields
from kubecycle.components.package.onnx_export import compare, convert, export_onnx, session
from kubecycle.components.package.onnx_feed import build_feed
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.tune.core import TuneResult
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig


def _fit(frame: pd.DataFrame, target: str | None, family: str, params: dict | None = None,
         select_k_best: int | None = None):
    result = clean(frame, target)
    plan = plan_features(result.contract, FeatureConfig(select_k_best=select_k_best))
    choice = select_best([TuneResult(family, "metric", params or {}, 0, 0)])
    model = fit_final(plan, choice, result.frame, 0)
    return model, result.frame.drop(columns=[target] if target else []), result.contract


@pytest.mark.parametrize("task,family", [
    (task, name) for task in ("classification", "regression", "clustering")
    for name in family_names(task)])
def test_every_family_converts_to_an_identical_graph(penguins, task, family):
    target = {"classification": "species", "regression": "body_mass_g", "clustering": None}[task]
    frame = penguins.drop(columns=["species"]) if task == "clustering" else penguins
    params = {"n_estimators": 30} if "forest" in family else {}
    model, features, contract = _fit(frame, target, family, params)
    graph, check = export_onnx(model, serving_fields(contract), features)
    assert check.used and graph is not None, check.reason
    assert check.reason == f"identical predictions on {len(features)} test rows"
    assert check.to_tags() == {"kubecycle.onnx": "verified", "kubecycle.onnx_reason": check.reason}
    assert (task, family) in FAMILIES and family in family_names(task)


@pytest.mark.parametrize("family", DEFAULT_FAMILIES["classification"])
def test_mixed_columns_booleans_missing_text_and_ordinal_codes(mixed, family):
    frame = mixed.drop(columns=["signup", "amount"])
    frame["city"] = np.random.default_rng(1).choice([f"city{i}" for i in range(40)], len(frame))
    frame.loc[::7, "colour"] = np.nan  # NaN and None both mean missing
    model, features, contract = _fit(frame, "churn", family, {"n_estimators": 30}
                                     if family == "random_forest" else {}, select_k_best=5)
    graph, check = export_onnx(model, serving_fields(contract), features)
    assert check.used, check.reason
    # the request path: records as the service receives them, None for a missing value
    records = features.head(20).astype(object).where(features.head(20).notna(), None)
    outputs = session(graph).run(None, build_feed(records.to_dict("records"),
                                                  serving_fields(contract)))
    assert outputs[0].tolist() == model.predict(features.head(20)).tolist()
    assert np.allclose(outputs[1], model.predict_proba(features.head(20)), atol=1e-5)


def test_datetime_columns_fall_back_to_scikit_learn_saying_why(mixed):
    model, features, contract = _fit(mixed.drop(columns=["amount"]), "churn", "logistic_regression")
    graph, check = export_onnx(model, serving_fields(contract), features)
    assert graph is None and not check.used
    assert "DatetimeExpander" in check.reason and check.reason.startswith("conversion failed")
    assert check.to_tags()["kubecycle.onnx"] == "fallback"


def test_without_test_rows_nothing_is_verified_so_nothing_is_used(penguins):
    model, features, contract = _fit(penguins, "species", "logistic_regression")
    graph, check = export_onnx(model, serving_fields(contract), None)
    assert graph is None and "no registered test rows" in check.reason
    graph, check = export_onnx(model, serving_fields(contract), features.drop(columns=["island"]))
    assert graph is None and "island" in check.reason


def test_a_graph_that_predicts_differently_is_rejected(penguins):
    fields = serving_fields(clean(penguins, "species").contract)
    strong, features, _ = _fit(penguins, "species", "logistic_regression")
    weak, _, _ = _fit(penguins, "species", "logistic_regression", {"C": 1e-4})
    assert compare(strong, convert(strong, fields), features, fields) is None
    problem = compare(strong, convert(weak, fields), features, fields)
    assert problem is not None and ("labels differ" in problem or "probabilities" in problem)
    regression_fields = serving_fields(clean(penguins, "body_mass_g").contract)
    ridge, rows, _ = _fit(penguins, "body_mass_g", "ridge")
    flat, _, _ = _fit(penguins, "body_mass_g", "ridge", {"alpha": 1e6})
    assert "regression outputs differ" in compare(ridge, convert(flat, regression_fields), rows,
                                                  regression_fields)
