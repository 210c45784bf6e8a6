"""Benchmark: kubecycle's BentoML service against a hand-written FastAPI endpoint, `mlflow
models serve` and in-process predict, with the same model on the same machine.

    python bench/serving.py [--duration 20] [--rows 20000] [--quick]

A seeded synthetic table (the test suite's mixed shape without the datetime column: numeric,
boolean, categorical and ID columns with missing values, a binary label) trains the issue's
reference model, a 100-tree random forest behind the ColumnTransformer, on 75% of the rows;
`build_bento` packages it (ONNX Runtime when the graph reproduces the predictions on the
next 12.5%); the last 12.5% are the request rows. Each HTTP server runs as its own process on
127.0.0.1 and a free port, one worker each, with no inference log:

  kubecycle          `bentoml serve` of the bento as packaged (ONNX Runtime if verified)
  kubecycle-sklearn  the same bento with KUBECYCLE_RUNTIME=sklearn
  fastapi            the baseline: a minimal FastAPI app under uvicorn calling predict on
                     the joblib-dumped Pipeline (/predict and /predict_batch)
  mlflow             `mlflow models serve --env-manager local -w 1` of the model saved with
                     mlflow.sklearn.save_model (dataframe_records to /invocations)
  kubecycle-v2       the bento as packaged, on its Open Inference Protocol route
                     (/v2/models/{name}/infer, one JSON input per column)
  kubecycle-invocations  the bento as packaged, on MLflow's protocol (/invocations)
  bare-noop          the limit of the machine: a bare ASGI app under uvicorn (no framework, no
                     model, no access log) answering every POST with a constant

The protocols' share of /predict is then measured again in alternating rounds of the three
routes on one kubecycle server (--protocol-rounds), which see the same machine load, unlike
separate servers measured minutes apart; the target uses these rounds.

And the limit, in this process without HTTP: predict on prebuilt one-row (or 100-row)
DataFrames (in-process-sklearn) and the verified graph's session.run on prebuilt feeds
(in-process-onnx). A closed-loop load generator in another process (bench/_load.py: aiohttp,
N concurrent clients) drives each server for a fixed duration after a warm-up: single records
at 1, 8 and 32 clients and 100-row batches at 8 clients. Server memory is the peak RSS of the
server's process tree, CPU its average cores used. Before the load, each server answers the
first 300 request rows, compared with the scikit-learn model's predictions.

Prints a table per case with the ratios to the FastAPI baseline, then PASS/MISS against the
issue's targets; exits 0 whatever the figures (a measurement, not a test), non-zero only if
kubecycle's service could not be built or started.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import psutil
import requests

from kubecycle.components.features.core import plan_columns
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import FeatureConfig
from kubecycle.modelling import TuneResult
from kubecycle.tracking import free_port

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TARGET = "churn"
BATCH_ROWS, CHECK_ROWS = 100, 300
SPEEDUP_TARGET, P99_TARGET_MS = 5.0, 50.0
PEERS = ("fastapi", "mlflow")  # the peers of the throughput target
NOOP_SHARE_TARGET = 0.20  # single records at most clients: kubecycle vs the bare no-op
PROTOCOL_SHARE_TARGET = 0.80  # V2 and /invocations vs /predict
READY_SECONDS = 120


def make_data(rows: int, noise: float, seed: int = 0) -> pd.DataFrame:
    """tests/conftest.py's mixed_frame without the datetime column; noise > 0 blurs `amount`,
    the column that nearly decides the label, so trees grow deeper and votes split."""
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
        "constant": 1,
    })
    score = 2 * x1 + 0.5 * x2 + (colour == "red") * 1.5 + rng.normal(scale=0.3, size=rows)
    frame["amount"] = score + (rng.normal(scale=noise, size=rows) if noise else 0.0)
    frame[TARGET] = np.where(score > np.quantile(score, 0.8), "yes", "no")
    return frame


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: NaN and None become null, numpy scalars plain values."""
    return json.loads(frame.to_json(orient="records"))


