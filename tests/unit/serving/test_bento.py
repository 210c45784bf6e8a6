"""A bento built from a model, exported and imported into a clean store, serves it over HTTP
with `bentoml serve`: typed requests, 4xx for bad input, metrics and the inference log."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from kubecycle.components.features.core import plan_columns
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.errors import DataSourceError
from kubecycle.modelling import TuneResult
from kubecycle.monitoring.window import read_window
from kubecycle.registry import bento_name
from kubecycle.serving.bento import build_bento
from kubecycle.tracking import free_port


def test_bento_name():
    assert bento_name("Penguins Species/v1") == "penguins-species-v1"


def test_bentos_built_one_after_another_each_name_only_their_own_model(penguins):
    """BentoML records the service's models from the imported service.py; a second build in
    the same process must not take the first bento's module (an imported archive would then
    ask for a model it does not carry)."""
    import bentoml

    result = clean(penguins, "species")
    model = fit_final(plan_columns(result.contract, FeatureConfig()),
                      select_best([TuneResult("logistic_regression", "f1", {}, 0, 0)]),
                      result.frame, 0)
    for name in ("First Penguins", "Second Penguins"):
        packaged = build_bento(model, name, "1", result.contract)
        info = bentoml.get(packaged.bento_tag).info
        assert [str(m.tag) for m in info.models] == [packaged.model_tag]
        assert [str(m.tag) for service in info.services for m in service.models] == [
            packaged.model_tag]


def test_serving_fields_follow_the_contract(penguins):
    fields = clean(penguins, "species").contract.serving_fields()
    assert "species" not in fields
    assert fields["island"] == {"kind": "categorical", "categories": ["Biscoe", "Dream", "Torgersen"]}
    assert fields["bill_length_mm"] == {"kind": "numeric"}


def _serve(servers, tag: str, env: dict, cwd: Path):
    """`bentoml serve` in its own process group (stopped and reaped with it after the test)."""
    port = free_port()
    server = servers.start([str(Path(sys.executable).parent / "bentoml"), "serve", tag, "--host",
                            "127.0.0.1", "--port", str(port)], env, port, cwd, cwd / "serve.log")
    return server, f"http://127.0.0.1:{port}"


def _penguins_bento(penguins: pd.DataFrame, family: str, params: dict, version: str, **options):
    """A model of the penguins' species fitted on every row, and its bento."""
    result = clean(penguins, "species")
    plan = plan_columns(result.contract, FeatureConfig())
    model = fit_final(plan, select_best([TuneResult(family, "f1", params, 0, 0)]), result.frame, 0)
    return model, build_bento(model, "penguins", version, result.contract, test=result.frame,
                              **options)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@pytest.mark.slow
