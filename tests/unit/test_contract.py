import json

import pandas as pd
import pytest

from kubecycle.components.validate.core import clean
from kubecycle.contract import ColumnSpec, DataContract, column_kind, drift_kind, infer_contract


def test_contract_describes_each_column(mixed):
    columns = infer_contract(mixed, "churn", "classification").columns
    assert columns["x1"].kind == "numeric" and columns["x1"].min < columns["x1"].max
    assert columns["x2"].nullable and 0 < columns["x2"].missing_share < 0.3
    assert columns["colour"].categories == ["blue", "green", "red"]
    assert columns["member"].kind == "boolean"
    assert columns["signup"].kind == "datetime"


def test_column_kind_keeps_short_codes_categorical():
    assert column_kind(pd.Series(["A1", "B2"] * 5)) == "categorical"
    assert column_kind(pd.Series(["2024-01-02 10:00", "2024-03-04 11:30"] * 5)) == "datetime"
    assert column_kind(pd.Series([True, None, False], dtype=object)) == "boolean"


@pytest.mark.parametrize(("kind", "tested_as"), [("numeric", "numeric"), ("boolean", "categorical"),
                                                 ("datetime", "categorical"),
                                                 ("categorical", "categorical")])
def test_drift_is_tested_by_numbers_or_by_counts(kind, tested_as):
    assert drift_kind(kind) == tested_as


def test_the_json_form_round_trips_and_reads_contracts_without_inputs(penguins):
    contract = clean(penguins, "species").contract
    data = json.loads(json.dumps(contract.to_dict()))
    assert "dropped" not in data and "min" not in data["columns"]["island"]
    assert DataContract.from_dict(data) == contract
    decided = contract.with_inputs({"year": "constant", "<selection>": "a note"})
    assert decided.to_dict()["dropped"] == {"year": "constant"}
    assert DataContract.from_dict(decided.to_dict()) == decided


def test_the_inputs_are_what_the_feature_plan_kept(penguins):
    contract = clean(penguins, "species").contract.with_inputs({"year": "ID-like"})
    assert "species" not in contract.features and "year" in contract.features
    assert "year" not in contract.inputs and "island" in contract.inputs
    fields = contract.serving_fields()
    assert fields["year"] == {"kind": "numeric", "optional": True}
    assert fields["island"] == {"kind": "categorical",
                                "categories": ["Biscoe", "Dream", "Torgersen"]}
    assert "optional" not in fields["bill_length_mm"]


def test_violations_name_missing_and_retyped_columns(penguins):
    contract = infer_contract(penguins, "species", "classification")
    assert contract.violations(penguins) == []
    assert contract.violations(penguins.drop(columns=["species"])) == []  # unlabelled ok
    changed = penguins.drop(columns=["island"]).assign(body_mass_g="heavy")
    assert contract.violations(changed) == [
        "column 'island' is missing",
        "column 'body_mass_g' is categorical, the contract says numeric",
    ]
    ignored = contract.with_inputs({"island": "constant"})
    assert ignored.violations(penguins.drop(columns=["island"])) == []


def test_integer_columns_are_known_by_their_dtype():
    assert ColumnSpec.of(pd.Series([1, 2, 3])).integral
    assert not ColumnSpec.of(pd.Series([1.0, 2.0])).integral