@dataclass
class Model:
    pipeline: object
    columns: list[str]
    request_rows: pd.DataFrame  # held out from training and from the packaging check
    bento_tag: str
    onnx_used: bool
    onnx_reason: str
    onnx_graph: Path | None
    fields: dict
    fit_seconds: float


def build_model(rows: int, noise: float, work: Path) -> Model:
    from kubecycle.serving.bento import build_bento

    result = clean(make_data(rows, noise), TARGET)
    frame = result.frame
    train, test = frame.iloc[: rows * 3 // 4], frame.iloc[rows * 3 // 4: rows * 7 // 8]
    plan = plan_columns(result.contract, FeatureConfig())
    started = time.perf_counter()
    pipeline = fit_final(plan, select_best([TuneResult("random_forest", "f1", {"n_estimators": 100},
                                                       0, 0)]), train, 0)
    fit_seconds = time.perf_counter() - started
    packaged = build_bento(pipeline, "bench-serving", "1", result.contract, test=test)
    import bentoml

    graph = Path(bentoml.get(packaged.bento_tag).path) / "src" / "model.onnx"
    fields = result.contract.serving_fields()
    return Model(pipeline, list(fields), frame.iloc[rows * 7 // 8:][list(fields)].reset_index(drop=True),
                 packaged.bento_tag, packaged.onnx.runtime == "onnx", packaged.onnx.reason,
                 graph if graph.is_file() else None, fields, fit_seconds)


FASTAPI_APP = '''\
"""The hand-written baseline: load the Pipeline, call predict."""
import joblib
import pandas as pd
from fastapi import FastAPI

model = joblib.load({model!r})
columns = {columns!r}
app = FastAPI()


@app.get("/readyz")
def ready():
    return {{"ok": True}}


@app.post("/predict")
def predict(body: dict):
    frame = pd.DataFrame.from_records([body["record"]], columns=columns)
    return {{"prediction": model.predict(frame).tolist()[0]}}


@app.post("/predict_batch")
def predict_batch(body: dict):
    frame = pd.DataFrame.from_records(body["records"], columns=columns)
    return {{"predictions": model.predict(frame).tolist()}}
'''


BARE_APP = '''\
"""The limit of the machine: a bare ASGI app, no framework, no model."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({{"type": "lifespan.startup.complete"}})
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]}})
    await send({{"type": "http.response.body", "body": b'{{"predictions": []}}'}})
'''


def v2_body(rows: list[dict], fields: dict) -> dict:
    """An Open Inference Protocol request: one input per column (pandas codec convention)."""
    def datatype(spec: dict) -> str:
        return {"numeric": "FP64", "boolean": "BOOL"}.get(spec["kind"], "BYTES")

    return {"inputs": [{"name": name, "shape": [len(rows)], "datatype": datatype(spec),
                        "data": [row.get(name) for row in rows]} for name, spec in fields.items()]}


def v2_predictions(answer: dict) -> list:
    return next(o["data"] for o in answer["outputs"] if o["name"] == "prediction")


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: str  # GET path answering 200 once the model is loaded
    single: tuple[str, Callable[[dict], dict]]  # path, body of one record
    batch: tuple[str, Callable[[list[dict]], dict]]  # path, body of records
    port: int
    process: subprocess.Popen | None = None
    log: Path | None = None
    predictions: Callable[[dict], list] | None = lambda answer: answer["predictions"]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def make_servers(model: Model, work: Path) -> list[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECYCLE_")}
    env.update(BENTOML_HOME=os.environ["BENTOML_HOME"], BENTOML_DO_NOT_TRACK="True",
               MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", PYTHONUNBUFFERED="1",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")  # mlflow execs `uvicorn`
    joblib.dump(model.pipeline, work / "model.joblib")
    app = work / "fastapi"
    app.mkdir()
    (app / "app.py").write_text(FASTAPI_APP.format(model=str(work / "model.joblib"),
                                                   columns=model.columns))
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    sample = model.request_rows.head(500)  # as kubecycle's register step saves it (skops)
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model.pipeline))
    with warnings.catch_warnings():  # the hint that integer columns cannot hold missing values
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(sample, model.pipeline.predict(sample))
    mlflow.sklearn.save_model(model.pipeline, str(work / "mlflow-model"), skops_trusted_types=trusted,
                              signature=signature)
    kube = (("/predict", lambda r: {"record": r}), ("/predict_batch", lambda rs: {"records": rs}))
    invocations = (("/invocations", lambda r: {"dataframe_records": [r]}),
                   ("/invocations", lambda rs: {"dataframe_records": rs}))
    v2_path = "/v2/models/bench-serving/infer"
    v2 = ((v2_path, lambda r: v2_body([r], model.fields)),
          (v2_path, lambda rs: v2_body(rs, model.fields)))
    (work / "bare").mkdir()
    (work / "bare" / "app.py").write_text(BARE_APP.format())

    def bentoml_serve(port: int) -> list[str]:
        return [str(BIN / "bentoml"), "serve", model.bento_tag, "--host", "127.0.0.1", "--port", str(port)]

    def uvicorn(folder: Path) -> Callable[[int], list[str]]:
        return lambda p: [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1",
                          "--port", str(p), "--workers", "1", "--no-access-log",
                          "--log-level", "warning", "--app-dir", str(folder)]

    servers = []
    for name, argv, extra, ready, paths in [
        ("kubecycle", bentoml_serve, {}, "/readyz", kube),
        ("kubecycle-sklearn", bentoml_serve, {"KUBECYCLE_RUNTIME": "sklearn"}, "/readyz", kube),
        ("fastapi", uvicorn(app), {}, "/readyz", kube),
        ("mlflow", lambda p: [str(BIN / "mlflow"), "models", "serve", "-m", str(work / "mlflow-model"),
                              "--env-manager", "local", "-h", "127.0.0.1", "-p", str(p), "-w", "1"],
         {}, "/ping", invocations),
        ("kubecycle-v2", bentoml_serve, {}, "/readyz", v2),
        ("kubecycle-invocations", bentoml_serve, {}, "/readyz", invocations),
        ("bare-noop", uvicorn(work / "bare"), {}, "/readyz", kube),
    ]:
        port = free_port()
        servers.append(Server(name, argv(port), {**env, **extra}, ready, paths[0], paths[1], port,
                              predictions={"kubecycle-v2": v2_predictions,
                                           "bare-noop": None}.get(name, Server.predictions)))
    return servers


def start(server: Server, work: Path) -> None:
    server.log = work / f"{server.name}.log"
    with server.log.open("w") as log:
        server.process = subprocess.Popen(server.argv, env=server.env, cwd=work, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            if requests.get(server.base + server.ready, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} was not ready within {READY_SECONDS} s")
        time.sleep(0.3)


def stop(server: Server) -> None:
    """SIGTERM to the server's own process group, SIGKILL after 20 s."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def log_tail(server: Server, lines: int = 15) -> str:
    if server.log is None or not server.log.is_file():
        return ""
    return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])


class TreeMonitor:
    """Peak RSS and CPU seconds of a process and its descendants, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self.stopped = threading.Event()

    def _sample(self) -> None:
        total = 0
        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                with process.oneshot():
                    total += process.memory_info().rss
                    times = process.cpu_times()
                    self.cpu[process.pid] = times.user + times.system
            except psutil.Error:
                continue
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self.stopped.wait(0.2):
            self._sample()

    def __enter__(self) -> TreeMonitor:
        self._sample()
        self.cpu_before, self.started = dict(self.cpu), time.perf_counter()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
        self._sample()
        seconds = time.perf_counter() - self.started
        used = sum(v - self.cpu_before.get(pid, 0.0) for pid, v in self.cpu.items())
        self.cores = used / seconds if seconds else 0.0


@dataclass
class Case:
    kind: str  # "single" or "batch"
    clients: int

    @property
    def rows(self) -> int:
        return 1 if self.kind == "single" else BATCH_ROWS

    @property
    def label(self) -> str:
        return (f"single record, {self.clients} client{'s' * (self.clients != 1)}" if self.kind == "single"
                else f"{BATCH_ROWS}-row batches, {self.clients} clients")


@dataclass
class Result:
    server: str
    clients: str
    requests_per_s: float
    rows_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    rss_mb: float | None = None
    cores: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def run_load(server: Server, case: Case, pool: list[dict], args, work: Path) -> Result:
    path, body = server.single if case.kind == "single" else server.batch
    if case.kind == "single":
        bodies = [body(r) for r in pool]
    else:
        bodies = [body(pool[i: i + BATCH_ROWS]) for i in range(0, len(pool) - BATCH_ROWS + 1, BATCH_ROWS)]
    payload = work / f"bodies-{server.name}-{case.kind}.json"
    payload.write_text(json.dumps(bodies))
    argv = [sys.executable, str(HERE / "_load.py"), server.base + path, str(payload),
            "--clients", str(case.clients), "--duration", str(args.duration),
            "--warmup", str(args.warmup), "--rows", str(case.rows)]
    with TreeMonitor(server.process.pid) as monitor:
        done = subprocess.run(argv, capture_output=True, text=True,
                              timeout=args.warmup + args.duration + 90)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()[-500:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(server.name, str(case.clients), out["requests"] / out["seconds"],
                  out["rows"] / out["seconds"], out["p50_ms"], out["p99_ms"], out["errors"],
                  monitor.peak / 2**20, monitor.cores, out["first_error"] or "",
                  {"client_cpu": out["client_cpu_seconds"] / (args.duration + args.warmup)})


def check_predictions(server: Server, rows: list[dict], expected: list) -> str | None:
    """None when the server's answers equal the expected labels, else what differs."""
    path, body = server.batch
    answer = requests.post(server.base + path, json=body(rows), timeout=120)
    if answer.status_code != 200:
        return f"batch request answered HTTP {answer.status_code}: {answer.text[:300]}"
    served = server.predictions(answer.json())
    differing = sum(a != b for a, b in zip(served, expected, strict=True))
    if differing:
        return f"{differing} of {len(rows)} batch predictions differ"
    if server.single[0] == "/predict":  # one request per record, as the load sends them
        path, body = server.single
        with requests.Session() as session:
            singles = [session.post(server.base + path, json=body(r), timeout=30).json()["prediction"]
                       for r in rows]
        differing = sum(a != b for a, b in zip(singles, expected, strict=True))
        if differing:
            return f"{differing} of {len(rows)} single-record predictions differ"
    return None


def in_process(name: str, call: Callable[[object], object], inputs: list, rows: int,
               duration: float, warmup: float) -> Result:
    """Call predict back to back on prebuilt inputs in this process (one thread)."""
    latencies: list[float] = []
    index = 0
    warm = time.perf_counter() + warmup
    end = warm + duration
    while (begin := time.perf_counter()) < end:
        call(inputs[index % len(inputs)])
        index += 1
        finish = time.perf_counter()
        if begin >= warm and finish <= end:
            latencies.append(finish - begin)
    latencies.sort()

    def pick(share: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, round(share * (len(latencies) - 1)))]

    return Result(name, "1*", len(latencies) / duration, len(latencies) * rows / duration,
                  pick(0.5), pick(0.99), 0)


def in_process_results(model: Model, case: Case, args) -> list[Result]:
    frame = model.request_rows
    step = case.rows
    frames = [frame.iloc[i: i + step] for i in range(0, min(len(frame), 2000) - step + 1, step)]
    results = [in_process("in-process-sklearn", model.pipeline.predict, frames, step,
                          args.duration, args.warmup)]
    if model.onnx_graph is not None:
        import onnxruntime

        from kubecycle.serving.onnx_feed import build_feed

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # as the service runs it
        session = onnxruntime.InferenceSession(str(model.onnx_graph), options,
                                               providers=["CPUExecutionProvider"])
        feeds = [build_feed(records(f), model.fields) for f in frames]
        results.append(in_process("in-process-onnx", lambda feed: session.run(None, feed), feeds,
                                  step, args.duration, args.warmup))
    return results


PROTOCOL_SERVERS = ("kubecycle", "kubecycle-v2", "kubecycle-invocations")


def protocol_rounds(servers: list[Server], case: Case, pool: list[dict], args, work: Path
                    ) -> dict[str, float]:
    """Req/s of /predict, V2 and /invocations measured in alternating rounds on one server.

    Separate servers measured minutes apart see different machine load; rounds that take
    turns on one server see the same, so their ratio is the protocols' own. Each round gives
    each route duration / rounds seconds (after the warm-up); returns req/s per server name.
    """
    first = servers[0]
    start(first, work)
    totals: dict[str, float] = dict.fromkeys((s.name for s in servers), 0.0)
    timing = argparse.Namespace(duration=args.duration / args.protocol_rounds, warmup=args.warmup)
    try:
        for round_index in range(args.protocol_rounds):
            figures = []
            for server in servers:
                same = dataclasses.replace(server, port=first.port, process=first.process)
                result = run_load(same, case, pool, timing, work)
                totals[server.name] += result.requests_per_s / args.protocol_rounds
                figures.append(f"{server.name} {result.requests_per_s:,.0f}")
            print(f"  protocol round {round_index + 1}: " + ", ".join(figures) + " req/s",
                  flush=True)
    finally:
        stop(first)
    return totals


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(case: Case, results: list[Result]) -> None:
    base = next((r for r in results if r.server == "fastapi"), None)
    print(f"\n{case.label} ({'req/s' if case.kind == 'single' else 'rows/s'} ratio to fastapi)")
    header = (f"  {'server':<20} {'clients':>7} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7} {'RSS MB':>7} {'cores':>6} {'x base':>7}")
    print(header)
    for r in results:
        ratio = r.requests_per_s / base.requests_per_s if base and base.requests_per_s else None
        print(f"  {r.server:<20} {r.clients:>7} {fmt(r.requests_per_s):>9} {fmt(r.rows_per_s, 0):>10} "
              f"{fmt(r.p50_ms, 2):>8} {fmt(r.p99_ms, 2):>8} {r.errors:>7} {fmt(r.rss_mb, 0):>7} "
              f"{fmt(r.cores, 2):>6} {fmt(ratio, 2):>7}")
        if r.note:
            print(f"  {'':<20} first error: {r.note[:150]}")


def verdict(ok: bool | None, text: str) -> None:
    print(f"{'PASS' if ok else 'MISS'}  {text}")


def report_targets(results: dict[tuple[str, int], list[Result]], cases: list[Case],
                   checks: dict[str, str | None], model: Model, rounds: dict[str, float]) -> None:
    print()
    single = next((c for c in cases if c.kind == "single" and c.clients == max(
        x.clients for x in cases if x.kind == "single")), None)
    by_name = {r.server: r for r in results.get((single.kind, single.clients), [])} if single else {}
    kube = by_name.get("kubecycle")
    peers = [by_name[p] for p in PEERS if p in by_name]
    if kube and peers:
        best = max(peers, key=lambda r: r.requests_per_s)
        speedup = kube.requests_per_s / best.requests_per_s if best.requests_per_s else float("inf")
        verdict(speedup >= SPEEDUP_TARGET,
                f"single record at {single.clients} clients: kubecycle {kube.requests_per_s:,.0f} req/s "
                f"= {speedup:.1f}x the best peer ({best.server}, {best.requests_per_s:,.0f} req/s); "
                f"target {SPEEDUP_TARGET:g}x")
    else:
        verdict(None, "single-record throughput: no kubecycle or peer figures")
    noop = by_name.get("bare-noop")
    if kube and noop and noop.requests_per_s:
        share = kube.requests_per_s / noop.requests_per_s
        verdict(share >= NOOP_SHARE_TARGET,
                f"single record at {single.clients} clients: kubecycle at {share:.0%} of the bare "
                f"no-op ({noop.requests_per_s:,.0f} req/s); target {NOOP_SHARE_TARGET:.0%}")
    fallback = by_name.get("kubecycle-sklearn")
    if fallback and peers:
        best = max(peers, key=lambda r: r.requests_per_s)
        verdict(fallback.requests_per_s >= best.requests_per_s,
                f"scikit-learn fallback {fallback.requests_per_s:,.0f} req/s vs the best peer "
                f"({best.server}) {best.requests_per_s:,.0f}; target never slower")
    for name in PROTOCOL_SERVERS[1:]:
        if rounds.get("kubecycle") and name in rounds:
            share, how = rounds[name] / rounds["kubecycle"], "in alternating rounds on one server"
        elif kube and by_name.get(name) and kube.requests_per_s:
            share, how = by_name[name].requests_per_s / kube.requests_per_s, "on separate servers"
        else:
            continue
        verdict(share >= PROTOCOL_SHARE_TARGET,
                f"{name} at {share:.0%} of /predict's req/s ({how}); target within "
                f"{1 - PROTOCOL_SHARE_TARGET:.0%}")
    if kube:
        verdict(kube.p99_ms is not None and kube.p99_ms < P99_TARGET_MS,
                f"kubecycle p99 at {single.clients} clients: {fmt(kube.p99_ms, 1)} ms; "
                f"target < {P99_TARGET_MS:g} ms")
        errors = {f"{k[0]}@{k[1]}": r.errors for k, rs in results.items() for r in rs
                  if r.server == "kubecycle"}
        verdict(kube.errors == 0 and not any(errors.values()),
                f"kubecycle errors: {kube.errors} at {single.clients} clients, "
                f"{sum(errors.values())} over all cases")
    else:
        verdict(None, "kubecycle p99 and errors: no figures")
    batch = [rs for (kind, _), rs in results.items() if kind == "batch"]
    for rs in batch:
        http = [r for r in rs if not r.server.startswith("in-process")]
        kube_batch = next((r for r in http if r.server == "kubecycle"), None)
        others = [r for r in http if r.server in PEERS]  # not the no-op, not its own routes
        if kube_batch and others:
            best = max(others, key=lambda r: r.rows_per_s)
            verdict(kube_batch.rows_per_s > best.rows_per_s,
                    f"{BATCH_ROWS}-row batches at {kube_batch.clients} clients: kubecycle "
                    f"{kube_batch.rows_per_s:,.0f} rows/s, next best {best.server} "
                    f"{best.rows_per_s:,.0f} rows/s")
        else:
            verdict(None, f"{BATCH_ROWS}-row batches: no kubecycle or peer figures")
    failed = {name: problem for name, problem in checks.items() if problem}
    verdict(bool(checks) and "kubecycle" in checks and not failed,
            f"identical predictions to the scikit-learn model on {CHECK_ROWS} rows: "
            + ("; ".join(f"{n}: {p}" for n, p in failed.items()) if failed
               else ", ".join(checks) + " all equal" if checks else "no server answered"))
    print(f"      kubecycle serves {'ONNX Runtime' if model.onnx_used else 'scikit-learn'}: "
          f"{model.onnx_reason}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per case")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the synthetic data set")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32],
                        help="concurrent clients of the single-record cases")
    parser.add_argument("--batch-clients", type=int, default=8,
                        help=f"concurrent clients of the {BATCH_ROWS}-row batch case")
    parser.add_argument("--label-noise", type=float, default=0.0,
                        help="noise on the column that nearly decides the label (deeper trees)")
    parser.add_argument("--servers", nargs="+",
                        default=["kubecycle", "kubecycle-sklearn", "fastapi", "mlflow",
                                 "kubecycle-v2", "kubecycle-invocations", "bare-noop", "in-process"])
    parser.add_argument("--protocol-rounds", type=int, default=3,
                        help="alternating rounds of /predict, V2 and /invocations on one server "
                             "(0: compare the separate servers' figures)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per case, 5k rows")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.rows = 3.0, 1.0, min(args.rows, 5000)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks

    work = Path(tempfile.mkdtemp(prefix="kubecycle-bench-serving-"))
    os.environ["BENTOML_HOME"] = str(work / "bentoml")
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    servers: list[Server] = []
    try:
        print(f"load: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.rows:,} rows, "
              f"{args.duration:g} s per case after {args.warmup:g} s warm-up; work dir {work}")
        model = build_model(args.rows, args.label_noise, work)
        print(f"model: 100-tree random forest fitted in {model.fit_seconds:.1f} s; bento {model.bento_tag}; "
              f"ONNX {'used' if model.onnx_used else 'not used'}: {model.onnx_reason}")
        pool = records(model.request_rows)
        check_rows = pool[:CHECK_ROWS]
        expected = model.pipeline.predict(model.request_rows.head(CHECK_ROWS)).tolist()
        cases = [Case("single", c) for c in args.clients] + [Case("batch", args.batch_clients)]
        results: dict[tuple[str, int], list[Result]] = {(c.kind, c.clients): [] for c in cases}
        checks: dict[str, str | None] = {}
        servers = [s for s in make_servers(model, work) if s.name in args.servers]
        exit_code = 0
        for server in servers:
            started = time.perf_counter()
            try:
                start(server, work)
            except Exception as exc:
                print(f"\n{server.name}: could not start: {exc}\n{textwrap.indent(log_tail(server), '    ')}")
                exit_code = 1 if server.name == "kubecycle" else exit_code
                stop(server)
                continue
            print(f"{server.name}: ready in {time.perf_counter() - started:.1f} s", flush=True)
            try:
                if server.predictions is not None:  # the no-op predicts nothing
                    checks[server.name] = check_predictions(server, check_rows, expected)
                for case in cases:
                    result = run_load(server, case, pool, args, work)
                    results[(case.kind, case.clients)].append(result)
                    print(f"  {case.label}: {result.requests_per_s:,.1f} req/s, p99 "
                          f"{fmt(result.p99_ms, 2)} ms, {result.errors} errors, load generator "
                          f"{result.extra['client_cpu']:.2f} cores", flush=True)
            except Exception:
                print(f"{server.name}: measurement failed\n{traceback.format_exc()}"
                      f"{textwrap.indent(log_tail(server), '    ')}")
            finally:
                stop(server)
        rounds: dict[str, float] = {}
        protocols = [s for name in PROTOCOL_SERVERS for s in servers if s.name == name]
        if len(protocols) == len(PROTOCOL_SERVERS) and args.protocol_rounds:
            try:
                rounds = protocol_rounds(protocols, Case("single", max(args.clients)), pool,
                                         args, work)
            except Exception:
                print(f"protocol rounds failed\n{traceback.format_exc()}")
        if "in-process" in args.servers:
            for case in cases:
                if case.clients == max(c.clients for c in cases if c.kind == case.kind):
                    limit = in_process_results(model, case, args)
                    for c in cases:
                        if c.kind == case.kind:
                            results[(c.kind, c.clients)].extend(limit)
            print("in-process: measured", flush=True)
        for case in cases:
            print_table(case, results[(case.kind, case.clients)])
        print("\n  cores: the server's CPU use (all its processes); 1* = one thread, no HTTP, "
              "prebuilt inputs")
        report_targets(results, cases, checks, model, rounds)
        return exit_code
    finally:
        for server in servers:
            stop(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
