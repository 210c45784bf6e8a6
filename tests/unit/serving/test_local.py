"""`kubecycle serve` becomes `bentoml serve`: a signal to it alone stops the server, which
writes every row it answered, and nothing is left running, even when it is killed."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import requests

from kubecycle.errors import DataSourceError
from kubecycle.monitoring.window import read_window
from kubecycle.serving.local import serve_command
from kubecycle.tracking import free_port

PREDICTIONS = 300
# what `kubecycle serve` runs once it has resolved the bento (that part needs a registry)
SERVE = "import sys; from kubecycle.serving.local import serve; " \
        "serve(sys.argv[1], int(sys.argv[2]), '127.0.0.1', sys.argv[3])"


def test_serve_command_runs_bentoml_with_an_absolute_folder_or_a_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command, env = serve_command("penguins:abc", 3100, "0.0.0.0", "logs")
    assert command[1:] == ["serve", "penguins:abc", "--host", "0.0.0.0", "--port", "3100"]
    assert Path(command[0]).name == "bentoml"
    assert env["KUBECYCLE_INFERENCE_LOG"] == str(tmp_path / "logs")  # workers run elsewhere
    assert env["BENTOML_HOME"] == os.environ["BENTOML_HOME"]
    _, env = serve_command("penguins:abc", inference_log="s3://bucket/log")
    assert env["KUBECYCLE_INFERENCE_LOG"] == "s3://bucket/log"
    _, env = serve_command("penguins:abc")
    assert env["KUBECYCLE_INFERENCE_LOG"] == str(Path(os.environ["KUBECYCLE_HOME"]) / "inference-log")


def _rows(sink: str) -> int:
    try:
        return sum(len(chunk) for chunk in read_window(sink))
    except DataSourceError:  # nothing written
        return 0


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "where"), [(signal.SIGTERM, "s3"), (signal.SIGINT, "folder"),
                                             (signal.SIGKILL, "folder")],
                         ids=["SIGTERM-s3", "SIGINT-folder", "SIGKILL-folder"])
def test_a_signal_to_serve_alone_stops_the_server_which_writes_every_row(
        penguins_bento, servers, tmp_path, stop, where, request):
    sink = str(tmp_path / "log") if where == "folder" else \
        f"{request.getfixturevalue('s3_bucket')}/serving/log"
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(penguins_bento["store"]),
           "KUBECYCLE_INFERENCE_LOG_FLUSH_SECONDS": "3600"}  # only the shutdown writes
    parent = servers.start([sys.executable, "-c", SERVE, penguins_bento["tag"], str(port), sink],
                           env, port, tmp_path, tmp_path / "serve.log")
    members = servers.process_tree(parent.pid)
    with requests.Session() as session:
        for _ in range(PREDICTIONS):
            answer = session.post(f"http://127.0.0.1:{port}/predict",
                                  json={"record": penguins_bento["record"]}, timeout=30)
            assert answer.status_code == 200, answer.text

    os.kill(parent.pid, stop)  # the process alone, not its group
    parent.wait(timeout=60)
    assert servers.wait_gone(members) == set()
    assert not servers.port_open(port)
    assert _rows(sink) == PREDICTIONS
