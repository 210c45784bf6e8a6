"""`kubecycle` commands on registered versions: package, serve, predict, monitor, deploy."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kubecycle.errors import KubecycleError
from kubecycle.pipelines.cli_common import (
    ConfigArg,
    ModelOption,
    TrackingOption,
    connect_tracking,
    err,
    fail,
    load,
    out,
)
from kubecycle.registry import SERVING_RUNTIME_REASON_TAG


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
        connect_tracking(tracking_uri)
        servable = ensure_bento(load(config), model, export)
    except KubecycleError as exc:
        fail(exc)
    state = "built" if servable.built else "already built"
    tags = servable.version.tags  # versions packaged before 0.x recorded kubecycle.onnx_reason
    runtime = (tags.get(SERVING_RUNTIME_REASON_TAG) or tags.get("kubecycle.onnx_reason", "")
               if servable.onnx is None else servable.onnx.reason)
    out.print(f"{servable.version.name} v{servable.version.version}: bento {servable.bento_tag} "
              f"({state}); ONNX: {runtime or 'not checked'}", highlight=False)


def serve(
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
        connect_tracking(tracking_uri)
        servable = ensure_bento(load(config), model)
    except KubecycleError as exc:
        fail(exc)
    err.print(f"serving {servable.version.name} v{servable.version.version} "
              f"({servable.bento_tag}) on http://{host}:{port}", highlight=False)
    serve(servable.bento_tag, port, host, inference_log)  # becomes `bentoml serve`


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
        cfg = load(config)
        connect_tracking(tracking_uri)
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("rows"), TimeElapsedColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            bar = progress.add_task("scoring", total=None)
            result = score_batch(cfg, input_, output, model, on_progress=lambda done, total:
                                 progress.update(bar, completed=done, total=total))
    except KubecycleError as exc:
        fail(exc)
    rate = result.rows / result.seconds if result.seconds else 0.0
    out.print(f"{result.model_name} v{result.model_version} ({result.runtime}): scored "
              f"{result.scored} of {result.rows} rows in {result.seconds:.1f} s "
              f"({rate:,.0f} rows/s) -> {result.output}; {result.rejected} rejected -> "
              f"{result.rejects}", highlight=False, soft_wrap=True)


def feedback(
    labels: Annotated[str, typer.Option(
        "--labels", help="CSV/Parquet labels (request_id or monitoring.id_columns, and the label "
                         "column): a file, a folder or an s3:// / gs:// URI")],
    config: ConfigArg = None,
    inference_log: Annotated[str | None, typer.Option(
        help="the inference log the labels refer to; default: $KUBECYCLE_HOME/inference-log")] = None,
    label_store: Annotated[str | None, typer.Option(
        help="where labels are kept; default: $KUBECYCLE_LABEL_STORE, else <inference log>/_labels")
    ] = None,
) -> None:
    """Store labels that arrived after the predictions; report those matching no prediction."""
    from kubecycle.monitoring.labels import record_labels
    from kubecycle.settings import kubecycle_home
    from kubecycle.settings import label_store as default_store

    try:
        cfg = load(config)
        log = inference_log or str(kubecycle_home() / "inference-log")
        result = record_labels(labels, log, label_store or default_store(log),
                               cfg.monitoring.id_columns,
                               cfg.monitoring.label_column or cfg.data.target or "label")
    except KubecycleError as exc:
        fail(exc)
    unknown = (f"; {result.unknown} match no logged prediction (e.g. "
               f"{', '.join(result.unknown_examples)})" if result.unknown else "")
    out.print(f"{result.read} labels stored in {result.store}, joined on {result.keys}: "
              f"{result.joined} match logged predictions{unknown}", highlight=False,
              soft_wrap=True)


def monitor(
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
    workspace: Annotated[str | None, typer.Option(
        help="Evidently workspace (folder, s3:// or gs:// URI) the report is added to "
             "(monitoring.workspace)")] = None,
) -> None:
    """Check a window for drift against the champion; exit 0 healthy, 3 drift, 1/2 could not run."""
    from datetime import datetime

    from kubecycle.components.monitor.core import monitor
    from kubecycle.monitoring.window import parse_window
    from kubecycle.pipelines.retrain import kfp_retrainer, local_retrainer
    from kubecycle.settings import kubecycle_home

    try:
        cfg = load(config)
        if workspace:
            cfg = cfg.model_copy(update={"monitoring": cfg.monitoring.model_copy(
                update={"workspace": workspace})})
        uri = connect_tracking(tracking_uri)
        retrainer = kfp_retrainer(kfp_host, uri) if kfp_host else local_retrainer(uri)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        outcome = monitor(cfg, current=current, model=model, since=parse_window(window),
                          output_dir=output or kubecycle_home() / "monitoring" / stamp,
                          retrain=retrain, push_url=push_metrics, retrainer=retrainer)
    except KubecycleError as exc:
        fail(exc)
    drift = outcome.drift
    table = Table(title=f"kubecycle monitor: {'DRIFT' if drift.dataset_drift else 'healthy'}",
                  show_header=False)
    table.add_row("model", f"{outcome.model_name} v{outcome.model_version}")
    table.add_row("window rows", str(drift.rows))
    table.add_row("drifted columns", f"{len(drift.drifted_columns)}/{len(drift.columns)} "
                  f"{drift.drifted_columns}")
    if outcome.realized is not None and outcome.realized.latest is not None:
        latest = outcome.realized.latest
        table.add_row(f"realized {outcome.realized.metric}",
                      f"{latest.metrics[outcome.realized.metric]:.4f} on {latest.labelled} labels "
                      f"since {latest.start} (coverage {latest.coverage:.0%})")
    table.add_row("decision", outcome.decision.reason)
    if outcome.retrain_run_id:
        table.add_row("retraining run", outcome.retrain_run_id)
    table.add_row("summary", outcome.paths.get("summary.json", ""))
    out.print(table)
    raise typer.Exit(outcome.exit_code)


def deploy(
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
        cfg = load(config)
        target = None
        if action in ("render", "apply", "canary"):
            connect_tracking(tracking_uri)
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
        fail(exc)
    served = f"{result.target.model_name} v{result.target.model_version}" if result.target else "-"
    share = f" ({result.canary_share:.0f}% of the pods)" if result.canary_share else ""
    before = (f"; before: v{result.previous.model_version}" if result.previous else "")
    out.print(f"{result.action} in {result.namespace}: {served}{share}{before}", highlight=False)
    for name in result.objects:
        out.print(f"  {name}", highlight=False)
