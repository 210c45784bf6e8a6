"""The fork server that starts local tasks warm: real kfp.local runs through it, exit codes,
output, environment and working directory as a fresh interpreter would have them, and the
cold paths (switched off, other commands, server gone)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import kfp.local
import pytest
from kfp import dsl

from kubecycle.pipelines.local.forkserver import enabled, fork_server, tasks_started_by
from kubecycle.settings import FORKSERVER

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the fork server is Linux-only")


@dsl.component(install_kfp_package=False)
def describe_process(label: str) -> str:
    """What the task process looks like from inside."""
    import json
    import os
    import sys

    return json.dumps({"warm": "mlflow" in sys.modules, "label": label, "cwd": os.getcwd(),
                       "marker": os.environ.get("KUBECYCLE_TEST_MARKER"), "pid": os.getpid(),
                       "parent": os.getppid()})


@dsl.component(install_kfp_package=False)
def fail_task(message: str) -> str:
    raise ValueError(message)


@dsl.pipeline
def two_tasks() -> str:
    first = describe_process(label="first")
    return describe_process(label=first.output).output


@pytest.fixture
def local_runner(tmp_path):
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False),
                   pipeline_root=str(tmp_path / "kfp"), raise_on_error=True)


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv(FORKSERVER.name, "1")
    with fork_server(tmp_path / "forkserver.log") as launcher:
        assert launcher is not None, (tmp_path / "forkserver.log").read_text()
        yield launcher
    assert not Path(launcher).exists()  # its folder (socket, launcher) is removed


def test_tasks_run_warm_in_forks_with_the_callers_environment(local_runner, server, tmp_path,
                                                             monkeypatch, capsys):
    monkeypatch.setenv("KUBECYCLE_TEST_MARKER", "seen")
    monkeypatch.chdir(tmp_path)
    with tasks_started_by(server):
        outer = json.loads(two_tasks().output)
    assert sys.executable != server  # put back after the block
    inner = json.loads(outer["label"])
    for task in (inner, outer):
        assert task["warm"] and task["marker"] == "seen" and task["cwd"] == str(tmp_path)
    assert inner["pid"] != outer["pid"] and inner["parent"] == outer["parent"] != os.getpid()
    assert "Wrote executor output file" in capsys.readouterr().out  # the task's log streamed


def test_a_failing_task_fails_the_run_with_its_traceback(local_runner, server, capsys):
    with tasks_started_by(server), pytest.raises(RuntimeError, match="FAILURE"):
        fail_task(message="no such column 'x'")
    assert "ValueError: no such column 'x'" in capsys.readouterr().out


def test_exit_codes_output_and_stdin_pass_through_the_launcher(server, tmp_path):
    module = tmp_path / "ephemeral_component.py"
    module.write_text("import sys\ndef echo():\n    print(sys.stdin.read().upper())\n"
                      "    sys.stderr.write('to stderr\\n')\n    raise SystemExit(3)\n")
    done = subprocess.run(
        [server, "-m", "kfp.dsl.executor_main", "--component_module_path", str(module),
         "--function_to_execute", "echo", "--executor_input",
         json.dumps({"outputs": {"outputFile": str(tmp_path / "out.json")}})],
        input="hello", capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert "HELLO" in done.stdout and "to stderr" in done.stderr


def test_other_commands_run_on_the_real_interpreter(server):
    done = subprocess.run([server, "-c", "import sys; print('mlflow' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False"


def test_a_task_runs_cold_when_the_server_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv(FORKSERVER.name, "1")
    with fork_server(tmp_path / "forkserver.log") as launcher:
        script = Path(launcher).read_text()
    gone = tmp_path / "python"
    gone.write_text(script)  # the same launcher, its server stopped and socket removed
    gone.chmod(0o755)
    done = subprocess.run([str(gone), "-m", "kfp.dsl.executor_main", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "KFP Component Executor" in done.stdout


@pytest.mark.parametrize(("setting", "expected"), [("0", False), ("off", False), ("1", True),
                                                   ("", sys.platform == "linux")])
def test_switch(monkeypatch, setting, expected):
    monkeypatch.setenv(FORKSERVER.name, setting)
    assert enabled() is expected


def test_switched_off_means_no_server(tmp_path, monkeypatch):
    monkeypatch.setenv(FORKSERVER.name, "0")
    interpreter = sys.executable
    with fork_server(tmp_path / "forkserver.log") as launcher, tasks_started_by(launcher):
        assert launcher is None and sys.executable == interpreter
