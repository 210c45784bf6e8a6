"""kfp component that opens the parent MLflow run."""

from kfp.dsl import HTML, Artifact, Input, Output, OutputPath

from kubecycle.components._kfp import stage_component


@stage_component
def start_run(config: str, tracking_uri: str, run_name: str, run_id: OutputPath(str)) -> None:
    """Open the parent MLflow run; writes its id for every later stage.

    A named output, not the return value: kfp.local confuses two "Output" parameters that
    meet in one task (this one and the ParallelFor item).
    """
    from pathlib import Path

    from kubecycle.components.track.core import start_parent_run
    from kubecycle.config import KubecycleConfig

    parent = start_parent_run(KubecycleConfig.from_json(config), tracking_uri, run_name)
    Path(run_id).write_text(parent)


@stage_component
def summarize_run(
    tracking_uri: str,
    run_id: str,
    selection: Input[Artifact],
    cleaning: Input[Artifact],
    evaluation: Input[Artifact],
    importance: Input[Artifact],
    registration: Input[Artifact],
    bento: Input[Artifact],
    eda_report: Input[HTML],
    evaluation_report: Input[HTML],
    shap_report: Input[HTML],
    summary: Output[Artifact],
) -> None:
    """Gather the run's outcome into one JSON document and close the parent run."""
    import os

    from kubecycle.artifacts import read_json, write_json
    from kubecycle.components.track.core import build_summary, finish_parent_run

    document = build_summary(
        tracking_uri=tracking_uri, run_id=run_id, selection=read_json(selection.path),
        cleaning=read_json(cleaning.path),
        evaluation=read_json(evaluation.path), importance=read_json(importance.path),
        registration=read_json(registration.path),
        bento=read_json(os.path.join(bento.path, "bento.json")),
        reports={"eda": eda_report.path, "evaluation": evaluation_report.path,
                 "shap": shap_report.path})
    write_json(summary.path, document)
    finish_parent_run(tracking_uri, run_id)
