"""kfp component for monitoring: the verdict as a single output for dsl.If."""

from kfp.dsl import HTML, Artifact, Output

from kubecycle.components._kfp import stage_component


@stage_component
def monitor_window(
    config: str,
    tracking_uri: str,
    current: str,
    model: str,
    window: str,
    summary: Output[Artifact],
    report: Output[HTML],
) -> str:
    """Check the window against the model's reference and say whether to retrain.

    Returns "retrain" when the policy calls for retraining, else "keep". A single output on
    purpose: kfp.local evaluates dsl.If on a NamedTuple field as False.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from kubecycle.components.monitor.core import monitor
    from kubecycle.config import KubecycleConfig
    from kubecycle.monitoring.window import parse_window
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    connect(tracking_uri)
    with tempfile.TemporaryDirectory() as folder:
        outcome = monitor(cfg, current=current, output_dir=Path(folder), model=model,
                          since=parse_window(window))
        shutil.copy(outcome.paths["summary.json"], summary.path)
        if "drift_report.html" in outcome.paths:
            shutil.copy(outcome.paths["drift_report.html"], report.path)
        else:
            Path(report.path).write_text("<p>no reference sample: no Evidently report</p>")
    summary.metadata.update({"dataset_drift": outcome.drift.dataset_drift,
                             "drift_share": outcome.drift.share,
                             "decision": outcome.decision.reason})
    return "retrain" if outcome.decision.retrain else "keep"
