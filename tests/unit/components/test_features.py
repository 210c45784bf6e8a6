import numpy as np
import pandas as pd

from kubecycle.components.features.core import plan_columns
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
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
