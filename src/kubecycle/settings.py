"""Every environment variable kubecycle reads or sets, declared once: type, default, one line.

Read a value with `NAME.get()`; a bad value raises SettingError naming the variable and what it
accepts. The README's settings table is checked against `SETTINGS` by a test. This module has
no third-party imports: bentos carry a copy of it for the service.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubecycle.errors import SettingError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def _switch(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _text(text: str) -> str:
    return text


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, parser, default (None: unset) and doc.

    For error messages it also says what the variable accepts.
    """

    name: str
    default: str | None
    doc: str
    parse: Callable[[str], Any] = _text
    accepts: str = "text"
    choices: tuple[str, ...] = ()

    def raw(self) -> str | None:
        """The variable's text, or the default when it is unset or empty."""
        value = os.environ.get(self.name)
        return self.default if value in (None, "") else value

    def get(self) -> Any:
        """The parsed value (None when unset without a default).

        Raises:
            SettingError: the value is not one the setting accepts.
        """
        value = self.raw()
        if value is None:
            return None
        if self.choices and value not in self.choices:
            raise SettingError(f"{self.name}={value!r} is not allowed; choose one of "
                               f"{', '.join(self.choices)}")
        try:
            return self.parse(value)
        except ValueError:
            raise SettingError(f"{self.name}={value!r} is not valid: expected {self.accepts}"
                               ) from None


SETTINGS: dict[str, Setting] = {}


def _declare(*args: Any, **kwargs: Any) -> Setting:
    setting = Setting(*args, **kwargs)
    SETTINGS[setting.name] = setting
    return setting


# --- where runs write and which tracking server they use --------------------------------
HOME = _declare("KUBECYCLE_HOME", ".kubecycle", "folder every run writes to (runs, local "
                "MLflow store, bentos, inference log)")
TRACKING_URI = _declare("KUBECYCLE_TRACKING_URI", None, "MLflow server for every command "
                        "(before MLFLOW_TRACKING_URI; default: a local store under the home)")
MLFLOW_TRACKING_URI = _declare("MLFLOW_TRACKING_URI", None, "MLflow's own variable, used when "
                               "KUBECYCLE_TRACKING_URI is unset")
BENTOML_HOME = _declare("BENTOML_HOME", None, "BentoML's store (default: <KUBECYCLE_HOME>/bentoml;"
                        " set by the CLI for every command and task)")
# --- images of compiled pipelines and deploys ----------------------------------------------
IMAGE_REGISTRY = _declare("KUBECYCLE_IMAGE_REGISTRY", "ghcr.io/kubecycle", "registry of "
                          "kubecycle's images (<registry>/components:<version>, .../serving)")
COMPONENTS_IMAGE = _declare("KUBECYCLE_COMPONENTS_IMAGE", None, "full reference of the image "
                            "pipeline tasks run in (overrides the registry)")
SERVING_IMAGE = _declare("KUBECYCLE_SERVING_IMAGE", None, "full reference of the serving "
                         "runtime image `kubecycle deploy` pins (overrides the registry)")
# --- local runs ----------------------------------------------------------------------------
TUNE_THREADS = _declare("KUBECYCLE_TUNE_THREADS", None, "cores one tune task may use (set by "
                        "local runs: the cores shared among parallel tune tasks)",
                        _positive_int, "a positive integer")
FORKSERVER = _declare("KUBECYCLE_FORKSERVER", None, "start local tasks from a warm fork server "
                      "(default: on Linux)", _switch, "1/true/on or 0/false/off")
TMPDIR = _declare("TMPDIR", None, "temporary folder; `kubecycle run` points it at a private "
                  "folder under the home for its tasks and removes it after")
# --- KFP API ---------------------------------------------------------------------------------
KFP_TOKEN = _declare("KUBECYCLE_KFP_TOKEN", None, "bearer token for the KFP API (before "
                     "KF_PIPELINES_TOKEN)")
KF_PIPELINES_TOKEN = _declare("KF_PIPELINES_TOKEN", None, "kfp's own token variable")
KF_PIPELINES_UI_ENDPOINT = _declare("KF_PIPELINES_UI_ENDPOINT", None, "address of the KFP UI "
                                    "when it is not the API host (run links)")
KUBERNETES_SERVICE_HOST = _declare("KUBERNETES_SERVICE_HOST", None, "set in pods: `kubecycle "
                                   "deploy` uses the in-cluster account when no kubeconfig is "
                                   "given")
# --- the BentoML service (read by every serving worker) -----------------------------------
RUNTIME = _declare("KUBECYCLE_RUNTIME", "auto", "model runtime: auto (ONNX Runtime when "
                   "packaging verified the graph) or sklearn", choices=("auto", "sklearn"))
REQUEST_TIMEOUT_SECONDS = _declare("KUBECYCLE_REQUEST_TIMEOUT_SECONDS", "10", "longest a "
                                   "request may take (BentoML keeps a timer per request)",
                                   _positive_float, "a positive number of seconds")
