"""BentoML service for one registered kubecycle model (copied into every bento).

Reads kubecycle_bento.json beside it: the bento model tag, the MLflow name and version, and
the input fields from the data contract. Requests are typed from the contract, so the
OpenAPI page shows the real feature names and types, and a missing field, a wrong type, a
non-finite number or an unknown category is answered 400/422 with the field named. The model
runs as an ONNX Runtime graph when packaging verified one (model.onnx beside this file), else
as the scikit-learn Pipeline; KUBECYCLE_RUNTIME=sklearn forces the latter. Every prediction is appended, in
batches and off the request path, to the inference log that monitoring reads; a worker that is
stopped (SIGTERM from BentoML's arbiter, from Kubernetes, or on its parent's death) writes what
it still buffers before it exits. The JSON prediction routes and the protocol routes are
answered before BentoML's per-request middleware (kubecycle.serving.hot_path).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import bentoml
import numpy as np
from bentoml.exceptions import InternalServerError, InvalidArgument
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, create_model

from kubecycle import settings
from kubecycle.serving.hot_path import api_handler, serve_hot_routes_first
from kubecycle.serving.inference_log import InferenceLog
from kubecycle.serving.protocols import PATHS, protocols_app
from kubecycle.serving.request_id import REQUEST_ID, new_request_id

HERE = Path(__file__).resolve().parent
INFO = json.loads((HERE / "kubecycle_bento.json").read_text())
# Settings (kubecycle.settings, copied into the bento): read once, when a worker starts.
RUNTIME = settings.RUNTIME.get()  # auto (ONNX when verified) | sklearn
# BentoML keeps a timer per request for this long, so memory under load scales with it.
REQUEST_TIMEOUT = settings.REQUEST_TIMEOUT_SECONDS.get()
WORKERS = settings.WORKERS.get()  # one per core: a number or "cpu_count"
ACCESS_LOG = settings.ACCESS_LOG.get()  # a log line per request; on, every request takes
# BentoML's full path (kubecycle.serving.hot_path)
GC_THRESHOLD = settings.GC_THRESHOLD.get()  # gen-0 allocations
# /predict_rows: BentoML's adaptive batching merges concurrent requests into one model call.
# A short latency budget makes its dispatcher shed load with 503s; one second does not.
ADAPTIVE_MAX_BATCH = settings.ADAPTIVE_MAX_BATCH.get()
ADAPTIVE_MAX_LATENCY_MS = settings.ADAPTIVE_MAX_LATENCY_MS.get()
MAX_BATCH = settings.MAX_BATCH.get()
EXTRA_FIELDS = settings.EXTRA_FIELDS.get()  # or "ignore"
LOG_DIR = settings.INFERENCE_LOG.get()  # "" = no inference log
LABEL_STORE = settings.label_store(LOG_DIR)  # "" = no labels kept
LOG_BUFFER = settings.INFERENCE_LOG_BUFFER.get()
LOG_FLUSH_SECONDS = settings.INFERENCE_LOG_FLUSH_SECONDS.get()
# The final flush of a stopping worker gives up after this long (its rows are counted as
# dropped, reason shutdown_timeout): the preStop sleep (5 s), draining requests (at most
# REQUEST_TIMEOUT) and this must fit in the pod's termination grace period (30 s).
LOG_SHUTDOWN_SECONDS = settings.INFERENCE_LOG_SHUTDOWN_SECONDS.get()
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _field_type(spec: dict[str, Any]) -> Any:
    if spec["kind"] == "numeric":
        return FiniteFloat  # Infinity and NaN are refused (422), never scored; null is missing
    if spec["kind"] == "boolean":
        return bool
    if spec["kind"] == "datetime":
        return datetime
    if spec.get("categories"):
        return Literal[tuple(spec["categories"])]
    return str


# One field per raw input column; null means missing (imputed). Fields are named f0, f1, ...
# and aliased to the column names, so that any column name works ("_id", "json", "a b").
# Columns the model does not read (the feature plan dropped them) are optional.
Record = create_model(
    "Record", __config__=ConfigDict(extra=EXTRA_FIELDS),
    **{f"f{index}": (_field_type(spec) | None,
                     Field(None if spec.get("optional") else ..., alias=name))
       for index, (name, spec) in enumerate(INFO["fields"].items())})


class Prediction(BaseModel):
    """The answer for one record: model name and version, the prediction and class probabilities.

    request_id names the record in the inference log (labels sent later refer to it).
    """

    model_name: str
    model_version: str
    request_id: str
    prediction: Any
    probabilities: dict[str, float] | None = None


class Explanation(BaseModel):
    """Per-column contributions to one prediction: base_value plus their sum is `output`.

    `output` is the probability of the predicted class for a classifier, the prediction for a
    regressor.
    """

    model_name: str
    model_version: str
    request_id: str
    prediction: Any
    output: float
    base_value: float
    contributions: dict[str, float]


class Predictions(BaseModel):
    """The answer for a batch: model name and version, and per record a prediction (and probabilities).

    request_ids name the records in the inference log: the request's id, then ':' and the
    record's position (0, 1, ...).
    """

    model_name: str
    model_version: str
    request_ids: list[str]
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = None


def _stop_with_parent() -> None:
    """Have the kernel send this worker SIGTERM when its parent, BentoML's arbiter, dies (Linux).

    A killed server thus never leaves a worker answering on its port; the worker then stops
    like on any SIGTERM, flushing its inference log.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class SklearnPredictor:
    """The scikit-learn Pipeline: a DataFrame of the raw columns per call."""

    runtime = "sklearn"

    def __init__(self, model) -> None:
        self.model = model
        self.columns = list(INFO["fields"])
        # one pass instead of two when the model's labels are its most probable classes on
        # the background rows (true of every kubecycle family; checked, not assumed)
        self.labels_from_proba = False
        if INFO["classes"] and INFO.get("background"):
            labels, proba = self(INFO["background"])
            self.labels_from_proba = bool(np.array_equal(
                np.asarray(labels), np.asarray(self.model.classes_)[proba.argmax(axis=1)]))

    def __call__(self, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
        """Predict the rows: labels, and class probabilities for a classifier (else None)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(rows, columns=self.columns)
        if not INFO["classes"]:
            return self.model.predict(frame), None
        proba = self.model.predict_proba(frame)
        if self.labels_from_proba:
            return np.asarray(self.model.classes_)[proba.argmax(axis=1)], proba
        return self.model.predict(frame), proba


class OnnxPredictor:
    """The verified ONNX graph: one tensor per raw column, no DataFrame on the request path."""

    runtime = "onnx"

    def __init__(self, path: Path) -> None:
        import onnxruntime

        from kubecycle.serving.onnx_feed import build_feed, labels_as_classes

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one worker per core; requests run in parallel
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.build_feed, self.labels_as_classes = build_feed, labels_as_classes

    def __call__(self, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
        """Predict the rows: labels, and class probabilities for a classifier (else None)."""
        outputs = self.session.run(None, self.build_feed(rows, INFO["fields"]))
        proba = outputs[1] if INFO["classes"] and len(outputs) > 1 else None
        return self.labels_as_classes(outputs[0].reshape(len(rows), -1)[:, 0], INFO["classes"]), proba


def _native(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# KServe V2, MLflow's /invocations and /feedback beside BentoML's own routes (an app at the
# root, so that GET /v2 is not redirected)
PROTOCOLS = protocols_app(INFO, Record, MAX_BATCH, keeps_labels=bool(LABEL_STORE))


@bentoml.service(traffic={"timeout": REQUEST_TIMEOUT}, workers=WORKERS,
                 logging={"access": {"enabled": ACCESS_LOG}})
@bentoml.asgi_app(PROTOCOLS.app)
class KubecycleService:
    """Predictions from the packaged model version; name and version in every response."""

    model_ref = bentoml.models.BentoModel(INFO["bento_model"])

    def __init__(self) -> None:
        graph = INFO["onnx"]["file"]
        if graph and RUNTIME != "sklearn":
            self.predictor = OnnxPredictor(HERE / graph)
        else:
            self.predictor = SklearnPredictor(bentoml.sklearn.load_model(self.model_ref))
        self.classes = [str(c) for c in INFO["classes"]]
        # scikit-learn scores one call at a time per worker (one worker per core): concurrent
        # calls would only contend for the GIL, costing CPU per prediction under load
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        version = INFO["model_version"]
        self.counter = bentoml.metrics.Counter(
            name="kubecycle_predictions", documentation="Predictions by class",
            labelnames=["model_version", "prediction"])
        self.count = lambda label: self.counter.labels(model_version=version, prediction=label)
        dropped = bentoml.metrics.Counter(
            name="kubecycle_inference_log_dropped", documentation="Inference-log rows dropped",
            labelnames=["reason"])
        self.log = InferenceLog(LOG_DIR, dropped, LOG_BUFFER, LOG_FLUSH_SECONDS,
                                LOG_SHUTDOWN_SECONDS) if LOG_DIR else None
        labels_dropped = bentoml.metrics.Counter(
            name="kubecycle_feedback_dropped", documentation="Labels dropped", labelnames=["reason"])
        self.labels = InferenceLog(LABEL_STORE, labels_dropped, LOG_BUFFER, LOG_FLUSH_SECONDS,
                                   LOG_SHUTDOWN_SECONDS) if LABEL_STORE else None
        _stop_with_parent()
        # Under load BentoML keeps hundreds of thousands of short-lived objects alive (spans,
        # timers); full collections over them stall every request in flight. Startup objects
        # leave the collector's view, and full collections become rarer.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 100)

    @bentoml.on_shutdown
    def flush_inference_log(self) -> None:
        """Write the buffered inference-log rows and labels; BentoML calls this when the worker stops.

        It runs in uvicorn's lifespan shutdown, after the requests in flight were answered. Not
        atexit: uvicorn re-raises the stop signal once shut down, so atexit handlers never run.
        Both close in parallel, so the shutdown takes one LOG_SHUTDOWN_SECONDS at most.
        """
        closing = [threading.Thread(target=log.close) for log in (self.log, self.labels) if log]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()

    async def _score(self, records: list[Record], ids: list[str]  # type: ignore[valid-type]
                     ) -> tuple[list[Any], list[dict[str, float]] | None]:
        rows = [r.model_dump(by_alias=True) for r in records]
        try:  # ONNX answers in microseconds on the event loop; scikit-learn its own thread
            if self.predictor.runtime == "onnx":
                predicted, proba = self.predictor(rows)
            else:
                predicted, proba = await asyncio.get_running_loop().run_in_executor(
                    self.model_thread, self.predictor, rows)
        except Exception as exc:
            message = f"the model could not score these records: {type(exc).__name__}: {exc}"
            if isinstance(exc, ValueError | TypeError | ArithmeticError) \
                    or type(exc).__name__ == "InvalidArgument":
                raise InvalidArgument(message) from None  # values the model rejects: 400
            raise InternalServerError(message) from None  # the server stays up
        predictions = [_native(p) for p in predicted]
        probabilities = None if proba is None else [
            dict(zip(self.classes, map(float, row), strict=True)) for row in proba]
        for value in predictions:
            self.count(str(value)).inc()
        if self.log is not None:
            stamp = datetime.now(UTC)
            self.log.append([{**row, "prediction": p, "timestamp": stamp, "request_id": rid,
                              "model_version": INFO["model_version"]}
                             for row, p, rid in zip(rows, predictions, ids, strict=True)])
        return predictions, probabilities

    @bentoml.api
    async def predict(self, record: Record) -> Prediction:  # type: ignore[valid-type]
        """Predict one record."""
        request_id = REQUEST_ID.get() or new_request_id()
        [value], proba = await self._score([record], [request_id])
        return Prediction(model_name=INFO["model_name"], model_version=INFO["model_version"],
                          request_id=request_id, prediction=value,
                          probabilities=proba[0] if proba else None)

    def _explained(self, row: dict[str, Any]) -> tuple[Any, Any]:
        """The record's prediction and its Shapley contributions (kubecycle.serving.explain)."""
        from kubecycle.serving.explain import shapley

        if not INFO.get("background"):
            raise InvalidArgument("this bento has no background rows to explain with; "
                                  "package the version again (kubecycle package)")
        [label], proba = self.predictor([row])
        if INFO.get("task") == "clustering":
            raise InvalidArgument("a clustering model has no output to explain")
        position = self.classes.index(str(_native(label))) if proba is not None else None

        def output(rows: list[dict[str, Any]]) -> Any:
            predicted, probabilities = self.predictor(rows)
            return probabilities[:, position] if position is not None else predicted

        inputs = [name for name, spec in INFO["fields"].items() if not spec.get("optional")]
        return _native(label), shapley(output, row, INFO["background"], inputs)

    @bentoml.api
    async def explain(self, record: Record) -> Explanation:  # type: ignore[valid-type]
        """Explain one record: each column's contribution to the model output (Shapley values)."""
        request_id = REQUEST_ID.get() or new_request_id()
        label, result = await asyncio.to_thread(self._explained, record.model_dump(by_alias=True))
        return Explanation(model_name=INFO["model_name"], model_version=INFO["model_version"],
                           request_id=request_id, prediction=label, output=result.output,
                           base_value=result.base_value, contributions=result.contributions)

    @bentoml.api
    async def predict_batch(self, records: list[Record]) -> Predictions:  # type: ignore[valid-type]
        """Predict a batch of records."""
        if not records:
            raise InvalidArgument("records is empty; send at least one record")
        if len(records) > MAX_BATCH:
            raise InvalidArgument(f"{len(records)} records exceed the batch limit of {MAX_BATCH}")
        request_id = REQUEST_ID.get() or new_request_id()
        ids = [f"{request_id}:{index}" for index in range(len(records))]
        values, proba = await self._score(records, ids)
        return Predictions(model_name=INFO["model_name"], model_version=INFO["model_version"],
                           request_ids=ids, predictions=values, probabilities=proba)

    @bentoml.api(batchable=True, max_batch_size=ADAPTIVE_MAX_BATCH,
                 max_latency_ms=ADAPTIVE_MAX_LATENCY_MS)
    async def predict_rows(self, records: list[Record]) -> list[Prediction]:  # type: ignore[valid-type]
        """Predict records, batched adaptively with other clients' concurrent requests.

        The answer holds one prediction per record, in order; every record gets an id of its
        own (the merged batch mixes requests).
        """
        if not records:
            return []
        ids = [new_request_id() for _ in records]
        values, proba = await self._score(records, ids)
        return [Prediction(model_name=INFO["model_name"], model_version=INFO["model_version"],
                           request_id=ids[i], prediction=value,
                           probabilities=proba[i] if proba else None)
                for i, value in enumerate(values)]


# /predict, /predict_batch and the protocols skip BentoML's per-request middleware (request
# metrics, ids, validation and the inference log kept); see kubecycle.serving.hot_path
serve_hot_routes_first(
    KubecycleService,
    lambda: {**{f"/{name}": api_handler(KubecycleService, name)
                for name in ("predict", "predict_batch")}, **PROTOCOLS.handlers},
    (PROTOCOLS.app, PATHS), REQUEST_TIMEOUT)
