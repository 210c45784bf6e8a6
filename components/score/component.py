"""kfp component for batch scoring."""

from kfp.dsl import Artifact, Output

from kubecycle.components._kfp import stage_component


@stage_component
def score_files(
    config: str,
    tracking_uri: str,
    source: str,
    destination: str,
    model: str,
    summary: Output[Artifact],
) -> None:
    """Score the files at `source` with a registered version; write `destination` and its rejects.

    Source and destination are paths or object-store URIs the task's pod reaches; the summary
    artifact holds the counts, the model version and the runtime.
    """
    from kubecycle.artifacts import write_json
    from kubecycle.components.score.core import score_batch
    from kubecycle.config import KubecycleConfig
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    connect(tracking_uri)
    result = score_batch(cfg, source, destination, model)
    write_json(summary.path, result.to_dict())
    summary.metadata.update({"rows": result.rows, "scored": result.scored,
                             "rejected": result.rejected, "output": result.output,
                             "model": f"{result.model_name}/{result.model_version}",
                             "runtime": result.runtime})
