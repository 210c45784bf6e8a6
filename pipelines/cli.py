"""The `kubecycle` command line.

The lifecycle commands (run, compile, submit) are here, those on registered versions in
cli_models.py.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kubecycle.errors import KubecycleError
from kubecycle.pipelines.cli_common import ConfigArg, ModelOption, err, fail, load, out
from kubecycle.pipelines.cli_models import deploy, feedback, monitor, package, predict, serve

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="kubecycle: the tabular ML lifecycle on Kubeflow Pipelines.")


@app.callback()
def _stores() -> None:
    """kubecycle: the tabular ML lifecycle on Kubeflow Pipelines."""
    from kubecycle.settings import BENTOML_HOME, MLFLOW_DISABLE_TELEMETRY, bentoml_home

    # BentoML reads its store location once; every command and the tasks of a run share it
    os.environ.setdefault(BENTOML_HOME.name, str(bentoml_home()))
    # MLflow's telemetry thread: no use without egress, and it races readers of os.environ
    os.environ.setdefault(MLFLOW_DISABLE_TELEMETRY.name, "true")


def _with_pretrained(cfg, pretrained: str | None):
    """The config with models.pretrained from --pretrained, in place of the configured families.

    A path is relative to the working folder.
    """
    if pretrained is None:
        return cfg
    from kubecycle.config import ModelsConfig

    source = pretrained if ":/" in pretrained else str(Path(pretrained).expanduser().resolve())
    models = ModelsConfig(pretrained=source, trust_pickle=cfg.models.trust_pickle,
                          trusted_types=cfg.models.trusted_types)
    return cfg.model_copy(update={"models": models})


def _summary_table(summary: dict) -> Table:
    table = Table(title=f"kubecycle run: {summary['status']}", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # paths and run ids stay whole
    table.add_row("decision", summary["reason"])
    table.add_row("model", f"{summary['model_name']} v{summary['model_version']}")
    table.add_row("task / metric", f"{summary['task']} / {summary['metric']}")
    cv_key = f"cv_{summary['metric']}"
    table.add_row("family", f"{summary['model']['family']} {summary['model']['params']}")
    if summary["model"][cv_key] is not None:  # a pre-trained model was not cross-validated
        table.add_row(cv_key, f"{summary['model'][cv_key]:.4f}")
    for entry in summary["model"]["ranking"]:
        if entry.get("skipped"):
            table.add_row(f"skipped {entry['family']}", entry.get("reason", ""))
    for name in ("outliers", "label_noise"):
        counts = summary["cleaning"][name]
        if counts["method"] != "none":
            table.add_row(name.replace("_", " "), f"{counts['method']}: {counts['flagged']} "
                          f"flagged, {counts['dropped']} dropped")
    for name, value in sorted(summary["metrics"]["test"].items()):
        table.add_row(f"test {name}", f"{value:.4f}")
    table.add_row("top features", ", ".join(summary["top_features"][:5]))
    table.add_row("bento", summary["bento_tag"])
    table.add_row("serving runtime", f"{summary['serving_runtime']} "
                                     f"({summary['serving_runtime_reason']})")
    table.add_row("MLflow run", f"{summary['run_id']} @ {summary['tracking_uri']}")
    table.add_row("summary", str(Path(summary["output_dir"]) / "summary.json"))
    return table


@app.command()
def run(
    config: ConfigArg = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="output folder")] = None,
    tracking_uri: Annotated[str | None, typer.Option(
        help="MLflow server; default: a local store under KUBECYCLE_HOME")] = None,
    in_containers: Annotated[bool, typer.Option(
        "--in-containers", help="run each task in the components image (Docker, or podman's "
        "API at DOCKER_HOST), as on a cluster")] = False,
    pretrained: Annotated[str | None, typer.Option(
        help="a fitted model file or MLflow URI used instead of tuning and training "
             "(models.pretrained)")] = None,
) -> None:
    """Run the whole lifecycle locally on kfp's local runner."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kubecycle.pipelines.run import run_local
    from kubecycle.settings import tracking_uri_from_env

    try:
        cfg = _with_pretrained(load(config), pretrained)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err, transient=False) as progress:
            running: dict[str, list[int]] = {}  # parallel iterations share a task name

            def on_progress(task: str, state: str) -> None:
                if state == "started":
                    running.setdefault(task, []).append(progress.add_task(task, total=1))
                elif running.get(task):
                    mark = "[green]done[/]" if state == "SUCCESS" else f"[red]{state}[/]"
                    progress.update(running[task].pop(0), completed=1,
                                    description=f"{task} {mark}")

            summary = run_local(cfg, output, tracking_uri or tracking_uri_from_env(), on_progress,
                                in_containers=in_containers)
    except KubecycleError as exc:
        fail(exc)
    out.print(_summary_table(summary))


