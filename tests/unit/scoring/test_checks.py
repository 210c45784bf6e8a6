import numpy as np
import pandas as pd
import pytest

from kubecycle.errors import DataValidationError
from kubecycle.scoring.checks import REASON_COLUMN, check_chunk, required_columns

FIELDS = {
    "amount": {"kind": "numeric"},
    "member": {"kind": "boolean"},
    "signup": {"kind": "datetime"},
    "colour": {"kind": "categorical", "categories": ["blue", "green", "red"]},
    "note": {"kind": "text"},
    "customer_id": {"kind": "text", "optional": True},
}


def _chunk(**columns):
    base = {"amount": ["1.5"], "member": ["true"], "signup": ["2024-01-02"], "colour": ["red"],
            "note": ["x"], "customer_id": ["C1"]}
    rows = max(len(v) for v in columns.values()) if columns else 1
    return pd.DataFrame({k: columns.get(k, v * rows) for k, v in base.items()})


def test_good_rows_come_back_typed_as_the_service_types_them():
    checked = check_chunk(_chunk(amount=["1.5", None], member=["true", "0"]), FIELDS)
    assert checked.accepted.all() and checked.rejected.empty
    features = checked.features
    assert list(features.columns) == list(FIELDS)
    assert features["amount"].tolist()[0] == 1.5 and np.isnan(features["amount"].tolist()[1])
    assert features["member"].tolist() == [True, False]


GOOD = {"amount": "1", "member": "false", "signup": "2024-01-02T10:00:00", "colour": "red"}


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("amount", "abc", "amount: 'abc' is not a number"),
    ("amount", "inf", "amount: 'inf' is not a finite number"),
    ("amount", "-1e400", "amount: '-1e400' is not a finite number"),
    ("member", "maybe", "member: 'maybe' is not true or false"),
    ("signup", "yesterday", "signup: 'yesterday' is not a date and time"),
    ("colour", "purple", "colour: 'purple' is not a known category (blue, green, red)"),
])
def test_each_broken_field_is_named_with_its_value(column, value, reason):
    checked = check_chunk(_chunk(**{column: [GOOD[column], value]}), FIELDS)
    assert checked.accepted.tolist() == [True, False], checked.rejected
    assert checked.rejected[REASON_COLUMN].tolist() == [reason]
    assert checked.rejected[column].tolist() == [value]  # the row as it was read
    assert len(checked.features) == 1


def test_every_broken_field_of_a_row_is_listed():
    checked = check_chunk(_chunk(amount=["x"], colour=["purple"]), FIELDS)
    assert checked.rejected[REASON_COLUMN].tolist() == [
        "amount: 'x' is not a number; colour: 'purple' is not a known category (blue, green, red)"]


def test_typed_parquet_columns_are_checked_too():
    chunk = _chunk().assign(amount=[float("inf")], member=[True])
    checked = check_chunk(chunk, FIELDS)
    assert checked.rejected[REASON_COLUMN].tolist() == ["amount: 'inf' is not a finite number"]


def test_an_optional_column_may_be_absent_a_required_one_may_not():
    chunk = _chunk().drop(columns="customer_id")
    required_columns(FIELDS, list(chunk.columns), "in.csv")
    assert check_chunk(chunk, FIELDS).accepted.all()
    with pytest.raises(DataValidationError, match=r"in.csv lacks the model's input columns \['note'\]"):
        required_columns(FIELDS, ["amount", "member", "signup", "colour"], "in.csv")
