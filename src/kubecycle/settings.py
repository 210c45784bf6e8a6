"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from pathlib import Path

TUNE_THREADS_ENV = "KUBECYCLE_TUNE_THREADS"  # set by local runs: the cores one tune task may use


def kubecycle_home() -> Path:
    """Where runs write everything: KUBECYCLE_HOME, default ./.kubecycle (absolute)."""
    return Path(os.environ.get("KUBECYCLE_HOME", ".kubecycle")).expanduser().resolve()


def tracking_uri_from_env() -> str | None:
    """An explicit tracking server (KUBECYCLE_TRACKING_URI, then MLFLOW_TRACKING_URI)."""
    return os.environ.get("KUBECYCLE_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")


def bentoml_home() -> Path:
    """BentoML's store; under KUBECYCLE_HOME unless BENTOML_HOME is set."""
    return Path(os.environ.get("BENTOML_HOME") or kubecycle_home() / "bentoml")
