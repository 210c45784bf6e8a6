"""Retraining triggered by monitoring: locally through the training pipeline on kfp.local."""

from __future__ import annotations

from datetime import datetime, timezone
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
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
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
