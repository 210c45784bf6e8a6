"""The label store: labels from files joined to an inference log, newest label per prediction."""

from __future__ import annotations

import pandas as pd
import pytest

from kubecycle.errors import DataSourceError, DataValidationError
from kubecycle.monitoring.labels import read_labels, record_labels


@pytest.fixture
def inference_log(tmp_path):
    folder = tmp_path / "inference-log"
    folder.mkdir()
    pd.DataFrame({"request_id": ["a", "b", "c:0"], "customer_id": [7, 8, 9],
                  "prediction": ["yes", "no", "no"]}).to_parquet(folder / "part-1.parquet")
    return str(folder)


def test_labels_join_on_request_id_and_unknown_ones_are_reported(tmp_path, inference_log):
    pd.DataFrame({"request_id": ["a", "c:0", "zz"], "churn": ["yes", "yes", "no"]}).to_csv(
        tmp_path / "labels.csv", index=False)
    store = str(tmp_path / "labels")
    result = record_labels(str(tmp_path / "labels.csv"), inference_log, store, [], "churn")
    assert (result.read, result.joined, result.unknown) == (3, 2, 1)
    assert result.unknown_examples == ["zz"] and result.keys == ["request_id"]
    labels = read_labels(store)
    assert dict(zip(labels["request_id"], labels["label"], strict=True)) == {
        "a": "yes", "c:0": "yes", "zz": "no"}


def test_sending_labels_again_is_idempotent_and_the_newest_counts(tmp_path, inference_log):
    store = str(tmp_path / "labels")
    pd.DataFrame({"customer_id": [7, 8], "churn": [1, 0]}).to_csv(tmp_path / "l.csv", index=False)
    first = record_labels(str(tmp_path / "l.csv"), inference_log, store, ["customer_id"], "churn")
    assert (first.joined, first.unknown) == (2, 0)  # ids compared as text: 7 == "7"
    record_labels(str(tmp_path / "l.csv"), inference_log, store, ["customer_id"], "churn")
    pd.DataFrame({"customer_id": [8], "churn": [1]}).to_csv(tmp_path / "fix.csv", index=False)
    record_labels(str(tmp_path / "fix.csv"), inference_log, store, ["customer_id"], "churn")
    labels = read_labels(store)
    assert dict(zip(labels["customer_id"], labels["label"], strict=True)) == {"7": 1, "8": 1}


def test_missing_columns_or_log_are_named_and_nothing_is_stored(tmp_path, inference_log):
    pd.DataFrame({"request_id": ["a"], "outcome": ["yes"]}).to_csv(tmp_path / "l.csv", index=False)
    store = tmp_path / "labels"
    with pytest.raises(DataValidationError, match=r"lacks the columns \['churn'\]"):
        record_labels(str(tmp_path / "l.csv"), inference_log, str(store), [], "churn")
    with pytest.raises(DataSourceError, match=r"--inference-log .*nowhere not found"):
        record_labels(str(tmp_path / "l.csv"), str(tmp_path / "nowhere"), str(store), [],
                      "outcome")
    pd.DataFrame({"region": ["north"], "outcome": ["yes"]}).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(DataValidationError, match=r"inference log .* has no column \['region'\]"):
        record_labels(str(tmp_path / "r.csv"), inference_log, str(store), ["region"], "outcome")
    assert not store.exists()
    assert read_labels(str(store)).empty
