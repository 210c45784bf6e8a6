"""Build a BentoML bento for a registered MLflow model version, export it, record it.

`package_version` is the one way a bento comes to be: the package stage and `kubecycle serve`
/ `kubecycle package` both call it, so a version's tags always say which bento serves it.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

import kubecycle
from kubecycle.contract import DataContract
from kubecycle.errors import PackagingError, first_line
from kubecycle.modelling import estimator_libraries
from kubecycle.registry import (
    BENTO_TAG,
    BENTO_URI_TAG,
    INFO_FILE,
    MODEL_MODULES,
    ONNX_FILE,
    SERVING_ARTIFACTS,
    bento_archive,
    bento_name,
    pinned,
)
from kubecycle.serving.onnx_export import OnnxCheck, export_onnx

SERVING_PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")
ONNX_PACKAGES = ("onnxruntime",)
SERVICE_MODULE = "service"  # service.py at the root of every bento
_ROOT = Path(kubecycle.__file__).resolve().parent
# What the service and the pickled Pipeline import, copied into the bento at the same path
# under kubecycle/ (the service itself goes to the bento's root).
BENTO_MODULES = ("settings.py", "errors.py", "contract.py", *MODEL_MODULES,
                 "serving/onnx_feed.py", "serving/inference_log.py", "serving/request_id.py",
                 "serving/open_inference.py", "serving/mlflow_protocol.py",
                 "serving/feedback.py", "serving/explain.py", "serving/protocols.py",
                 "serving/hot_path.py")


def model_packages(model) -> tuple[str, ...]:
    """The distributions the model's estimator comes from beyond scikit-learn (xgboost, ...).

    The bento installs them so that the scikit-learn runtime can unpickle the model.
    """
    from importlib.metadata import packages_distributions

    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    modules = estimator_libraries(estimator)
    owners = packages_distributions()
    found = {owner for module in modules - {"builtins", "sklearn", "kubecycle"}
             for owner in owners.get(module, [])}
    return tuple(sorted(found))


@dataclass(frozen=True)
class PackageResult:
    """A bento built for a registered version (and where its archive went)."""

    bento_tag: str
    model_tag: str
    export_path: str | None
    onnx: OnnxCheck
    bento_uri: str | None = None  # the archive on an object store, recorded on the version
    info: dict[str, Any] = field(default_factory=dict, repr=False)  # the service's INFO_FILE
    graph: bytes | None = field(default=None, repr=False)  # the verified ONNX graph, if any

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written beside the exported archive."""
        return {"bento_tag": self.bento_tag, "model_tag": self.model_tag,
                "export_path": self.export_path, "bento_uri": self.bento_uri,
                "onnx": self.onnx.__dict__}

    def version_tags(self) -> dict[str, str]:
        """The tags that record this bento on the registered version."""
        tags = {BENTO_TAG: self.bento_tag, **self.onnx.to_tags()}
        if self.bento_uri:
            tags[BENTO_URI_TAG] = self.bento_uri
        return tags


def _build_context(folder: Path, info: dict, graph: bytes | None) -> None:
    shutil.copy(_ROOT / "serving" / "service.py", folder / "service.py")
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2))
    if graph is not None:
        (folder / ONNX_FILE).write_bytes(graph)
    target = folder / "kubecycle"
    for module in BENTO_MODULES:
        destination = target / module
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_ROOT / module, destination)
    for package in {target, *[p for p in target.rglob("*") if p.is_dir()]}:
        (package / "__init__.py").write_text('"""Copied from kubecycle for the service."""\n')


def build_bento(model, model_name: str, version: str, contract: DataContract,
                export_dir: str | Path | None = None, test: pd.DataFrame | None = None
                ) -> PackageResult:
    """Save the model to the BentoML store and build a bento serving it.

    Args:
        model: The fitted scikit-learn Pipeline of the registered version.
        model_name: The MLflow registered model (labels, responses).
        version: The registered version.
        contract: The data contract (request fields, types and categories).
        export_dir: If given, also export the bento archive there (a folder or a URI).
        test: The registered test rows; the bento serves an ONNX graph of the model only if
            the graph reproduces the model's predictions on them.

    Returns:
        The bento's tag, its model's tag, the exported archive and the ONNX check.

    Raises:
        PackagingError: BentoML refused the build or the export failed.
    """
    import bentoml

    name = bento_name(model_name)
    labels = {"mlflow_model": name, "mlflow_version": str(version)}
    fields = contract.serving_fields()
    graph, check = export_onnx(model, fields, test)
    try:
        saved = bentoml.sklearn.save_model(name, model, labels=labels,
                                           metadata={"mlflow_model_name": model_name})
        info = {"bento_model": str(saved.tag), "model_name": model_name,
                "kubecycle_version": kubecycle.__version__, "task": contract.task,
                "model_version": str(version), "fields": fields,
                "classes": [_json_value(c) for c in getattr(model, "classes_", [])],
                "onnx": {"file": ONNX_FILE if graph else None, "reason": check.reason},
                "background": background_rows(test, fields)}
        packages = SERVING_PACKAGES + (ONNX_PACKAGES if graph else ()) + model_packages(model)
        with tempfile.TemporaryDirectory() as folder:
            _build_context(Path(folder), info, graph)
            # BentoML imports service.py by module name: a bento built earlier in this process
            # would otherwise lend its module (and its model) to this bento's metadata
            sys.modules.pop(SERVICE_MODULE, None)
            bento = bentoml.bentos.build(
                f"{SERVICE_MODULE}:KubecycleService", name=name, labels=labels,
                include=["service.py", INFO_FILE, "kubecycle/**/*.py",
                         *([ONNX_FILE] if graph else [])],
                python={"packages": pinned(packages), "lock_packages": False},
                models=[str(saved.tag)], build_ctx=folder)
            sys.modules.pop(SERVICE_MODULE, None)
        export_path = None
        if export_dir is not None:
            export_path = export_archive(str(bento.tag), str(export_dir),
                                         bento_archive(model_name, version))
    except bentoml.exceptions.BentoMLException as exc:
        raise PackagingError(f"bento build for {model_name} v{version} failed: {exc}") from None
    uri = export_path if export_path and "://" in export_path else None
    return PackageResult(str(bento.tag), str(saved.tag), export_path, check, uri, info, graph)


