"""The batch scoring pipeline: one task that scores files with a registered version.

Compiled and submitted like the training pipeline (`kubecycle compile --pipeline scoring`,
`kubecycle submit --pipeline scoring`); runs on kfp.local. No `from __future__ import
annotations`: kfp reads the annotations.
"""

from collections.abc import Callable

from kfp import dsl

from kubecycle.components.score.component import score_files
from kubecycle.config import KubecycleConfig

PIPELINE_NAME = "kubecycle-scoring"
STAGE = "score"


def build_scoring_pipeline(cfg: KubecycleConfig) -> Callable:
    """The scoring pipeline for a config (its `cluster` settings apply to the task)."""
    from kubecycle.pipelines.training import settle_task

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="kubecycle: batch scoring of files with a registered model version")
    def scoring_pipeline(config: str, tracking_uri: str, source: str, destination: str,
                         model: str = "") -> dsl.Artifact:
        task = settle_task(score_files(config=config, tracking_uri=tracking_uri, source=source,
                                       destination=destination, model=model),
                           cfg.cluster, STAGE)
        task.set_caching_options(enable_caching=False)  # the files change, the parameters not
        return task.outputs["summary"]

    return scoring_pipeline
