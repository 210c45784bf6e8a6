"""Shared fixtures: data sets of several shapes, and real servers (MLflow, PostgreSQL, a
recording stand-in of the KFP v2beta1 REST API used with an unpatched kfp.Client)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from kubecycle.examples import EXAMPLES_DIR


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test writes under its own KUBECYCLE_HOME (and BentoML store)."""
    monkeypatch.setenv("KUBECYCLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "home" / "bentoml"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "KUBECYCLE_TRACKING_URI"):
        # set, then removed: the test starts without it, and whatever the test sets (as
        # mlflow.set_tracking_uri and set_registry_uri do) is gone after it
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)


@pytest.fixture
def penguins() -> pd.DataFrame:
    return pd.read_csv(EXAMPLES_DIR / "penguins.csv")


def mixed_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numeric, categorical, boolean, datetime and ID columns, missing values, an
    imbalanced string label and a numeric target."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.uniform(0, 10, size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(rows)],
        "x1": x1,
        "x2": np.where(rng.random(rows) < 0.1, np.nan, x2),
        "colour": np.where(rng.random(rows) < 0.05, None, colour),
        "member": rng.random(rows) < 0.3,
        "signup": pd.date_range("2021-01-01", periods=rows, freq="D").astype(str),
        "constant": 1,
    })
    score = 2 * x1 + 0.5 * x2 + (colour == "red") * 1.5 + rng.normal(scale=0.3, size=rows)
    frame["amount"] = score
    frame["churn"] = np.where(score > np.quantile(score, 0.8), "yes", "no")  # 20% positives
    return frame


@pytest.fixture
def mixed() -> pd.DataFrame:
    return mixed_frame()


@pytest.fixture(scope="session")
def make_mixed():
    return mixed_frame


def _register_model(frame: pd.DataFrame, server: str, name: str, target: str, task: str,
                   metric: str, family: str) -> pd.DataFrame:
    """Train a family with its default parameters, register it (the gate promotes a first
    version) and return the held-out feature rows."""
    from kubecycle.components.features.core import plan_columns
    from kubecycle.components.register.core import register_version
    from kubecycle.components.split.core import split_frame
    from kubecycle.components.track.core import start_parent_run
    from kubecycle.components.train.core import fit_final, select_best
    from kubecycle.components.validate.core import clean
    from kubecycle.config import parse_config
    from kubecycle.evaluation import evaluate_model
    from kubecycle.modelling import TuneResult

    cfg = parse_config({"data": {"source": "x.csv", "target": target},
                        "mlflow": {"model_name": name}})
    run_id = start_parent_run(cfg, server)
    cleaned = clean(frame, target)
    train, test = split_frame(cleaned.frame, target, task, 0.3, 0)
    plan = plan_columns(cleaned.contract, cfg.features)
    model = fit_final(plan, select_best([TuneResult(family, metric, {}, 0, 0)]), train, 0)
    metrics = evaluate_model(model, test, target, task).metrics
    register_version(model, run_id=run_id, model_name=name, task=task, metric=metric,
                     test_metrics=metrics, train=train, test=test, target=target,
                     contract=cleaned.contract.with_inputs(plan.dropped), seed=0,
                     min_score=None, min_improvement=0.0)
    return test.drop(columns=target)


