"""What was registered before the architecture step still works: a model and a bento made by
kubecycle at 2072214 (tests/fixtures/compat, made by make_compat.py there) load, predict and
serve, though their transformers live under the features stage's old module path."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests

from kubecycle import transformers
from kubecycle.contract import DataContract
from kubecycle.serving.bento import build_bento
from kubecycle.tracking import free_port

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "compat"


@pytest.fixture
def old_model(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    return mlflow.sklearn.load_model(str(FIXTURE / "model"))


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.read_csv(FIXTURE / "rows.csv")


def test_the_fixture_refers_to_the_old_path():
    trusted = (FIXTURE / "model" / "MLmodel").read_text()
    assert "kubecycle.components.features.transformers.DatetimeExpander" in trusted


def test_a_model_saved_before_loads_and_predicts_as_it_did(old_model, rows):
    assert old_model.predict(rows.drop(columns="expected")).tolist() == rows.expected.tolist()
    assert transformers.DatetimeExpander in estimator_types(old_model)  # found at its new home


def estimator_types(estimator) -> set[type]:
    """The types of an estimator and of everything nested in it (pipelines, column
    transformers)."""
    found = {type(estimator)}
    for _, step in getattr(estimator, "steps", []):
        found |= estimator_types(step)
    for _, step, _ in getattr(estimator, "transformers_", []):
        found |= estimator_types(step)
    return found


def test_its_contract_reads_and_a_bento_built_now_serves_it(old_model, rows):
    import bentoml

    contract = DataContract.from_dict(json.loads((FIXTURE / "contract.json").read_text()))
    assert contract.inputs == ["amount", "colour", "signup"] and contract.dropped == {}
    features = rows.drop(columns="expected")
    packaged = build_bento(old_model, "compat-now", "2", contract, test=features)
    assert packaged.onnx.runtime == "onnx", packaged.onnx.reason
    rebuilt = bentoml.sklearn.load_model(packaged.model_tag)
    assert rebuilt.predict(features).tolist() == rows.expected.tolist()


@pytest.mark.slow
def test_a_bento_exported_before_still_serves(rows, tmp_path, servers):
    bentoml_cli = str(Path(sys.executable).parent / "bentoml")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "KUBECYCLE_INFERENCE_LOG": ""}
    subprocess.run([bentoml_cli, "import", str(FIXTURE / "compat-1.bento")], env=env, check=True,
                   capture_output=True)
    port = free_port()
    server = servers.start([bentoml_cli, "serve", "compat:latest", "--host", "127.0.0.1",
                            "--port", str(port)], env, port, tmp_path, tmp_path / "serve.log")
    try:
        record = rows.drop(columns="expected").iloc[0].to_dict()
        answer = requests.post(f"http://127.0.0.1:{port}/predict", json={"record": record},
                               timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["prediction"] == rows.expected[0]
        assert answer.json()["model_name"] == "compat" and answer.json()["model_version"] == "1"
    finally:
        servers.stop(server)
