"""Build (and export) a BentoML bento for a registered MLflow model version."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from kubecycle.errors import PackagingError

SERVING_PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")
_HERE = Path(__file__).resolve().parent
# Modules the pickled Pipeline may reference, copied into the bento at the same import path.
_MODEL_MODULES = ("features/transformers.py",)


@dataclass(frozen=True)
class PackageResult:
    bento_tag: str
    model_tag: str
    export_path: str | None


def bento_name(model_name: str) -> str:
    """A valid BentoML name (lowercase letters, digits, '-', '_', '.') for a model name."""
    return re.sub(r"[^a-z0-9_.-]", "-", model_name.lower()).strip("-.") or "kubecycle-model"


def _build_context(folder: Path, info: dict) -> None:
    shutil.copy(_HERE / "service.py", folder / "service.py")
    (folder / "kubecycle_bento.json").write_text(json.dumps(info, indent=2))
    target = folder / "kubecycle"
    (target / "components" / "features").mkdir(parents=True)
    for init in ("__init__.py", "components/__init__.py", "components/features/__init__.py"):
        (target / init).write_text('"""Copied from kubecycle for unpickling the model."""\n')
    for module in _MODEL_MODULES:
        shutil.copy(_HERE.parent / module, target / "components" / module)

def serving_fields(contract: dict) -> dict[str, dict]:
    """The request fields of the service: every contract column but the target, with its kind
    and (for categorical columns) the known categories."""
    return {name: {"kind": spec["kind"], **({"categories": spec["categories"]}
                                             if "categories" in spec else {})}
            for name, spec in contract["columns"].items() if name != contract.get("target")}


def build_bento(model, model_name: str, version: str, contract: dict,
                export_dir: str | Path | None = None) -> PackageResult:
    """Save the model to the BentoML store and build a bento serving it.

    Args:
        model: the fitted scikit-learn Pipeline of the registered version.
        model_name, version: the MLflow registered model and version (labels, responses).
        contract: the data contract (request fields, types and categories).
        export_dir: if given, also export the bento archive there.
    """
    import bentoml

    name = bento_name(model_name)
    labels = {"mlflow_model": name, "mlflow_version": str(version)}
    try:
        saved = bentoml.sklearn.save_model(name, model, labels=labels,
                                           metadata={"mlflow_model_name": model_name})
        info = {"bento_model": str(saved.tag), "model_name": model_name,
                "model_version": str(version), "fields": serving_fields(contract)}
        pins = [f"{p}=={metadata.version(p)}" for p in SERVING_PACKAGES]
        with tempfile.TemporaryDirectory() as folder:
            _build_context(Path(folder), info)
            bento = bentoml.bentos.build(
                "service:KubecycleService", name=name, labels=labels,
                include=["service.py", "kubecycle_bento.json", "kubecycle/**/*.py"],
                python={"packages": pins, "lock_packages": False},
                models=[str(saved.tag)], build_ctx=folder)
        export_path = None
        if export_dir is not None:
            Path(export_dir).mkdir(parents=True, exist_ok=True)
            export_path = bentoml.export_bento(
                str(bento.tag), str(Path(export_dir) / f"{name}-{version}.bento"))
    except bentoml.exceptions.BentoMLException as exc:
        raise PackagingError(f"bento build for {model_name} v{version} failed: {exc}") from None
    return PackageResult(str(bento.tag), str(saved.tag), export_path)