@pytest.fixture(scope="session")
def register_model():
    """_register_model, for fixtures of any scope (tests cannot import a conftest by name:
    several conftest modules share that name)."""
    return _register_model


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real `mlflow server` process on 127.0.0.1 for the whole session."""
    from kubecycle.tracking import local_server

    home = tmp_path_factory.mktemp("mlflow-home")
    with local_server(home) as url:
        yield url


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed; run `make system-deps`")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A real PostgreSQL server started for the session (initdb refuses root: run as postgres)."""
    from kubecycle.tracking import free_port

    bindir = _pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="kubecycle-pg-"))
    shutil.chown(folder, "postgres", "postgres") if os.geteuid() == 0 else None
    data = folder / "data"
    port = free_port()

    def as_pg(*cmd: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)

    subprocess.run(as_pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "kc"),
                   check=True, capture_output=True)
    subprocess.run(as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
                         "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "-w",
                         "start"), check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg2://kc@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        import sqlalchemy

        while True:
            try:
                with sqlalchemy.create_engine(url).connect():
                    break
            except sqlalchemy.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run(as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


# --- KFP REST API stand-in -------------------------------------------------------------

API = "/apis/v2beta1"
CREATED = "2025-01-01T00:00:00Z"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: Any  # parsed JSON, or the raw bytes of anything else (e.g. a multipart upload)


@dataclass
class KfpStandIn:
    """Answers the endpoints kfp.Client calls like the KFP API server does, recording each request.
    `run_states` are the states successive GETs of a run report (the last one repeats);
    `failures` maps (method, route name) to (HTTP status, message) answered instead."""

    run_states: list[str] = field(default_factory=lambda: ["PENDING"])
    failures: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    experiments: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[str, Callable[..., dict]]] = {
            ("GET", f"{API}/healthz"): ("healthz", self.healthz),
            ("GET", f"{API}/experiments"): ("list experiments", self.list_experiments),
            ("POST", f"{API}/experiments"): ("create experiment", self.create_experiment),
            ("POST", f"{API}/runs"): ("create run", self.create_run),
            ("GET", f"{API}/runs/(?P<run_id>[^/:]+)"): ("get run", self.get_run),
            ("POST", f"{API}/recurringruns"): ("create recurring run", self.create_recurring_run),
        }

    def healthz(self, request: Recorded) -> dict:
        return {"commit_sha": "stand-in", "tag_name": "2.14.3", "multi_user": False}

    def list_experiments(self, request: Recorded) -> dict:
        predicates = json.loads(request.query.get("filter", ["{}"])[0]).get("predicates", [])
        found = [e for e in self.experiments.values()  # JSON protobuf: either spelling of the field
                 if all(e[p["key"]] == p.get("string_value", p.get("stringValue")) for p in predicates)]
        return {"experiments": found, "total_size": len(found)} if found else {}

    def create_experiment(self, request: Recorded) -> dict:
        experiment = {**request.body, "experiment_id": str(uuid.uuid4()), "created_at": CREATED,
                      "storage_state": "AVAILABLE"}
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def create_run(self, request: Recorded) -> dict:
        if request.body.get("experiment_id") not in self.experiments:
            raise ApiError(400, f"Failed to create a run: experiment {request.body.get('experiment_id')} "
                                "not found")
        run = {**request.body, "run_id": str(uuid.uuid4()), "created_at": CREATED, "state": "PENDING"}
        self.runs[run["run_id"]] = run
        return run

    def get_run(self, request: Recorded, run_id: str) -> dict:
        if run_id not in self.runs:
            raise ApiError(404, f"Run {run_id} not found")
        state = self.run_states.pop(0) if len(self.run_states) > 1 else self.run_states[0]
        error = {"code": 2, "message": "task train-model failed"} if state == "FAILED" else None
        return {**self.runs[run_id], "state": state, **({"error": error} if error else {})}

    def create_recurring_run(self, request: Recorded) -> dict:
        return {**request.body, "recurring_run_id": str(uuid.uuid4()), "created_at": CREATED,
                "status": "ENABLED"}

    def answer(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict]:
        """Record the request and route it; errors look like the API's google.rpc.Status JSON."""
        parts = urlsplit(raw_path)
        body: Any = raw
        if "json" in headers.get("content-type", "") and raw:
            body = json.loads(raw)
        request = Recorded(method, parts.path, parse_qs(parts.query), headers, body)
        self.requests.append(request)
        for (route_method, pattern), (name, handler) in self.routes.items():
            match = re.fullmatch(pattern, parts.path)
            if route_method == method and match:
                try:
                    if (method, name) in self.failures:
                        raise ApiError(*self.failures[method, name])
                    return 200, handler(request, **match.groupdict())
                except ApiError as exc:
                    return exc.status, {"error": exc.message, "code": 3, "message": exc.message,
                                        "details": []}
        return 404, {"error": "Not Found", "code": 5, "message": f"no route {method} {parts.path}"}

    def sent(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.fullmatch(path, r.path)]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        standin: KfpStandIn = self.server.standin  # type: ignore[attr-defined]
        status, payload = standin.answer(self.command, self.path,
                                       {k.lower(): v for k, v in self.headers.items()}, raw)
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def kfp_api() -> Iterator[KfpStandIn]:
    """The stand-in, serving on a free 127.0.0.1 port in a thread for one test."""
    standin = KfpStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.standin = standin  # type: ignore[attr-defined]
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)




