"""Realized performance: a simulated log of 10k predictions whose labels arrive 0-7 days late."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error

from kubecycle.monitoring.labels import read_labels
from kubecycle.monitoring.realized import realized_performance

START = datetime(2026, 11, 1, tzinfo=UTC)
ROWS = 10_000


def _simulate(tmp_path, task: str = "classification"):
    rng = np.random.default_rng(7)
    stamps = START + pd.to_timedelta(np.sort(rng.uniform(0, 10, ROWS)), unit="D")
    if task == "classification":
        truth = rng.choice(["a", "b", "c"], ROWS, p=[0.5, 0.3, 0.2])
        predicted = np.where(rng.random(ROWS) < 0.8, truth, rng.choice(["a", "b", "c"], ROWS))
    else:
        truth = rng.normal(10, 3, ROWS)
        predicted = truth + rng.normal(0, 1 + np.arange(ROWS) / ROWS, ROWS)
    ids = [f"r{i}" for i in range(ROWS)]
    log = tmp_path / "inference-log"
    log.mkdir()
    for part, rows in enumerate(np.array_split(np.arange(ROWS), 4)):
        pd.DataFrame({"request_id": np.asarray(ids)[rows], "prediction": predicted[rows],
                      "timestamp": stamps[rows]}).to_parquet(log / f"part-{part}.parquet")
    delays = pd.to_timedelta(rng.uniform(0, 7, ROWS), unit="D")
    store = tmp_path / "inference-log" / "_labels"
    store.mkdir()
    labelled = rng.random(ROWS) < 0.9  # some predictions never get a label
    pd.DataFrame({"request_id": np.asarray(ids)[labelled],
                  "label": [json.dumps(v.item()) for v in truth[labelled]],
                  "received_at": (stamps + delays)[labelled]}).to_parquet(store / "part.parquet")
    frame = pd.DataFrame({"stamp": stamps, "day": stamps.floor("1D"), "truth": truth,
                          "predicted": predicted,
                          "received": stamps + delays, "labelled": labelled})
    return str(log), read_labels(str(store)), frame


def _pass(log, labels, now, task="classification", metric="f1", floor=None):
    return realized_performance(log, labels, task=task, metric=metric,
                                greater_is_better=metric in ("f1", "accuracy"),
                                chunk=timedelta(days=1), min_labels=30, floor=floor,
                                id_columns=[], now=now)


def test_per_day_metrics_equal_scikit_learn_on_the_joined_rows(tmp_path):
    log, labels, frame = _simulate(tmp_path)
    result = _pass(log, labels, START + timedelta(days=18))  # every label has arrived
    assert len(result.chunks) == 10
    for chunk in result.chunks:
        day = frame[frame["day"] == pd.Timestamp(chunk.start)]
        joined = day[day["labelled"]]
        assert chunk.predictions == len(day) and chunk.labelled == len(joined)
        assert chunk.metrics["accuracy"] == pytest.approx(
            accuracy_score(joined["truth"], joined["predicted"]), abs=1e-12)
        assert chunk.metrics["f1"] == pytest.approx(
            f1_score(joined["truth"], joined["predicted"], average="macro"), abs=1e-12)
        delay = (joined["received"] - joined["stamp"]).dt.total_seconds() / 3600
        assert chunk.delay_hours == pytest.approx(delay.mean(), rel=1e-9)


def test_late_labels_fill_in_earlier_chunks_on_a_later_pass(tmp_path):
    log, labels, frame = _simulate(tmp_path)
    early = _pass(log, labels, START + timedelta(days=4))
    late = _pass(log, labels, START + timedelta(days=18))
    first_early, first_late = early.chunks[0], late.chunks[0]
    assert first_early.start == first_late.start and first_early.predictions == first_late.predictions
    assert 0 < first_early.coverage < first_late.coverage == pytest.approx(
        frame[frame["day"] == pd.Timestamp(first_late.start)]["labelled"].mean())
    assert len(early.chunks) == 4  # predictions after `now` are not there yet


def test_a_floor_calls_for_retraining_on_the_newest_chunk_with_enough_labels(tmp_path):
    log, labels, _ = _simulate(tmp_path, "regression")
    result = _pass(log, labels, START + timedelta(days=18), "regression", "rmse", floor=1.5)
    assert result.latest is result.chunks[-1] and result.below_floor
    assert "realized rmse" in result.reason() and "past the floor 1.5" in result.reason()
    healthy = _pass(log, labels, START + timedelta(days=18), "regression", "rmse", floor=9.0)
    assert not healthy.below_floor and healthy.reason() == ""


def test_regression_rmse_per_chunk_equals_scikit_learn(tmp_path):
    log, labels, frame = _simulate(tmp_path, "regression")
    result = _pass(log, labels, START + timedelta(days=18), "regression", "rmse")
    for chunk in result.chunks:
        joined = frame[(frame["day"] == pd.Timestamp(chunk.start)) & frame["labelled"]]
        assert chunk.metrics["rmse"] == pytest.approx(
            mean_squared_error(joined["truth"], joined["predicted"]) ** 0.5, rel=1e-9)


def test_labels_without_a_request_id_join_on_id_columns(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    pd.DataFrame({"customer_id": ["C1", "C2", "C3"], "prediction": ["yes", "no", "no"],
                  "timestamp": [START] * 3}).to_parquet(log / "part.parquet")
    labels = pd.DataFrame({"request_id": [None, None], "customer_id": ["C1", "C3"],
                           "label": ["yes", "yes"], "received_at": [START + timedelta(hours=5)] * 2})
    result = realized_performance(str(log), labels, task="classification", metric="accuracy",
                                  greater_is_better=True, chunk=timedelta(days=1), min_labels=1,
                                  floor=None, id_columns=["customer_id"],
                                  now=START + timedelta(days=1))
    [chunk] = result.chunks
    assert (chunk.predictions, chunk.labelled) == (3, 2)
    assert chunk.metrics["accuracy"] == 0.5 and chunk.delay_hours == pytest.approx(5.0)
