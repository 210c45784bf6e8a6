"""ONNX graphs of kubecycle Pipelines: used only when they reproduce the scikit-learn model."""

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from kubecycle.catalog import DEFAULT_FAMILIES, FAMILIES, family_names
from kubecycle.components.features.core import plan_columns
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.modelling import TuneResult
from kubecycle.serving.onnx_export import compare, convert, export_onnx, session
from kubecycle.serving.onnx_feed import build_feed, labels_as_classes


def _fit(frame: pd.DataFrame, target: str | None, family: str, params: dict | None = None,
         select_k_best: int | None = None):
    result = clean(frame, target)
    plan = plan_columns(result.contract, FeatureConfig(select_k_best=select_k_best))
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
    graph, check = export_onnx(model, contract.serving_fields(), features)
    assert check.runtime == "onnx" and graph is not None, check.reason
    assert check.reason == f"identical predictions on {len(features)} test rows"
    assert check.to_tags() == {"kubecycle.serving_runtime": "onnx",
                              "kubecycle.serving_runtime_reason": check.reason}
    assert (task, family) in FAMILIES and family in family_names(task)


@pytest.mark.parametrize("family", DEFAULT_FAMILIES["classification"])
def test_mixed_columns_booleans_missing_text_and_ordinal_codes(mixed, family):
    frame = mixed.drop(columns=["signup", "amount"])
    frame["city"] = np.random.default_rng(1).choice([f"city{i}" for i in range(40)], len(frame))
    frame.loc[::7, "colour"] = np.nan  # NaN and None both mean missing
    model, features, contract = _fit(frame, "churn", family, {"n_estimators": 30}
                                     if family == "random_forest" else {}, select_k_best=5)
    graph, check = export_onnx(model, contract.serving_fields(), features)
    assert check.runtime == "onnx", check.reason
    # the request path: records as the service receives them, None for a missing value
    records = features.head(20).astype(object).where(features.head(20).notna(), None)
    outputs = session(graph).run(None, build_feed(records.to_dict("records"),
                                                  contract.serving_fields()))
    assert outputs[0].tolist() == model.predict(features.head(20)).tolist()
    assert np.allclose(outputs[1], model.predict_proba(features.head(20)), atol=1e-5)


@pytest.mark.parametrize("family", ["logistic_regression", "random_forest"])
def test_datetime_columns_are_expanded_by_the_feed(mixed, family):
    """ONNX cannot parse dates: the feed extracts the DatetimeExpander's parts, the same ones,
    from text (verification) and from the datetime objects a request carries."""
    frame = mixed.drop(columns=["amount"])
    frame.loc[::9, "signup"] = None
    model, features, contract = _fit(frame, "churn", family,
                                     {"n_estimators": 30} if family == "random_forest" else {})
    fields = contract.serving_fields()
    graph, check = export_onnx(model, fields, features)
    assert check.runtime == "onnx", check.reason
    stamps = [datetime(2021, 3, 4, 23, 30, tzinfo=timezone(timedelta(hours=-5))),  # 04:30 UTC
              datetime(2021, 3, 5, 1, 0, tzinfo=UTC), datetime(2022, 7, 1, 12), None,
              datetime(3000, 1, 1), datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
              "2021-06-01T08:00:00+02:00", "not a date"]
    records = features.head(len(stamps)).astype(object)
    records = records.where(records.notna(), None).to_dict("records")
    for record, stamp in zip(records, stamps, strict=True):
        record["signup"] = stamp
    outputs = session(graph).run(None, build_feed(records, fields))
    served_as_sklearn = pd.DataFrame.from_records(records, columns=list(fields))
    assert outputs[0].tolist() == model.predict(served_as_sklearn).tolist()
    assert np.allclose(outputs[1], model.predict_proba(served_as_sklearn), atol=1e-5)
    parts = build_feed(records[:1], fields)
    assert [parts[f"signup::{p}"][0, 0] for p in ("year", "month", "day", "dayofweek", "hour")] \
        == [2021, 3, 5, 4, 4]


def test_any_column_name_reaches_the_graph_as_it_is(penguins):
    """skl2onnx rewrites names into identifiers; the graph's inputs keep the raw names, even
    when two of them would rewrite to the same identifier."""
    odd = {"bill_length_mm": "bill length (mm)", "bill_depth_mm": "1st depth",
           "flipper_length_mm": "json", "body_mass_g": "bill_length__mm_", "island": "_id"}
    frame = penguins.rename(columns=odd)
    model, features, contract = _fit(frame, "species", "logistic_regression")
    graph, check = export_onnx(model, contract.serving_fields(), features)
    assert check.runtime == "onnx", check.reason
    assert {i.name for i in session(graph).get_inputs()} == set(features.columns)


def test_without_test_rows_nothing_is_verified_so_nothing_is_used(penguins):
    model, features, contract = _fit(penguins, "species", "logistic_regression")
    graph, check = export_onnx(model, contract.serving_fields(), None)
    assert graph is None and "no registered test rows" in check.reason
    graph, check = export_onnx(model, contract.serving_fields(), features.drop(columns=["island"]))
    assert graph is None and "island" in check.reason


def test_a_graph_that_predicts_differently_is_rejected(penguins):
    fields = clean(penguins, "species").contract.serving_fields()
    strong, features, _ = _fit(penguins, "species", "logistic_regression")
    weak, _, _ = _fit(penguins, "species", "logistic_regression", {"C": 1e-4})
    assert compare(strong, convert(strong, fields), features, fields) is None
    problem = compare(strong, convert(weak, fields), features, fields)
    assert problem is not None and ("labels differ" in problem or "probabilities" in problem)
    regression_fields = clean(penguins, "body_mass_g").contract.serving_fields()
    ridge, rows, _ = _fit(penguins, "body_mass_g", "ridge")
    flat, _, _ = _fit(penguins, "body_mass_g", "ridge", {"alpha": 1e6})
    assert "regression outputs differ" in compare(ridge, convert(flat, regression_fields), rows,
                                                  regression_fields)


def test_boolean_classes_and_nullable_columns_convert(mixed):
    """skl2onnx emits boolean classes as 0/1: the graph's labels are mapped back to booleans;
    nullable pandas dtypes reach the graph as the feed's numbers and text."""
    frame = mixed.drop(columns=["churn", "signup"])
    frame["large"] = frame.pop("amount") > frame["x2"].median()
    frame["x2"] = frame["x2"].astype("Float64")
    frame["member"] = frame["member"].astype("boolean").mask(frame.index % 7 == 0)
    frame["colour"] = frame["colour"].astype("category")
    model, features, contract = _fit(frame, "large", "logistic_regression")
    fields = contract.serving_fields()
    graph, check = export_onnx(model, fields, features)
    assert check.runtime == "onnx", check.reason
    records = features.head(20).astype(object).where(features.head(20).notna(), None)
    labels = session(graph).run(None, build_feed(records.to_dict("records"), fields))[0]
    assert labels_as_classes(labels, model.classes_).tolist() == model.predict(features.head(20)).tolist()
    assert model.classes_.tolist() == [False, True]