def package_version(model, model_name: str, version: str, contract: DataContract, *,
                    test: pd.DataFrame | None, export_dir: str | Path | None = None,
                    bento_store: str | None = None, run_id: str | None = None
                    ) -> PackageResult:
    """Build a registered version's bento, export it, and record it on the version.

    The MLflow tracking URI must already be set.

    Args:
        model: The fitted scikit-learn Pipeline of the version.
        model_name: The registered model.
        version: The registered version.
        contract: The version's data contract.
        test: The held-out rows registered with the version (verify the ONNX graph).
        export_dir: Where to export the archive (a folder or a URI), if anywhere.
        bento_store: An object-store prefix the serving pods import from: the archive is
            uploaded there too, and its URI recorded (`kubecycle deploy` pins it).
        run_id: The training run, tagged with the bento as well.

    Returns:
        The bento built, with the URI recorded on the version (if any).
    """
    import mlflow

    result = build_bento(model, model_name, version, contract, export_dir, test)
    if bento_store:
        result = replace(result, bento_uri=export_archive(
            result.bento_tag, bento_store, bento_archive(model_name, version)))
    client = mlflow.MlflowClient()
    _log_serving_artifacts(client, client.get_model_version(model_name, str(version)).run_id,
                           result)
    for key, value in result.version_tags().items():
        client.set_model_version_tag(model_name, str(version), key, value)
    if run_id:
        client.set_tag(run_id, BENTO_TAG, result.bento_tag)
    return result


def _log_serving_artifacts(client, run_id: str, result: PackageResult) -> None:
    """The service's info and the verified graph, under the run that logged the version.

    Batch scoring runs the graph from there without the bento or a new conversion.
    """
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / INFO_FILE).write_text(json.dumps(result.info, indent=2))
        if result.graph is not None:
            (Path(folder) / ONNX_FILE).write_bytes(result.graph)
        client.log_artifacts(run_id, folder, SERVING_ARTIFACTS)


def export_archive(bento_tag: str, destination: str, filename: str) -> str:
    """Export a bento archive into a folder, or under a URI Arrow writes to.

    Args:
        bento_tag: The bento in the local BentoML store.
        destination: A folder, or an object-store prefix (s3://bucket/prefix, gs://...) the
            serving pods import from.
        filename: The archive's file name.

    Returns:
        The archive's path or URI.

    Raises:
        PackagingError: the upload failed (the message names the URI).
    """
    import bentoml

    if "://" not in destination:
        Path(destination).mkdir(parents=True, exist_ok=True)
        return bentoml.export_bento(bento_tag, str(Path(destination) / filename))
    from pyarrow import fs

    uri = f"{destination.rstrip('/')}/{filename}"
    with tempfile.TemporaryDirectory() as folder:
        local = bentoml.export_bento(bento_tag, str(Path(folder) / filename))
        try:
            target, path = fs.FileSystem.from_uri(uri)
            fs.copy_files(local, path, destination_filesystem=target)
        except (OSError, ValueError) as exc:
            raise PackagingError(f"could not upload the bento archive to {uri}: "
                                 f"{first_line(exc)}; check the URI and the credentials"
                                 ) from None
    return uri


BACKGROUND_ROWS = 20  # rows /explain compares a record with (its cost grows with them)


def background_rows(test: pd.DataFrame | None, fields: dict[str, dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """A seeded sample of the registered test rows, as JSON records, for /explain."""
    if test is None or test.empty or any(name not in test.columns for name in fields):
        return []
    sample = test[list(fields)].sample(min(BACKGROUND_ROWS, len(test)), random_state=0)
    return json.loads(sample.to_json(orient="records", date_format="iso"))


def _json_value(value):
    return value.item() if hasattr(value, "item") else value
