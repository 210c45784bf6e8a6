"""The running service under hostile and heavy traffic: fuzzed from its own OpenAPI document
(schemathesis), never a 5xx; a bounded load run with zero failures and flat memory."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from kubecycle.components.features.core import plan_columns
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.examples import EXAMPLES_DIR
from kubecycle.modelling import TuneResult
from kubecycle.serving.bento import build_bento
from kubecycle.tracking import free_port

LOAD_SECONDS = 20
LOAD_ROUNDS = 4
LOAD_CLIENTS = 8


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (BentoML runs a worker process)."""
    total, pids = 0.0, [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines()
                      if line.startswith("VmRSS:")) / 1024
        pids.extend(int(child) for child in children)
    return total


@pytest.fixture(scope="module")
def service(tmp_path_factory, module_servers):
    """A penguins bento (ONNX runtime) served by `bentoml serve` for this module, with a
    datetime column, so that fuzzed dates (any year, any offset) reach the feed."""
    import bentoml

    folder = tmp_path_factory.mktemp("service")
    penguins = pd.read_csv(EXAMPLES_DIR / "penguins.csv")
    penguins["observed"] = pd.date_range("2007-11-01", periods=len(penguins), freq="37h").astype(str)
    result = clean(penguins, "species")
    model = fit_final(plan_columns(result.contract, FeatureConfig()),
                      select_best([TuneResult("random_forest", "f1", {"n_estimators": 50}, 0, 0)]),
                      result.frame, 0)
    packaged = build_bento(model, "penguins", "5", result.contract, test=result.frame)
    assert packaged.onnx.runtime == "onnx", packaged.onnx.reason
    store = Path(bentoml.get(packaged.bento_tag).path).parents[2]  # BentoML's in-process home
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(store), "KUBECYCLE_INFERENCE_LOG": str(folder / "log"),
           "KUBECYCLE_INFERENCE_LOG_FLUSH_SECONDS": "1"}
    server = module_servers.start(
        [str(Path(sys.executable).parent / "bentoml"), "serve", packaged.bento_tag,
         "--host", "127.0.0.1", "--port", str(port)], env, port, log=folder / "serve.log")
    base = f"http://127.0.0.1:{port}"
    record = result.frame.drop(columns="species").head(1).astype(object)
    yield {"base": base, "pid": server.pid, "model": model,
           "record": record.where(record.notna(), None).to_dict("records")[0]}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_never_get_a_server_error(service, mode):
    schema = schemathesis.openapi.from_url(f"{service['base']}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    predicting = [op for op in operations if op.path.startswith(("/predict", "/explain"))]
    assert {op.path for op in predicting} == {"/predict", "/predict_batch", "/predict_rows",
                                              "/explain"}
    calls = []
    for operation in predicting:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=50, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:
            response = case.call(base_url=service["base"], timeout=30)
            calls.append(response.status_code)
            assert response.status_code < 500, (case.path, case.body, response.text)

        fuzz()
    assert len(calls) >= 20
    if mode == GenerationMode.NEGATIVE:
        assert any(400 <= status < 500 for status in calls)  # invalid input was refused
    else:
        assert 200 in calls  # valid records were scored


@pytest.mark.slow
def test_bounded_load_has_no_failures_and_flat_memory(service):
    base, record = service["base"], service["record"]
    session_count = {"ok": 0, "failed": []}
    lock = threading.Lock()

    def client(stop_at: float) -> None:
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                try:
                    answer = session.post(f"{base}/predict", json={"record": record}, timeout=10)
                    outcome = answer.status_code
                except requests.RequestException as exc:
                    outcome = repr(exc)
                with lock:
                    if outcome == 200:
                        session_count["ok"] += 1
                    else:
                        session_count["failed"].append(outcome)

    def run(seconds: float) -> None:
        stop_at = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(stop_at,)) for _ in range(LOAD_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 30)

    # warm-up past the request timeout: BentoML holds a timer per request for that long
    run(float(os.environ.get("KUBECYCLE_REQUEST_TIMEOUT_SECONDS", "10")) + 2)
    samples = []
    for _ in range(LOAD_ROUNDS):
        run(LOAD_SECONDS / LOAD_ROUNDS)
        samples.append(_rss_mb(service["pid"]))
    assert session_count["failed"] == []
    assert session_count["ok"] > LOAD_SECONDS * 10  # it really was loaded
    growth = samples[-1] - samples[0]  # after warm-up, memory must stop growing
    assert growth < max(20.0, 0.05 * samples[0]), samples
    expected = service["model"].predict(pd.DataFrame([record]))[0]
    assert requests.post(f"{base}/predict", json={"record": record}, timeout=10).json()[
        "prediction"] == expected


@pytest.mark.slow
def test_adaptive_batching_merges_concurrent_requests_without_errors(service):
    base, record = service["base"], service["record"]
    expected = service["model"].predict(pd.DataFrame([record]))[0]
    answers, lock = [], threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            for _ in range(150):
                answer = session.post(f"{base}/predict_rows", json={"records": [record, record]},
                                      timeout=30)
                with lock:
                    answers.append((answer.status_code, answer.json() if answer.ok else answer.text))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 16 * 150
    assert {status for status, _ in answers} == {200}
    assert all(len(body) == 2 and body[0]["prediction"] == expected and body[0]["model_version"]
               == "5" for _, body in answers)
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    sums = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
            if line.startswith("bentoml_service_adaptive_batch_size_") and "predict_rows" in line
            and not line.startswith("bentoml_service_adaptive_batch_size_bucket")}
    assert sums["bentoml_service_adaptive_batch_size_sum"] > \
        2 * sums["bentoml_service_adaptive_batch_size_count"]  # requests were merged
    assert requests.post(f"{base}/predict_rows", json={"records": []}, timeout=10).json() == []
