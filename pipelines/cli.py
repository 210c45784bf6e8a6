"""The `kubecycle` command line."""

from __future__ import annotations

import os
from datetime import UTC
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kubecycle.errors import KubecycleError
from kubecycle.registry import SERVING_RUNTIME_REASON_TAG

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="kubecycle: the tabular ML lifecycle on Kubeflow Pipelines.")
err = Console(stderr=True)
out = Console()

ConfigArg = Annotated[Path | None, typer.Argument(
    help="YAML config; default: the shipped Palmer penguins demo")]
ModelOption = Annotated[str, typer.Option(
    "--model", help="NAME@ALIAS or NAME/VERSION (default: the config's model @champion)")]
TrackingOption = Annotated[str | None, typer.Option(
    help="MLflow server; default: the local store under KUBECYCLE_HOME")]


@app.callback()
def _stores() -> None:
    """kubecycle: the tabular ML lifecycle on Kubeflow Pipelines."""
    from kubecycle.settings import BENTOML_HOME, MLFLOW_DISABLE_TELEMETRY, bentoml_home

    # BentoML reads its store location once; every command and the tasks of a run share it
    os.environ.setdefault(BENTOML_HOME.name, str(bentoml_home()))
    # MLflow's telemetry thread: no use without egress, and it races readers of os.environ
    os.environ.setdefault(MLFLOW_DISABLE_TELEMETRY.name, "true")


def _load(config: Path | None):
    from kubecycle.config import load_config
    from kubecycle.examples import DEMO_CONFIG

    return load_config(config or DEMO_CONFIG)


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


def _fail(exc: KubecycleError) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


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
        cfg = _with_pretrained(_load(config), pretrained)
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
        _fail(exc)
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
        path = compile_pipeline(_load(config), output, tracking_uri, pipeline.value)
    except KubecycleError as exc:
        _fail(exc)
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
            _load(config), host, experiment=experiment, schedule=schedule, wait=wait, timeout=timeout,
            token=token, tracking_uri=tracking_uri, namespace=namespace, on_submitted=on_submitted,
            scoring=scoring)
    except KubecycleError as exc:
        _fail(exc)
    if result.state:
        out.print(f"run {result.run_id} {result.state}", highlight=False)


def _connect_tracking(tracking_uri: str | None) -> str | None:
    """Connect to the given or environment's MLflow, else the local store; return the given."""
    from kubecycle.settings import kubecycle_home, tracking_uri_from_env
    from kubecycle.tracking import connect, local_store_uri

    uri = tracking_uri or tracking_uri_from_env()
    connect(uri or local_store_uri(kubecycle_home()))
    return uri


