import numpy as np
import pandas as pd
import pytest

from kubecycle.components.features.core import plan_columns
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.errors import DataValidationError
from kubecycle.modelling import FeaturePlan, build_preprocessor
from kubecycle.transformers import DatetimeExpander


def test_plan_routes_columns_by_kind(mixed):
    contract = clean(mixed, "churn").contract
    plan = plan_columns(contract, FeatureConfig())
    assert plan.numeric == ["x1", "x2", "amount"]
    assert plan.onehot == ["colour", "member"]
    assert plan.datetime == ["signup"]
    assert plan.dropped["constant"] == "constant"
    assert plan.dropped["customer_id"].startswith("ID-like")
    assert FeaturePlan.from_dict(plan.to_dict()) == plan


def test_many_levels_are_ordinal(mixed):
    frame = mixed.assign(city=[f"city{i % 40}" for i in range(len(mixed))])
    plan = plan_columns(clean(frame, "churn").contract, FeatureConfig(max_onehot_categories=10))
    assert "city" in plan.ordinal


def test_preprocessor_handles_missing_and_unseen_values(mixed):
    plan = plan_columns(clean(mixed, "churn").contract, FeatureConfig(select_k_best=4))
    x = mixed.drop(columns=["churn"])
    pre = build_preprocessor(plan).fit(x, mixed.churn)
    unseen = x.head(3).assign(colour=["purple", None, "red"], x2=np.nan, signup="garbage")
    out = pre.transform(unseen)
    assert out.shape == (3, 4)
    assert np.isfinite(out).all()
    names = build_preprocessor(FeaturePlan(**{**plan.to_dict(), "select_k_best": None})).fit(
        x).get_feature_names_out()
    assert "datetime__signup_month" in names and "onehot__colour_red" in names


def test_datetime_parts_are_utc_for_mixed_offsets_and_missing_for_non_dates():
    column = pd.DataFrame({"at": ["2021-03-04T23:30:00-05:00", "2021-03-05 01:00:00+00:00",
                                  "2021-03-05 07:15", None, "not a date"]})
    expander = DatetimeExpander().fit(column)
    parts = expander.transform(column)
    assert parts[:3].tolist() == [[2021, 3, 5, 4, 4], [2021, 3, 5, 4, 1], [2021, 3, 5, 4, 7]]
    assert np.isnan(parts[3:]).all()
    assert expander.get_feature_names_out().tolist() == [
        "at_year", "at_month", "at_day", "at_dayofweek", "at_hour"]


def test_categorical_columns_of_any_dtype_are_encoded_as_text():
    """bool-only, bool with missing values, pandas category and nullable string columns."""
    frame = pd.DataFrame({
        "paid": [True, False, True, False] * 5,
        "vip": pd.Series([True, None, False, True] * 5, dtype=object),
        "tier": pd.Categorical(["a", "b", None, "a"] * 5),
        "region": pd.array(["n", None, "s", "n"] * 5, dtype="string"),
        "label": ["x", "y"] * 10,
    })
    result = clean(frame, "label")
    plan = plan_columns(result.contract, FeatureConfig())
    assert sorted(plan.onehot) == ["paid", "region", "tier", "vip"]
    encoded = build_preprocessor(plan).fit(result.frame).get_feature_names_out().tolist()
    assert "onehot__vip_True" in encoded and "onehot__vip___missing__" in encoded
    assert "onehot__tier_a" in encoded and "onehot__paid_False" in encoded


def _products_frame(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows),
                          "c": rng.uniform(-2, 2, size=rows)})
    frame.loc[::25, "b"] = np.nan
    frame["y"] = 3 * frame.a * frame.b.fillna(frame.b.median()) + frame.c ** 2 + rng.normal(
        scale=0.1, size=rows)
    return frame


def _held_out_r2(frame: pd.DataFrame, create: dict) -> tuple[float, object, pd.DataFrame]:
    from kubecycle.components.train.core import fit_final, select_best
    from kubecycle.modelling import TuneResult

    result = clean(frame, "y")
    plan = plan_columns(result.contract, FeatureConfig(create=create))
    train, test = result.frame.iloc[:450], result.frame.iloc[450:]
    model = fit_final(plan, select_best([TuneResult("ridge", "r2", {"alpha": 1e-3}, 0, 0)]),
                      train, 0)
    return model.score(test.drop(columns="y"), test.y), model, test


def test_created_products_let_a_linear_model_learn_them():
    frame = _products_frame()
    plain, _, _ = _held_out_r2(frame, {})
    pairs, _, _ = _held_out_r2(frame, {"products": "interactions"})
    both, model, test = _held_out_r2(frame, {"products": "polynomial"})
    assert plain < 0.3 and pairs < 0.95 < both  # y needs a*b and c^2
    assert list(model[:-1].get_feature_names_out()) == [
        "created__a", "created__b", "created__c", "created__a^2", "created__a b", "created__a c",
        "created__b^2", "created__b c", "created__c^2"]
    _, subset, _ = _held_out_r2(frame, {"products": "interactions", "columns": ["a", "b"]})
    assert list(subset[:-1].get_feature_names_out()) == [
        "numeric__c", "created__a", "created__b", "created__a b"]
    # the graph reproduces them: served by ONNX Runtime like every other feature
    from kubecycle.serving.onnx_export import export_onnx

    contract = clean(frame, "y").contract
    _, check = export_onnx(model, contract.serving_fields(), test.drop(columns="y"))
    assert check.runtime == "onnx", check.reason
    # explanations name a product by its columns
    from kubecycle.components.explain.columns import source_columns

    assert source_columns(model[:-1])[:5] == ["a", "b", "c", "a^2", "a b"]


def test_create_names_a_bad_column_and_a_long_list():
    contract = clean(_products_frame(), "y").contract
    with pytest.raises(DataValidationError, match=r"features.create.columns: \['zz'\] are not "
                                                  r"numeric input columns; choose from \['a', 'b', 'c'\]"):
        plan_columns(contract, FeatureConfig(create={"products": "interactions",
                                                     "columns": ["a", "zz"]}))
    with pytest.raises(DataValidationError, match=r"more than features\.create\.max_columns"):
        plan_columns(contract, FeatureConfig(create={"products": "polynomial", "max_columns": 2,
                                                     "columns": ["a", "b", "c"]}))
    capped = plan_columns(contract, FeatureConfig(create={"products": "interactions",
                                                          "max_columns": 2}))
    assert capped.combined == ["a", "b"]
