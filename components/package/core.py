"""Build (and export) a BentoML bento for a registered MLflow model version."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import kubecycle.settings
from kubecycle.components.package.onnx_export import OnnxCheck, export_onnx
from kubecycle.errors import PackagingError
from kubecycle.registry import bento_name, pinned

SERVING_PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")
ONNX_PACKAGES = ("onnxruntime",)
ONNX_FILE = "model.onnx"
_HERE = Path(__file__).resolve().parent
# Modules the service or the pickled Pipeline import, copied into the bento at the same path.
_BENTO_MODULES = ("features/transformers.py", "package/onnx_feed.py", "package/inference_log.py")
_CORE = Path(kubecycle.settings.__file__).resolve().parent
_BENTO_CORE_MODULES = ("settings.py", "errors.py")  # what the service reads its env with


@dataclass(frozen=True)
class PackageResult:
    bento_tag: str
    model_tag: str
    export_path: str | None
    onnx: OnnxCheck

    def to_dict(self) -> dict:
        return {"bento_tag": self.bento_tag, "model_tag": self.model_tag,
                "export_path": self.export_path, "onnx": self.onnx.__dict__}


def _build_context(folder: Path, info: dict, graph: bytes | None) -> None:
    shutil.copy(_HERE / "service.py", folder / "service.py")
    (folder / "kubecycle_bento.json").write_text(json.dumps(info, indent=2))
    if graph is not None:
        (folder / ONNX_FILE).write_bytes(graph)
    target = folder / "kubecycle"
    for module in _BENTO_MODULES:
        destination = target / "components" / module
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_HERE.parent / module, destination)
    for module in _BENTO_CORE_MODULES:
        shutil.copy(_CORE / module, target / module)
    for package in {target, *[p for p in target.rglob("*") if p.is_dir()]}:
        (package / "__init__.py").write_text('"""Copied from kubecycle for the service."""\n')

def serving_fields(contract: dict) -> dict[str, dict]:
    """The request fields of the service: every contract column but the target, with its kind
    and (for categorical columns) the known categories."""
    return {name: {"kind": spec["kind"], **({"categories": spec["categories"]}
                                             if "categories" in spec else {})}
            for name, spec in contract["columns"].items() if name != contract.get("target")}


def build_bento(model, model_name: str, version: str, contract: dict,
                export_dir: str | Path | None = None, test: pd.DataFrame | None = None
                ) -> PackageResult:
    """Save the model to the BentoML store and build a bento serving it.

    Args:
        model: the fitted scikit-learn Pipeline of the registered version.
        model_name, version: the MLflow registered model and version (labels, responses).
        contract: the data contract (request fields, types and categories).
        export_dir: if given, also export the bento archive there.
        test: the registered test rows; the bento serves an ONNX graph of the model only if
            the graph reproduces the model's predictions on them.
    """
    import bentoml

    name = bento_name(model_name)
    labels = {"mlflow_model": name, "mlflow_version": str(version)}
    fields = serving_fields(contract)
    graph, check = export_onnx(model, fields, test)
    try:
        saved = bentoml.sklearn.save_model(name, model, labels=labels,
                                           metadata={"mlflow_model_name": model_name})
        info = {"bento_model": str(saved.tag), "model_name": model_name,
                "model_version": str(version), "fields": fields,
                "classes": [_json_value(c) for c in getattr(model, "classes_", [])],
                "onnx": {"file": ONNX_FILE if graph else None, "reason": check.reason}}
        packages = SERVING_PACKAGES + (ONNX_PACKAGES if graph else ())
        pins = pinned(packages)
        with tempfile.TemporaryDirectory() as folder:
            _build_context(Path(folder), info, graph)
            bento = bentoml.bentos.build(
                "service:KubecycleService", name=name, labels=labels,
                include=["service.py", "kubecycle_bento.json", "kubecycle/**/*.py",
                         *([ONNX_FILE] if graph else [])],
                python={"packages": pins, "lock_packages": False},
                models=[str(saved.tag)], build_ctx=folder)
        export_path = None
        if export_dir is not None:
            export_path = export_archive(str(bento.tag), str(export_dir), f"{name}-{version}.bento")
    except bentoml.exceptions.BentoMLException as exc:
        raise PackagingError(f"bento build for {model_name} v{version} failed: {exc}") from None
    return PackageResult(str(bento.tag), str(saved.tag), export_path, check)


def export_archive(bento_tag: str, destination: str, filename: str) -> str:
    """Export a bento archive into a folder, or under a URI Arrow writes to (s3://bucket/prefix,
    gs://...: the serving pods import it from there); returns the archive's path or URI."""
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
                                 f"{str(exc).splitlines()[0]}; check the URI and the credentials"
                                 ) from None
    return uri


def _json_value(value):
    return value.item() if hasattr(value, "item") else value