WORKERS = _declare("KUBECYCLE_WORKERS", "1", "service worker processes per pod",
                   lambda text: text if text == "cpu_count" else _positive_int(text),
                   "a positive integer or cpu_count")
ACCESS_LOG = _declare("KUBECYCLE_ACCESS_LOG", "false", "a log line per request; on, every "
                      "request takes BentoML's full middleware (slower)", _switch,
                      "1/true/on or 0/false/off")
GC_THRESHOLD = _declare("KUBECYCLE_GC_THRESHOLD", "20000", "gen-0 allocations between garbage "
                        "collections of a worker", _positive_int, "a positive integer")
ADAPTIVE_MAX_BATCH = _declare("KUBECYCLE_ADAPTIVE_MAX_BATCH", "256", "most records "
                              "/predict_rows merges into one model call", _positive_int,
                              "a positive integer")
ADAPTIVE_MAX_LATENCY_MS = _declare("KUBECYCLE_ADAPTIVE_MAX_LATENCY_MS", "1000", "latency "
                                   "budget of /predict_rows batching (short budgets shed load "
                                   "with 503s)", _positive_int, "a positive integer")
MAX_BATCH = _declare("KUBECYCLE_MAX_BATCH", "1000", "most records one /predict_batch may "
                     "carry", _positive_int, "a positive integer")
EXTRA_FIELDS = _declare("KUBECYCLE_EXTRA_FIELDS", "forbid", "request fields the model does not "
                        "know: forbid (a 4xx naming them) or ignore", choices=("forbid", "ignore"))
INFERENCE_LOG = _declare("KUBECYCLE_INFERENCE_LOG", "", "folder or s3://, gs:// URI the service "
                         "appends predictions to (empty: no inference log)")
LABEL_STORE = _declare("KUBECYCLE_LABEL_STORE", "", "folder or s3://, gs:// URI where /feedback "
                       "and `kubecycle feedback` keep labels (empty: _labels in the inference "
                       "log, which the log's readers skip)")
INFERENCE_LOG_BUFFER = _declare("KUBECYCLE_INFERENCE_LOG_BUFFER", "100000", "rows the log "
                                "buffers before it drops (counted)", _positive_int,
                                "a positive integer")
INFERENCE_LOG_FLUSH_SECONDS = _declare("KUBECYCLE_INFERENCE_LOG_FLUSH_SECONDS", "5", "seconds "
                                       "between inference-log writes", _positive_float,
                                       "a positive number of seconds")
INFERENCE_LOG_SHUTDOWN_SECONDS = _declare("KUBECYCLE_INFERENCE_LOG_SHUTDOWN_SECONDS", "10",
                                          "longest the final flush of a stopping worker takes",
                                          _positive_float, "a positive number of seconds")
# --- set by kubecycle for the libraries it runs -------------------------------------------
MLFLOW_DISABLE_TELEMETRY = _declare("MLFLOW_DISABLE_TELEMETRY", None, "set to true for every "
                                    "command, task and image: no telemetry thread",
                                    _switch, "true or false")
BENTO_URI = _declare("KUBECYCLE_BENTO_URI", None, "set on serving pods (chart, kubecycle deploy): "
                      "the bento archive the init container imports")
BENTO_NAME = _declare("KUBECYCLE_BENTO_NAME", None, "set on serving pods (chart, kubecycle "
                      "deploy): the bento the server serves")
CONTAINER_ENGINE = _declare("KUBECYCLE_CONTAINER_ENGINE", None, "docker or podman for `make "
                            "images` and `make test-containers` (default: docker when it "
                            "answers)", choices=("docker", "podman"))
MLFLOW_SERVER_ENABLE_JOB_EXECUTION = _declare("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", None, "set "
                                              "to false for the local and chart MLflow servers "
                                              "(no job runner processes)", _switch,
                                              "true or false")


def kubecycle_home() -> Path:
    """Where runs write everything: KUBECYCLE_HOME, default ./.kubecycle (absolute)."""
    return Path(HOME.get()).expanduser().resolve()


LABELS_FOLDER = "_labels"  # inside the inference log; its readers skip _-prefixed folders


def label_store(inference_log: str) -> str:
    """Where labels go: KUBECYCLE_LABEL_STORE, else <inference log>/_labels.

    Inside the log, so they live on the same volume or prefix (a serving pod can write there);
    the log's readers skip folders starting with an underscore.
    """
    return LABEL_STORE.get() or (f"{inference_log.rstrip('/')}/{LABELS_FOLDER}"
                                 if inference_log else "")


def tracking_uri_from_env() -> str | None:
    """An explicit tracking server (KUBECYCLE_TRACKING_URI, then MLFLOW_TRACKING_URI)."""
    return TRACKING_URI.get() or MLFLOW_TRACKING_URI.get()


def bentoml_home() -> Path:
    """BentoML's store; under KUBECYCLE_HOME unless BENTOML_HOME is set."""
    return Path(BENTOML_HOME.get() or kubecycle_home() / "bentoml")
