"""A registered version as a batch predictor: ONNX Runtime when verified, else its Pipeline.

A packaged version carries its verified ONNX graph (MLflow artifacts `serving/`), which runs
without loading the Pipeline. For a version packaged without it, the graph is converted and
verified as packaging does it (the same function, the same registered test rows), so a version
scores in batches on the runtime its bento serves with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from kubecycle.errors import RegistryError
from kubecycle.registry import (
    INFO_FILE,
    ONNX_FILE,
    SERVING_ARTIFACTS,
    SERVING_RUNTIME_REASON_TAG,
    SERVING_RUNTIME_TAG,
    RegisteredVersion,
    load_contract,
    load_test_rows,
)

Scores = tuple[np.ndarray, np.ndarray | None]  # predictions, class probabilities (classifiers)


@dataclass(frozen=True)
class BatchPredictor:
    """Scores a frame of model inputs (the contract's columns, typed as the service types them)."""

    model_name: str
    model_version: str
    fields: dict[str, dict[str, Any]]
    classes: list[Any]  # empty for regression and clustering
    runtime: Literal["onnx", "sklearn"]
    runtime_reason: str
    score: Callable[[pd.DataFrame], Scores]


def _sklearn_scores(model, classes: list[Any]) -> Callable[[pd.DataFrame], Scores]:
    def score(frame: pd.DataFrame) -> Scores:
        proba = model.predict_proba(frame) if classes else None
        return np.asarray(model.predict(frame)), proba

    return score


def _onnx_scores(graph: bytes, fields: dict[str, dict[str, Any]], classes: list[Any]
                 ) -> Callable[[pd.DataFrame], Scores]:
    import onnxruntime

    from kubecycle.serving.onnx_feed import build_feed_from_frame, labels_as_classes

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False  # the arena keeps each chunk's peak for good
    session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def score(frame: pd.DataFrame) -> Scores:
        outputs = session.run(None, build_feed_from_frame(frame, fields))
        labels = labels_as_classes(outputs[0].reshape(len(frame), -1)[:, 0], classes)
        proba = np.asarray(outputs[1]) if classes and len(outputs) > 1 else None
        return labels, proba

    return score


def _packaged_graph(version: RegisteredVersion) -> tuple[bytes, list[Any]] | None:
    """The verified graph and the classes packaging recorded with the version, if it did."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if version.tags.get(SERVING_RUNTIME_TAG) != "onnx":
        return None
    try:
        folder = Path(mlflow.artifacts.download_artifacts(run_id=version.run_id,
                                                          artifact_path=SERVING_ARTIFACTS))
    except (MlflowException, OSError):
        return None  # packaged before the graph was recorded
    if not (folder / ONNX_FILE).is_file():
        return None
    info = json.loads((folder / INFO_FILE).read_text())
    return (folder / ONNX_FILE).read_bytes(), list(info["classes"])


def load_predictor(version: RegisteredVersion, runtime: Literal["auto", "sklearn"] = "auto"
                   ) -> BatchPredictor:
    """The version's model, ready to score frames.

    The MLflow tracking URI must already be set.

    Args:
        version: The registered version.
        runtime: auto (ONNX Runtime when its graph reproduces the version's predictions on
            the registered test rows) or sklearn (the Pipeline).

    Raises:
        RegistryError: the version has no data contract (registered by another tool).
    """
    contract = load_contract(version)
    if contract is None:
        raise RegistryError(f"{version.name} v{version.version} has no data contract; "
                            "score a version registered by `kubecycle run`")
    fields = contract.serving_fields()
    packaged = _packaged_graph(version) if runtime == "auto" else None
    if packaged is not None:
        graph, classes = packaged
        reason = version.tags.get(SERVING_RUNTIME_REASON_TAG, "verified")
        return BatchPredictor(version.name, version.version, fields, classes, "onnx",
                              f"{reason} (the graph recorded when packaged)",
                              _onnx_scores(graph, fields, classes))
    import mlflow

    from kubecycle.serving.onnx_export import OnnxCheck, export_onnx

    model = mlflow.sklearn.load_model(f"models:/{version.name}/{version.version}")
    classes = list(getattr(model, "classes_", []))
    graph, check = (export_onnx(model, fields, load_test_rows(version)) if runtime == "auto"
                    else (None, OnnxCheck("sklearn", "scoring.runtime is sklearn")))
    score = _onnx_scores(graph, fields, classes) if graph else _sklearn_scores(model, classes)
    return BatchPredictor(version.name, version.version, fields, classes, check.runtime,
                          check.reason, score)