class Pipeline(StrEnum):
    """The pipelines compile and submit know."""

    training = "training"
    scoring = "scoring"


PipelineOption = Annotated[Pipeline, typer.Option(
    "--pipeline", help="training, or scoring (batch scoring of --input into --output)")]


@app.command("compile")
def compile_(
    config: ConfigArg = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="IR YAML file")] = Path(
        "pipeline.yaml"),
    tracking_uri: Annotated[str, typer.Option(help="MLflow URI the cluster tasks use")] = (
        "http://kubecycle-mlflow.mlops:5000"),
    pipeline: PipelineOption = Pipeline.training,
) -> None:
    """Compile the training (or batch scoring) pipeline to KFP IR YAML for a Kubeflow cluster."""
    from kubecycle.pipelines.run import compile_pipeline

    try:
        path = compile_pipeline(load(config), output, tracking_uri, pipeline.value)
    except KubecycleError as exc:
        fail(exc)
    out.print(f"compiled {path}")


def _scoring_arguments(pipeline: str, source: str | None, destination: str | None,
                       model: str) -> dict[str, str] | None:
    """The scoring pipeline's arguments (None for training); --input/--output belong to scoring."""
    from kubecycle.errors import ConfigError

    given = [f"--{name}" for name, value in (("input", source), ("output", destination),
                                             ("model", model)) if value]
    if pipeline == "training":
        if given:
            raise ConfigError(f"{' and '.join(given)}: only with --pipeline scoring")
        return None
    if not source or not destination:
        raise ConfigError("--pipeline scoring needs --input and --output (URIs the pods reach)")
    return {"source": source, "destination": destination, "model": model}


@app.command()
def submit(
    host: Annotated[str, typer.Option(
        help="KFP API URL, e.g. http://localhost:8888 (kubectl port-forward svc/ml-pipeline)")],
    config: ConfigArg = None,
    experiment: Annotated[str, typer.Option(help="KFP experiment, created if missing")] = "kubecycle",
    schedule: Annotated[str | None, typer.Option(
        help="5-field cron 'minute hour day-of-month month day-of-week' (cluster time, usually UTC): "
             "a recurring run instead of one run")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the run; fail unless it SUCCEEDED")] = False,
    timeout: Annotated[float, typer.Option(min=1, help="seconds --wait waits at most")] = 3600.0,
    token: Annotated[str | None, typer.Option(
        help="bearer token for the KFP API; default: $KUBECYCLE_KFP_TOKEN or $KF_PIPELINES_TOKEN "
             "(prefer these: a command-line token shows in the process list)")] = None,
    tracking_uri: Annotated[str, typer.Option(help="MLflow URI the cluster tasks use")] = (
        "http://kubecycle-mlflow.mlops:5000"),
    namespace: Annotated[str | None, typer.Option(
        help="profile namespace of a multi-user KFP")] = None,
    pipeline: PipelineOption = Pipeline.training,
    input_: Annotated[str | None, typer.Option(
        "--input", help="scoring: file, folder or URI the cluster's pods read")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", help="scoring: .csv/.parquet file or URI the cluster's pods write")] = None,
    model: ModelOption = "",
) -> None:
    """Compile the training (or scoring) pipeline, submit it to KFP (one run or a schedule)."""
    from kubecycle.pipelines.submit import SubmitResult
    from kubecycle.pipelines.submit import submit as submit_pipeline

    def on_submitted(result: SubmitResult) -> None:
        if result.recurring_run_id:
            out.print(f"recurring run {result.recurring_run_id} (cron '{result.cron}') in experiment "
                      f"{result.experiment}", highlight=False, soft_wrap=True)
        else:
            out.print(f"run {result.run_id} in experiment {result.experiment}", highlight=False,
                      soft_wrap=True)
        out.print(result.url, highlight=False, soft_wrap=True)
        if wait:
            err.print(f"waiting for run {result.run_id} (at most {timeout:g} s)", highlight=False)

    try:
        scoring = _scoring_arguments(pipeline.value, input_, output, model)
        result = submit_pipeline(
            load(config), host, experiment=experiment, schedule=schedule, wait=wait, timeout=timeout,
            token=token, tracking_uri=tracking_uri, namespace=namespace, on_submitted=on_submitted,
            scoring=scoring)
    except KubecycleError as exc:
        fail(exc)
    if result.state:
        out.print(f"run {result.run_id} {result.state}", highlight=False)


for command in (package, serve, predict, feedback, monitor, deploy):  # after run, compile, submit
    app.command()(command)
