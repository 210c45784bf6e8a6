"""Retrainers for monitoring: run the training pipeline on this machine or through the KFP API.

The local one uses kfp.local. Both hand the window's labelled rows to the pipeline the same
way, as its `labelled*` parameters, and its ingest stage adds them to the configured data.
"""

from __future__ import annotations

from kubecycle.components.monitor.core import Retrainer
from kubecycle.config import KubecycleConfig
from kubecycle.monitoring.window import LabelledWindow


def local_retrainer(tracking_uri: str | None) -> Retrainer:
    """A retrainer that runs the whole training pipeline locally (same promotion gate).

    The retrainer returns the new MLflow run id.
    """

    def retrain(cfg: KubecycleConfig, labelled: LabelledWindow | None) -> str:
        from kubecycle.pipelines.run import run_local

        return run_local(cfg, tracking_uri=tracking_uri, labelled=labelled)["run_id"]

    return retrain


def kfp_retrainer(host: str, tracking_uri: str | None = None, token: str | None = None,
                  namespace: str | None = None, experiment: str = "kubecycle") -> Retrainer:
    """A retrainer that creates a run of the training pipeline through the KFP API.

    The retrainer returns the KFP run id. The run's ingest task reads the labelled rows where
    monitoring read them: an object-store prefix (the chart's monitoring.inferenceLog.uri) works
    from any pod.
    """

    def retrain(cfg: KubecycleConfig, labelled: LabelledWindow | None) -> str:
        from kubecycle.pipelines.submit import submit

        return submit(cfg, host, experiment=experiment, token=token, tracking_uri=tracking_uri,
                      namespace=namespace, labelled=labelled).run_id

    return retrain
