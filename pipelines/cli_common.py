"""What every `kubecycle` command shares: consoles, options, config loading, errors, MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kubecycle.errors import KubecycleError

err = Console(stderr=True)
out = Console()

ConfigArg = Annotated[Path | None, typer.Argument(
    help="YAML config; default: the shipped Palmer penguins demo")]
ModelOption = Annotated[str, typer.Option(
    "--model", help="NAME@ALIAS or NAME/VERSION (default: the config's model @champion)")]
TrackingOption = Annotated[str | None, typer.Option(
    help="MLflow server; default: the local store under KUBECYCLE_HOME")]


def load(config: Path | None):
    """The config file's settings, or the shipped penguins demo's without one."""
    from kubecycle.config import load_config
    from kubecycle.examples import DEMO_CONFIG

    return load_config(config or DEMO_CONFIG)


def fail(exc: KubecycleError) -> None:
    """Print the error as one line and exit with its code."""
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def connect_tracking(tracking_uri: str | None) -> str | None:
    """Connect to the given or environment's MLflow, else the local store; return the given."""
    from kubecycle.settings import kubecycle_home, tracking_uri_from_env
    from kubecycle.tracking import connect, local_store_uri

    uri = tracking_uri or tracking_uri_from_env()
    connect(uri or local_store_uri(kubecycle_home()))
    return uri
