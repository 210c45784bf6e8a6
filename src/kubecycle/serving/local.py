"""Serving a registered version on this machine: find (or build) its bento, run `bentoml serve`."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from kubecycle.config import KubecycleConfig
from kubecycle.errors import PackagingError
from kubecycle.registry import (
    BENTO_TAG,
    RegisteredVersion,
    load_contract,
    load_test_rows,
    resolve_version,
)
from kubecycle.settings import BENTOML_HOME, INFERENCE_LOG, bentoml_home, kubecycle_home

if TYPE_CHECKING:
    from kubecycle.serving.onnx_export import OnnxCheck


@dataclass(frozen=True)
class ServableModel:
    """A registered version with the bento that serves it, and whether that bento was built now."""

    version: RegisteredVersion
    bento_tag: str
    built: bool  # False: the bento recorded on the version was already in the store
    onnx: OnnxCheck | None = None  # the ONNX check of a bento built now


def ensure_bento(cfg: KubecycleConfig, model: str = "", export_dir: str | None = None
                 ) -> ServableModel:
    """Find or build the bento of a registered version.

    It is the one recorded on the version when the local store has it, else one built now
    from the registered model (and recorded on the version). Exported to an object-store URI,
    the archive's URI is recorded too (`kubecycle deploy` pins it).

    The MLflow tracking URI must already be set.
    """
    import bentoml
    import mlflow

    from kubecycle.serving.bento import package_version

    version = resolve_version(model, cfg.mlflow.model_name)
    recorded = version.tags.get(BENTO_TAG)
    if recorded and export_dir is None:
        try:
            bentoml.get(recorded)
            return ServableModel(version, recorded, built=False)
        except bentoml.exceptions.NotFound:
            pass
    contract = load_contract(version)
    if contract is None:
        raise PackagingError(f"{version.name} v{version.version} has no data contract; "
                             "retrain it with `kubecycle run`")
    fitted = mlflow.sklearn.load_model(f"models:/{version.name}/{version.version}")
    result = package_version(fitted, version.name, version.version, contract,
                             test=load_test_rows(version), export_dir=export_dir,
                             run_id=version.run_id)
    return ServableModel(version, result.bento_tag, built=True, onnx=result.onnx)


def serve_command(bento_tag: str, port: int = 3000, host: str = "127.0.0.1",
                  inference_log: str | Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The `bentoml serve` command line and environment that serve a bento.

    Args:
        bento_tag: The bento to serve.
        port: The port to bind.
        host: The interface to bind.
        inference_log: A folder or an object-store URI (s3://bucket/prefix); default:
            KUBECYCLE_HOME/inference-log (what `kubecycle monitor --current` reads).

    Returns:
        The command (its first item the bentoml executable) and the environment.
    """
    sink = str(inference_log or kubecycle_home() / "inference-log")
    if "://" not in sink:  # the workers run in the bento's folder
        sink = str(Path(sink).expanduser().resolve())
    env = {**os.environ, BENTOML_HOME.name: str(bentoml_home()), INFERENCE_LOG.name: sink}
    command = [str(Path(sys.executable).parent / "bentoml"), "serve", bento_tag,
               "--host", host, "--port", str(port)]
    return command, env


def serve(bento_tag: str, port: int = 3000, host: str = "127.0.0.1",
          inference_log: str | Path | None = None) -> NoReturn:
    """Become `bentoml serve` (exec), so this process turns into BentoML's arbiter.

    SIGTERM and SIGINT reach the arbiter directly; it stops its workers, which answer the
    requests in flight and write their inference log before they exit, and it waits for them.
    Nothing is left behind: there is no parent to outlive, and the workers stop when the
    arbiter dies even by SIGKILL (the service asks the kernel for SIGTERM on its parent's
    death).

    Args:
        bento_tag: The bento to serve.
        port: The port to bind.
        host: The interface to bind.
        inference_log: A folder or an object-store URI; default: KUBECYCLE_HOME/inference-log.

    Raises:
        OSError: the bentoml executable could not be run.
    """
    command, env = serve_command(bento_tag, port, host, inference_log)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