def test_exported_bento_serves_typed_requests_from_a_clean_store(mixed, tmp_path, servers):
    # any column name works as a request field, even those pydantic reserves or rewrites
    mixed = mixed.rename(columns={"customer_id": "_id", "member": "json", "x2": "x2 (cm)"})
    result = clean(mixed, "churn")
    plan = plan_columns(result.contract, FeatureConfig())  # includes a datetime column
    model = fit_final(plan, select_best([TuneResult("random_forest", "f1",
                                                    {"n_estimators": 10}, 0, 0)]),
                      result.frame, 0)
    columns = [c for c in mixed.columns if c != "churn"]
    assert "_id" in plan.dropped  # ID-like: the model does not read it
    packaged = build_bento(model, "Churn", "7", result.contract.with_inputs(plan.dropped),
                           export_dir=tmp_path / "export", test=result.frame)
    assert packaged.bento_tag.startswith("churn:") and Path(packaged.export_path).is_file()
    assert packaged.onnx.runtime == "onnx", packaged.onnx.reason  # datetime parts come from the feed

    log = tmp_path / "inference-log"
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "fresh-bentoml"),
           "KUBECYCLE_INFERENCE_LOG": str(log), "KUBECYCLE_INFERENCE_LOG_FLUSH_SECONDS": "0.5"}
    subprocess.run([str(Path(sys.executable).parent / "bentoml"), "import",
                    packaged.export_path], env=env, check=True, capture_output=True)
    server, base = _serve(servers, packaged.bento_tag, env, tmp_path)
    try:
        rows = _records(mixed[columns].head(5))
        one = requests.post(f"{base}/predict", json={"record": rows[0]}, timeout=30)
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["model_name"] == "Churn" and body["model_version"] == "7"
        assert body["prediction"] == model.predict(mixed[columns].head(1))[0]
        assert set(body["probabilities"]) == {"no", "yes"}
        # a column the feature plan dropped is an optional field
        without_id = {k: v for k, v in rows[0].items() if k != "_id"}
        answer = requests.post(f"{base}/predict", json={"record": without_id}, timeout=30)
        assert answer.status_code == 200 and answer.json()["prediction"] == body["prediction"]
        rows[1]["signup"] = "2021-03-04T23:30:00-05:00"  # an offset: the model sees UTC
        batch = requests.post(f"{base}/predict_batch", json={"records": rows}, timeout=30)
        assert batch.status_code == 200, batch.text
        expected = pd.DataFrame.from_records(rows)
        assert batch.json()["predictions"] == model.predict(expected).tolist()
        served = pd.DataFrame(batch.json()["probabilities"])[list(model.classes_)].to_numpy()
        assert abs(served - model.predict_proba(expected)).max() < 1e-5

        bad = {
            "missing field": {k: v for k, v in rows[0].items() if k != "x1"},
            "wrong type": {**rows[0], "x1": "lots"},
            "unknown category": {**rows[0], "colour": "purple"},
            "extra field": {**rows[0], "surprise": 1},
        }
        for case, record in bad.items():
            answer = requests.post(f"{base}/predict", json={"record": record}, timeout=30)
            assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text)
        empty = requests.post(f"{base}/predict_batch", json={"records": []}, timeout=30)
        assert empty.status_code == 400 and "empty" in empty.text
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert 'kubecycle_predictions_total{model_version="7"' in metrics
        schema = requests.get(f"{base}/docs.json", timeout=10).json()["components"]["schemas"]
        assert set(schema["Record"]["properties"]) == set(columns)  # the raw column names

        deadline = time.monotonic() + 30
        while not list(log.glob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.5)
        logged = pd.concat(read_window(log))
        assert len(logged) == 7 and {"prediction", "timestamp", "x1"} <= set(logged.columns)
    finally:
        servers.stop(server)


@pytest.mark.slow
def test_unwritable_inference_log_drops_and_counts(penguins, tmp_path, servers):
    _, packaged = _penguins_bento(penguins, "logistic_regression", {}, "1")
    assert packaged.onnx.runtime == "onnx", packaged.onnx.reason
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    import bentoml

    store = Path(bentoml.get(packaged.bento_tag).path).parents[2]  # BentoML's in-process home
    env = {**os.environ, "BENTOML_HOME": str(store), "KUBECYCLE_INFERENCE_LOG": str(blocker / "log"),
           "KUBECYCLE_INFERENCE_LOG_FLUSH_SECONDS": "0.3"}
    server, base = _serve(servers, packaged.bento_tag, env, tmp_path)
    try:
        record = _records(penguins.drop(columns="species").head(1))[0]
        for _ in range(3):
            assert requests.post(f"{base}/predict", json={"record": record}, timeout=30).ok
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            metrics = requests.get(f"{base}/metrics", timeout=10).text
            if 'kubecycle_inference_log_dropped_total{reason="write_failed"} 3.0' in metrics:
                break
            time.sleep(0.5)
        assert 'kubecycle_inference_log_dropped_total{reason="write_failed"} 3.0' in metrics
        assert requests.post(f"{base}/predict", json={"record": record}, timeout=30).ok
    finally:
        servers.stop(server)


