"""The monitoring pipeline: monitor -> dsl.If(retrain) -> the training pipeline.

The training pipeline is a sub-DAG, so the new version passes the same promotion gate. Runs on
kfp.local and schedules as a KFP recurring run. No `from __future__ import annotations`: kfp
reads the annotations.
"""

from collections.abc import Callable

from kfp import dsl

from kubecycle.components.monitor.component import monitor_window
from kubecycle.config import KubecycleConfig
from kubecycle.pipelines.training import build_training_pipeline

PIPELINE_NAME = "kubecycle-monitoring"


def build_monitoring_pipeline(cfg: KubecycleConfig) -> Callable:
    """The monitoring pipeline for a config (its training settings drive the retraining)."""
    training = build_training_pipeline(cfg)

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="kubecycle: drift check of a window, retraining when the policy says so")
    def monitoring_pipeline(config: str, tracking_uri: str, current: str, model: str = "",
                            window: str = ""):
        check = monitor_window(config=config, tracking_uri=tracking_uri, current=current,
                               model=model, window=window)
        check.set_caching_options(enable_caching=False)
        with dsl.If(check.outputs["Output"] == "retrain", name="drift-retrain"):
            # the window's labelled rows join the training data (read again by ingest)
            training(config=config, tracking_uri=tracking_uri, run_name="retrain-after-drift",
                     labelled=current, labelled_window=window)

    return monitoring_pipeline
