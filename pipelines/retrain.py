"""Retraining triggered by monitoring: locally through the training pipeline on kfp.local."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from kubecycle.config import KubecycleConfig
from kubecycle.settings import kubecycle_home


def with_labelled_window(cfg: KubecycleConfig, labelled: Path | None) -> KubecycleConfig:
    """The training config, its data extended by the window's labelled rows when there are
    any (written to a Parquet file under KUBECYCLE_HOME/retrain/)."""
    if labelled is None:
        return cfg
    from kubecycle.components.ingest.core import ingest

    original = ingest(cfg.data.source).frame
    window = pd.read_parquet(labelled)
    combined = pd.concat([original, window[[c for c in window.columns if c in original.columns]]],
                         ignore_index=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = kubecycle_home() / "retrain" / f"training-data-{stamp}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    combined.to_parquet(path, index=False)
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"source": str(path)})})


def local_retrainer(tracking_uri: str | None):
    """A retrainer for kubecycle.components.monitor.core.monitor: runs the whole training
    pipeline locally (same promotion gate) and returns the new MLflow run id."""

    def retrain(cfg: KubecycleConfig, labelled: Path | None) -> str:
        from kubecycle.pipelines.run import run_local

        summary = run_local(with_labelled_window(cfg, labelled), tracking_uri=tracking_uri)
        return summary["run_id"]

    return retrain


def kfp_retrainer(host: str, tracking_uri: str | None = None, token: str | None = None,
                  namespace: str | None = None, experiment: str = "kubecycle"):
    """A retrainer that creates a run of the training pipeline through the KFP API (on a
    cluster the window's rows stay where they are: the run trains on the configured data)."""

    def retrain(cfg: KubecycleConfig, labelled: Path | None) -> str:
        from kubecycle.pipelines.submit import submit

        return submit(cfg, host, experiment=experiment, token=token, tracking_uri=tracking_uri,
                      namespace=namespace).run_id

    return retrain