@pytest.fixture
def s3_bucket(monkeypatch) -> Iterator[str]:
    """A real HTTP S3 API stand-in (moto's server) on 127.0.0.1 with one bucket; the AWS_*
    variables point Arrow, boto3 and child processes at it. Yields s3://bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    from kubecycle.tracking import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3").create_bucket(Bucket="kubecycle-test")
    try:
        yield "s3://kubecycle-test"
    finally:  # moto keeps its state per process, not per server: the next test starts empty
        import requests

        requests.post(f"http://127.0.0.1:{port}/moto-api/reset", timeout=30)
        server.stop()


# --- server processes ------------------------------------------------------------------


def process_tree(pid: int) -> set[int]:
    """A process and all its descendants (from /proc; those already gone are left out)."""
    found, pending = set(), [pid]
    while pending:
        current = pending.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found.add(current)
        pending.extend(int(child) for child in children)
    return found


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (state first); [] when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _started(pid: int) -> str:
    """The start time of a process (clock ticks since boot), "" when it is gone: with the pid,
    it names one process (pids are reused)."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ServerGroup:
    """Server processes, each started as the leader of its own process group (as a container's
    processes are), so that stopping one ends and reaps everything it started. BentoML's
    workers run in process groups of their own, so each process of a server's tree is
    recorded (pid and start time) and killed by pid if it outlives the stop."""

    started: list[subprocess.Popen] = field(default_factory=list)
    trees: dict[int, dict[int, str]] = field(default_factory=dict)  # leader -> pid: start time

    process_tree = staticmethod(process_tree)
    alive = staticmethod(alive)
    port_open = staticmethod(port_open)

    def start(self, command: list[str], env: dict[str, str], port: int, cwd: Path | None = None,
              log: Path | None = None, ready_seconds: float = 120) -> subprocess.Popen:
        """Start a server and wait until GET /readyz answers 200 on 127.0.0.1:port."""
        import requests

        with log.open("w") if log else open(os.devnull, "w") as output:  # read it when it fails
            process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append(process)
        deadline = time.monotonic() + ready_seconds
        while True:
            self._record(process)
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    self._record(process)
                    return process
            except requests.RequestException:
                pass
            assert process.poll() is None, f"{command[:2]} exited: see {log}"
            assert time.monotonic() < deadline, f"{command[:2]} did not become ready: see {log}"
            time.sleep(0.5)

    def _record(self, process: subprocess.Popen) -> None:
        tree = self.trees.setdefault(process.pid, {})
        for pid in process_tree(process.pid) - {process.pid}:
            if started := _started(pid):
                tree.setdefault(pid, started)

    def _signal_recorded(self, process: subprocess.Popen, sig: int) -> None:
        for pid, started in self.trees.get(process.pid, {}).items():
            if alive(pid) and _started(pid) == started:  # the same process, not a reuse
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def wait_gone(self, pids: set[int], seconds: float = 60) -> set[int]:
        """Wait (bounded) until none of the processes runs; return those still running."""
        deadline = time.monotonic() + seconds
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        return {pid for pid in pids if alive(pid)}

    def stop(self, process: subprocess.Popen, grace: float = 60) -> None:
        """SIGTERM the server's process group (its processes, if the leader is gone), wait
        for every process of its tree, then SIGKILL whatever is left (a failing test must not
        leave servers behind)."""
        if process.poll() is None:
            self._record(process)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        else:
            self._signal_recorded(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        self.wait_gone(set(self.trees.get(process.pid, {})), grace)
        if process.poll() is None:
            process.kill()
        self._signal_recorded(process, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        """Stop every server, including what a server already reaped left running."""
        for process in self.started:
            self.stop(process)


@pytest.fixture
def servers() -> Iterator[ServerGroup]:
    """Start servers in their own process groups; all of them are stopped and reaped after
    the test."""
    group = ServerGroup()
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def module_servers() -> Iterator[ServerGroup]:
    """Like `servers`, for servers shared by a module's tests."""
    group = ServerGroup()
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def penguins_bento() -> dict[str, Any]:
    """A penguins bento (logistic regression, ONNX runtime) for a module's servers: its tag,
    the BentoML store holding it and one request record."""
    import bentoml

    from kubecycle.components.features.core import plan_columns
    from kubecycle.components.train.core import fit_final, select_best
    from kubecycle.components.validate.core import clean
    from kubecycle.config import FeatureConfig
    from kubecycle.modelling import TuneResult
    from kubecycle.serving.bento import build_bento

    result = clean(pd.read_csv(EXAMPLES_DIR / "penguins.csv"), "species")
    model = fit_final(plan_columns(result.contract, FeatureConfig()),
                      select_best([TuneResult("logistic_regression", "f1", {}, 0, 0)]),
                      result.frame, 0)
    packaged = build_bento(model, "penguins", "1", result.contract, test=result.frame)
    assert packaged.onnx.runtime == "onnx", packaged.onnx.reason
    record = result.frame.drop(columns="species").head(1).astype(object)
    return {"tag": packaged.bento_tag,
            "store": Path(bentoml.get(packaged.bento_tag).path).parents[2],  # in-process home
            "record": record.where(record.notna(), None).to_dict("records")[0]}
