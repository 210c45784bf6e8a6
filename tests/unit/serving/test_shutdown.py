"""A stopped server writes every row it answered before it exits, and leaves no process
behind: SIGTERM to its process group (a pod's rollout, scale-down or drain), SIGKILL of
BentoML's arbiter (its workers stop with it), and a sink that hangs (the shutdown goes on)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from kubecycle.errors import DataSourceError
from kubecycle.monitoring.window import read_window
from kubecycle.tracking import free_port

PREDICTIONS = 300


def predict(port: int, record: dict, count: int = PREDICTIONS) -> None:
    """Send `count` single-record predictions; each must be answered."""
    with requests.Session() as session:
        for _ in range(count):
            answer = session.post(f"http://127.0.0.1:{port}/predict", json={"record": record},
                                  timeout=30)
            assert answer.status_code == 200, answer.text


def logged_rows(sink: str) -> int:
    """Rows in the inference log (0 when nothing was written)."""
    try:
        return sum(len(chunk) for chunk in read_window(sink))
    except DataSourceError:
        return 0


def _start(servers, bento: dict, sink: str, folder: Path, **extra: str
           ) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(bento["store"]), "KUBECYCLE_INFERENCE_LOG": sink,
           "KUBECYCLE_INFERENCE_LOG_FLUSH_SECONDS": "3600",  # only the shutdown writes
           "KUBECYCLE_WORKERS": "2", **extra}
    command = [str(Path(sys.executable).parent / "bentoml"), "serve", bento["tag"],
               "--host", "127.0.0.1", "--port", str(port)]
    return servers.start(command, env, port, folder, folder / "serve.log"), port


@pytest.mark.slow
@pytest.mark.parametrize("where", ["folder", "s3"])
def test_sigterm_to_the_process_group_writes_every_answered_row(
        penguins_bento, servers, tmp_path, where, request):
    sink = str(tmp_path / "log") if where == "folder" else \
        f"{request.getfixturevalue('s3_bucket')}/serving/inference-log"
    server, port = _start(servers, penguins_bento, sink, tmp_path)
    members = servers.process_tree(server.pid)
    assert len(members) >= 3  # the arbiter and its two workers
    predict(port, penguins_bento["record"])
    assert logged_rows(sink) == 0  # still buffered

    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
    assert servers.wait_gone(members) == set()
    assert not servers.port_open(port)
    assert logged_rows(sink) == PREDICTIONS


@pytest.mark.slow
def test_workers_stop_and_write_their_rows_when_the_arbiter_is_killed(
        penguins_bento, servers, tmp_path):
    sink = str(tmp_path / "log")
    server, port = _start(servers, penguins_bento, sink, tmp_path)
    workers = servers.process_tree(server.pid) - {server.pid}
    predict(port, penguins_bento["record"])

    server.kill()  # SIGKILL: BentoML's arbiter cannot stop its workers itself
    server.wait(timeout=30)
    assert servers.wait_gone(workers) == set()  # the kernel told them (SIGTERM)
    assert not servers.port_open(port)
    assert logged_rows(sink) == PREDICTIONS


def _silent_endpoint() -> tuple[socket.socket, threading.Event]:
    """A TCP endpoint that accepts connections and never answers (a hung object store)."""
    listener = socket.create_server(("127.0.0.1", 0))
    done, held = threading.Event(), []

    def accept() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue
        for connection in held:
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener, done


@pytest.mark.slow
def test_a_hanging_object_store_does_not_hold_up_the_shutdown(penguins_bento, servers, tmp_path):
    listener, done = _silent_endpoint()
    try:
        server, port = _start(
            servers, penguins_bento, "s3://kubecycle-test/log", tmp_path,
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{listener.getsockname()[1]}",
            AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1", KUBECYCLE_INFERENCE_LOG_SHUTDOWN_SECONDS="2")
        members = servers.process_tree(server.pid)
        predict(port, penguins_bento["record"], 20)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=90)  # the final flush gave up: the server stopped
        assert servers.wait_gone(members) == set()
        assert "rows dropped, not written to s3://kubecycle-test/log" in \
            (tmp_path / "serve.log").read_text()
    finally:
        done.set()
        listener.close()