@app.command()
def package(
    config: ConfigArg = None,
    model: ModelOption = "",
    export: Annotated[str | None, typer.Option(
        help="also export the bento archive to this folder or s3:// (gs://) URI prefix")] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Build the BentoML bento of a registered version (and export it)."""
    from kubecycle.serving.local import ensure_bento

    try:
        _connect_tracking(tracking_uri)
        servable = ensure_bento(_load(config), model, export)
    except KubecycleError as exc:
        _fail(exc)
    state = "built" if servable.built else "already built"
    tags = servable.version.tags  # versions packaged before 0.x recorded kubecycle.onnx_reason
    runtime = (tags.get(SERVING_RUNTIME_REASON_TAG) or tags.get("kubecycle.onnx_reason", "")
               if servable.onnx is None else servable.onnx.reason)
    out.print(f"{servable.version.name} v{servable.version.version}: bento {servable.bento_tag} "
              f"({state}); ONNX: {runtime or 'not checked'}", highlight=False)


@app.command("serve")
def serve_(
    config: ConfigArg = None,
    model: ModelOption = "",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 3000,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    inference_log: Annotated[str | None, typer.Option(
        help="folder or object-store URI (s3://bucket/prefix) of the inference log; "
             "default: $KUBECYCLE_HOME/inference-log")] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Serve a registered version over HTTP with BentoML (builds its bento if needed)."""
    from kubecycle.serving.local import ensure_bento, serve

    try:
        _connect_tracking(tracking_uri)
        servable = ensure_bento(_load(config), model)
    except KubecycleError as exc:
        _fail(exc)
    err.print(f"serving {servable.version.name} v{servable.version.version} "
              f"({servable.bento_tag}) on http://{host}:{port}", highlight=False)
    serve(servable.bento_tag, port, host, inference_log)  # becomes `bentoml serve`


@app.command()
def predict(
    input_: Annotated[str, typer.Option(
        "--input", help="CSV/Parquet file, a folder of them, or an s3:// / gs:// URI")],
    output: Annotated[str, typer.Option(
        "--output", "-o", help=".csv or .parquet file (path or URI); rejected rows go to "
                               "<output>.rejects.<suffix>")],
    config: ConfigArg = None,
    model: ModelOption = "",
    tracking_uri: TrackingOption = None,
) -> None:
    """Score files in chunks with a registered version (batch inference)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kubecycle.components.score.core import score_batch

    try:
        cfg = _load(config)
        _connect_tracking(tracking_uri)
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("rows"), TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            bar = progress.add_task("scoring", total=None)
            result = score_batch(cfg, input_, output, model, on_progress=lambda done, total:
                                 progress.update(bar, completed=done, total=total))
    except KubecycleError as exc:
        _fail(exc)
    rate = result.rows / result.seconds if result.seconds else 0.0
    out.print(f"{result.model_name} v{result.model_version} ({result.runtime}): scored "
              f"{result.scored} of {result.rows} rows in {result.seconds:.1f} s "
              f"({rate:,.0f} rows/s) -> {result.output}; {result.rejected} rejected -> "
              f"{result.rejects}", highlight=False, soft_wrap=True)


@app.command("monitor")
def monitor_(
    config: ConfigArg = None,
    model: ModelOption = "",
    current: Annotated[str, typer.Option(help="window: CSV/Parquet file or a folder of Parquet "
                                              "files (the inference log); a path or an "
                                              "s3://, gs:// URI")] = "current.parquet",
    window: Annotated[str | None, typer.Option(help="only rows of the last 30m / 24h / 7d "
                                                    "(needs a timestamp column)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="output folder")] = None,
    retrain: Annotated[bool | None, typer.Option(
        "--retrain/--no-retrain", help="override monitoring.retrain")] = None,
    push_metrics: Annotated[str | None, typer.Option(help="Pushgateway URL")] = None,
    tracking_uri: TrackingOption = None,
    kfp_host: Annotated[str | None, typer.Option(
        help="retrain through this KFP API instead of locally")] = None,
) -> None:
    """Check a window for drift against the champion; exit 0 healthy, 3 drift, 1/2 could not run."""
    from datetime import datetime

    from kubecycle.components.monitor.core import monitor
    from kubecycle.monitoring.window import parse_window
    from kubecycle.pipelines.retrain import kfp_retrainer, local_retrainer
    from kubecycle.settings import kubecycle_home

    try:
        cfg = _load(config)
        uri = _connect_tracking(tracking_uri)
        retrainer = kfp_retrainer(kfp_host, uri) if kfp_host else local_retrainer(uri)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        outcome = monitor(cfg, current=current, model=model, since=parse_window(window),
                          output_dir=output or kubecycle_home() / "monitoring" / stamp,
                          retrain=retrain, push_url=push_metrics, retrainer=retrainer)
    except KubecycleError as exc:
        _fail(exc)
    drift = outcome.drift
    table = Table(title=f"kubecycle monitor: {'DRIFT' if drift.dataset_drift else 'healthy'}",
                  show_header=False)
    table.add_row("model", f"{outcome.model_name} v{outcome.model_version}")
    table.add_row("window rows", str(drift.rows))
    table.add_row("drifted columns", f"{len(drift.drifted_columns)}/{len(drift.columns)} "
                  f"{drift.drifted_columns}")
    table.add_row("decision", outcome.decision.reason)
    if outcome.retrain_run_id:
        table.add_row("retraining run", outcome.retrain_run_id)
    table.add_row("summary", outcome.paths.get("summary.json", ""))
    out.print(table)
    raise typer.Exit(outcome.exit_code)


@app.command("deploy")
def deploy_(
    config: ConfigArg = None,
    model: ModelOption = "",
    render: Annotated[bool, typer.Option("--render", help="print the pinned manifests (default)")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="server-side apply them")] = False,
    rollback: Annotated[bool, typer.Option("--rollback", help="serve the previous version")] = False,
    canary: Annotated[float | None, typer.Option(
        "--canary", metavar="PERCENT", help="run --model beside the stable version")] = None,
    promote: Annotated[bool, typer.Option("--promote", help="the canary becomes stable")] = False,
    abort: Annotated[bool, typer.Option("--abort", help="remove the canary")] = False,
    namespace: Annotated[str | None, typer.Option(help="default: deploy.namespace")] = None,
    bento_uri: Annotated[str | None, typer.Option(help="bento archive the pods import")] = None,
    image: Annotated[str | None, typer.Option(
        help="serving image of --render (default: deploy.image) or --canary (default: the "
             "stable's); the stable's image belongs to Helm/kustomize")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="--render: file")] = None,
    kubeconfig: Annotated[str | None, typer.Option(help="default: $KUBECONFIG, ~/.kube/config")] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context")] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Pin, roll back or canary the model version served, or render the whole pinned serving set.

    Helm/kustomize own the rest of the serving set.
    """
    from kubecycle.deploy.actions import deploy, serving_target
    from kubecycle.errors import ConfigError

    chosen = [name for name, on in (("render", render), ("apply", apply), ("rollback", rollback),
                                    ("canary", canary is not None), ("promote", promote),
                                    ("abort", abort)) if on]
    try:
        if len(chosen) > 1:
            raise ConfigError(f"choose one of --render/--apply/--rollback/--canary/--promote/"
                              f"--abort, not {' and '.join('--' + c for c in chosen)}")
        action = chosen[0] if chosen else "render"
        cfg = _load(config)
        target = None
        if action in ("render", "apply", "canary"):
            _connect_tracking(tracking_uri)
            target = serving_target(cfg, model, bento_uri)
        if action == "render":
            from kubecycle.deploy.pin import render as render_documents
            from kubecycle.deploy.pin import to_yaml
            from kubecycle.images import serving_image

            text = to_yaml(render_documents(target, namespace or cfg.deploy.namespace,
                                            image or cfg.deploy.image or serving_image()))
            if output is None:
                typer.echo(text, nl=False)
            else:
                output.write_text(text)
                err.print(f"wrote {output}", highlight=False)
            return
        result = deploy(action, cfg, target, namespace=namespace, image=image,
                        percent=canary or 0.0, kubeconfig=kubeconfig, context=context)
    except KubecycleError as exc:
        _fail(exc)
    served = f"{result.target.model_name} v{result.target.model_version}" if result.target else "-"
    share = f" ({result.canary_share:.0f}% of the pods)" if result.canary_share else ""
    before = (f"; before: v{result.previous.model_version}" if result.previous else "")
    out.print(f"{result.action} in {result.namespace}: {served}{share}{before}", highlight=False)
    for name in result.objects:
        out.print(f"  {name}", highlight=False)