@pytest.mark.slow
def test_onnx_bento_answers_what_the_scikit_learn_model_predicts(penguins, tmp_path, servers):
    model, packaged = _penguins_bento(penguins, "random_forest", {"n_estimators": 50}, "3")
    assert packaged.onnx.runtime == "onnx", packaged.onnx.reason
    import bentoml

    bento = bentoml.get(packaged.bento_tag)
    assert (Path(bento.path) / "src" / "model.onnx").is_file()
    requirements = (Path(bento.path) / "env" / "python" / "requirements.txt").read_text().split()
    assert any(p.startswith("onnxruntime==") for p in requirements)
    assert not any(p.startswith(("kfp", "evidently", "mlflow")) for p in requirements)
    store = Path(bento.path).parents[2]
    features = clean(penguins, "species").frame.drop(columns="species")
    env = {**os.environ, "BENTOML_HOME": str(store)}
    server, base = _serve(servers, packaged.bento_tag, env, tmp_path)
    try:
        rows = _records(features)
        answer = requests.post(f"{base}/predict_batch", json={"records": rows}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["predictions"] == model.predict(features).tolist()
        served = pd.DataFrame(body["probabilities"])[list(model.classes_)].to_numpy()
        assert abs(served - model.predict_proba(features)).max() < 1e-5
        one = requests.post(f"{base}/predict", json={"record": rows[3]}, timeout=30).json()
        assert one["prediction"] == body["predictions"][3] and one["model_version"] == "3"
        for value in ("Infinity", "-Infinity", "NaN"):  # JSON as Python and JavaScript write it
            text = json.dumps({"record": {**rows[3], "bill_length_mm": 1.0}}).replace(
                "1.0", value, 1)
            refused = requests.post(f"{base}/predict", data=text, timeout=30,
                                    headers={"content-type": "application/json"})
            assert refused.status_code in (400, 422), (value, refused.text)
            assert "bill_length_mm" in refused.text and "finite" in refused.text
    finally:
        servers.stop(server)


@pytest.mark.slow
def test_inference_log_goes_to_an_object_store(penguins, tmp_path, s3_bucket, servers):
    _, packaged = _penguins_bento(penguins, "logistic_regression", {}, "2",
                                  export_dir=f"{s3_bucket}/bentos")
    assert packaged.export_path == f"{s3_bucket}/bentos/penguins-2.bento"
    from pyarrow import fs

    bucket, key = fs.FileSystem.from_uri(packaged.export_path)
    fs.copy_files(key, str(tmp_path / "imported.bento"), source_filesystem=bucket)
    imported = subprocess.run(  # the archive is whole: a clean store imports it
        [str(Path(sys.executable).parent / "bentoml"), "import", str(tmp_path / "imported.bento")],
        env={**os.environ, "BENTOML_HOME": str(tmp_path / "clean")}, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    import bentoml

    store = Path(bentoml.get(packaged.bento_tag).path).parents[2]
    sink = f"{s3_bucket}/serving/inference-log"
    env = {**os.environ, "BENTOML_HOME": str(store), "KUBECYCLE_INFERENCE_LOG": sink,
           "KUBECYCLE_INFERENCE_LOG_FLUSH_SECONDS": "0.3"}  # AWS_* point at the stand-in
    server, base = _serve(servers, packaged.bento_tag, env, tmp_path)
    try:
        records = _records(penguins.drop(columns="species").head(4))
        batch = requests.post(f"{base}/predict_batch", json={"records": records}, timeout=30,
                              headers={"X-Request-ID": "order-17"})
        assert batch.headers["x-request-id"] == "order-17"
        assert batch.json()["request_ids"] == [f"order-17:{i}" for i in range(4)]
        single = requests.post(f"{base}/predict", json={"record": records[0]}, timeout=30,
                               headers={"X-Request-ID": "bad id\twith spaces"})
        generated = single.headers["x-request-id"]  # a malformed id is replaced, never echoed
        assert len(generated) == 32 and single.json()["request_id"] == generated
        deadline, logged = time.monotonic() + 30, pd.DataFrame()
        while len(logged) < 5 and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                logged = pd.concat(read_window(sink))
            except DataSourceError:  # nothing flushed yet
                logged = pd.DataFrame()
        assert len(logged) == 5
        assert sorted(logged["request_id"]) == sorted([f"order-17:{i}" for i in range(4)]
                                                      + [generated])
        assert set(logged["model_version"]) == {"2"}
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert "kubecycle_inference_log_dropped_total{" not in metrics or \
            'reason="write_failed"} 0.0' in metrics
    finally:
        servers.stop(server)
