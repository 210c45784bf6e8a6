"""MLflow plumbing: connecting with clear errors, and a local tracking server for runs."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from kubecycle.errors import TrackingError
from kubecycle.settings import MLFLOW_DISABLE_TELEMETRY, MLFLOW_SERVER_ENABLE_JOB_EXECUTION


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail with a clear message when an HTTP tracking server does not answer."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    try:
        response = requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=timeout)
    except requests.RequestException as exc:
        raise TrackingError(
            f"MLflow tracking server {tracking_uri} is unreachable ({type(exc).__name__}); "
            "start it, fix --tracking-uri, or omit it to use the local store"
        ) from None
    if response.status_code >= 400:
        raise TrackingError(
            f"MLflow tracking server {tracking_uri} answered HTTP {response.status_code} on "
            "/health; check the URL and the server's --allowed-hosts"
        )


def connect(tracking_uri: str) -> None:
    """Point the mlflow client at tracking_uri (registry included)."""
    import mlflow

    check_reachable(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_store_uri(home: Path) -> str:
    """The SQLite store of a local KUBECYCLE_HOME, readable without a server afterwards."""
    return f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"


@contextlib.contextmanager
def local_server(home: Path, startup_timeout: float = 90.0) -> Iterator[str]:
    """Run `mlflow server` on 127.0.0.1 over the local store; yield its URL; stop it after.

    A server (one worker, job runner off) serialises the writes of parallel tasks, which a
    SQLite file used directly by several processes does not.
    """
    store = home / "mlflow"
    (store / "artifacts").mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION.name: "false",
           MLFLOW_DISABLE_TELEMETRY.name: "true"}
    log = (store / "server.log").open("ab")
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", local_store_uri(home),
        "--default-artifact-root", (store / "artifacts").as_uri(),
        "--no-serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise TrackingError(
                    f"the local MLflow server exited with code {process.returncode}; "
                    f"see {store / 'server.log'}"
                )
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TrackingError(
                    f"the local MLflow server did not start in {startup_timeout:.0f}s; "
                    f"see {store / 'server.log'}"
                )
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
