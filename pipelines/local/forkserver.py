"""A fork server for local runs: tasks start warm instead of importing everything again.

kfp.local's SubprocessRunner starts a fresh `python -m kfp.dsl.executor_main` per task, and
each one spends 2-5 s importing pandas, scikit-learn, MLflow, Evidently or SHAP before doing
any work. During `kubecycle run`, one server process imports them once and forks a child per
task; the child takes over the task's stdin/stdout/stderr, environment and working directory,
runs kfp's executor exactly as the fresh interpreter would, and exits with its code.

Linux only by default (fork after these imports is not safe on macOS); KUBECYCLE_FORKSERVER=0
turns it off. The component code and the compiled pipeline are the same either way: only the way the
local runner starts its processes changes. If the server cannot start, tasks start cold.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import logging
import os
import runpy
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from kubecycle.pipelines.local.forkserver_client import HEADER, STATUS
from kubecycle.settings import FORKSERVER

# imported before the server answers: what nearly every task needs
PRELOAD = ("kfp.dsl.executor", "numpy", "pandas", "pyarrow.parquet", "sklearn.pipeline",
           "sklearn.compose", "sklearn.preprocessing", "sklearn.impute", "sklearn.metrics",
           "sklearn.model_selection", "sklearn.linear_model", "sklearn.ensemble", "mlflow",
           "mlflow.sklearn", "kubecycle.config", "kubecycle.artifacts", "kubecycle.tracking")
# imported between tasks while the server is idle: what one or two stages need
PRELOAD_LATER = ("optuna", "skops.io", "evidently.presets", "matplotlib.pyplot", "shap",
                 "skl2onnx", "kubecycle.reference")
# never preloaded: onnxruntime starts threads at import that a forked child lacks
POLL_SECONDS = 0.05
MAX_SOCKET_PATH = 100
START_TIMEOUT_SECONDS = 10.0
RECEIVE_TIMEOUT_SECONDS = 10.0


def enabled() -> bool:
    """On by default on Linux; KUBECYCLE_FORKSERVER overrides."""
    setting = FORKSERVER.get()
    return sys.platform == "linux" if setting is None else setting


def _preload(module: str) -> None:
    """Import a module; one that fails is left to the task (which reports it as usual)."""
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    """A client's request and the file descriptors (stdin, stdout, stderr) sent with it."""
    header, fds, _, _ = socket.recv_fds(connection, HEADER.size, 3)
    if len(header) != HEADER.size or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise OSError("incomplete request")
    size, data = HEADER.unpack(header)[0], b""
    while len(data) < size:
        chunk = connection.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise OSError("request cut short")
        data += chunk
    return json.loads(data), fds


def _run_task(request: dict, fds: list[int]) -> int:
    """In the forked child: become the task's interpreter and run kfp's executor."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # TMPDIR is the task's
    logging.root.handlers.clear()  # kfp's executor configures logging as in a fresh process
    if "numpy" in sys.modules:  # a fresh process seeds the global RNG from the OS
        sys.modules["numpy"].random.seed()
    sys.argv = ["-m", *request["args"]]
    try:
        runpy.run_module("kfp.dsl.executor_main", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:  # reported as the interpreter would, then exit 1
        traceback.print_exc()
        return 1
    return 0


def _exit_code(status: int) -> int:
    """As a shell reports it: the exit status, or 128 + the signal that ended the task."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def serve(address: str) -> int | None:
    """Accept tasks on a Unix socket until stdin closes (the parent's signal to stop).

    Returns None in the server when it stops, and the task's exit code in a forked child
    (which main() then ends with _leave).
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    for module in PRELOAD:
        _preload(module)
    later = list(PRELOAD_LATER)
    waiting: dict[int, socket.socket] = {}  # child pid -> the client waiting for its code
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    while True:
        events = selector.select(timeout=POLL_SECONDS)
        for key, _ in events:
            if key.fileobj is sys.stdin:
                for connection in waiting.values():
                    connection.close()
                return None
            connection, _ = listener.accept()
            connection.settimeout(RECEIVE_TIMEOUT_SECONDS)  # a silent client cannot stall it
            try:
                request, fds = _receive(connection)
            except (OSError, ValueError):
                connection.close()
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                selector.close()
                listener.close()
                connection.close()
                for other in waiting.values():
                    other.close()
                return _run_task(request, fds)
            for fd in fds:
                os.close(fd)
            waiting[pid] = connection
        _report_finished(waiting)
        if later and not events:
            _preload(later.pop(0))


def _report_finished(waiting: dict[int, socket.socket]) -> None:
    """Send each finished child's exit code to its client."""
    for pid in list(waiting):
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            connection = waiting.pop(pid)
            with contextlib.suppress(OSError):
                connection.sendall(STATUS.pack(_exit_code(status)))
            connection.close()


@contextlib.contextmanager
def fork_server(log_path: Path) -> Iterator[str | None]:
    """Start the fork server and yield the interpreter stand-in that hands tasks to it.

    Yields None if the server is off or could not start. Its own output (import warnings) goes
    to log_path.
    """
    if not enabled():
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="kubecycle-fork-"))
    try:
        with _server(folder, log_path) as launcher:
            yield launcher
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def tasks_started_by(launcher: str | None) -> Iterator[None]:
    """Point `sys.executable` at the launcher for the block.

    kfp.local (use_venv=False) starts every task with `sys.executable`.
    """
    real_python = sys.executable
    if launcher:
        sys.executable = launcher
    try:
        yield
    finally:
        sys.executable = real_python


@contextlib.contextmanager
def _server(folder: Path, log_path: Path) -> Iterator[str | None]:
    from kubecycle.pipelines.local import forkserver_client

    address, launcher, real_python = str(folder / "s.sock"), folder / "python", sys.executable
    if len(address) > MAX_SOCKET_PATH or shlex.quote(str(launcher)) != str(launcher):
        yield None  # a Unix socket path is short; kfp pastes the interpreter path unquoted
        return
    launcher.write_text("#!/bin/sh\nexec " + shlex.join(
        [real_python, "-I", "-S", forkserver_client.__file__, real_python, address]) + ' "$@"\n')
    launcher.chmod(0o755)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [real_python, "-m", "kubecycle.pipelines.local.forkserver", address],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "_KFP_RUNTIME": "true"})
    try:
        yield str(launcher) if _listening(address, server) else None
    finally:
        _stop(server)


def _listening(address: str, server: subprocess.Popen) -> bool:
    """Wait until the server's socket exists (it binds before preloading)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        if os.path.exists(address):
            return True
        time.sleep(0.01)
    return False


def _stop(server: subprocess.Popen) -> None:
    """Close the server's stdin (it returns) and wait; kill it if it does not."""
    with contextlib.suppress(OSError):
        server.stdin.close()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _leave(code: int) -> None:
    """End a task's child as the interpreter would, but without C-level exit handlers.

    Threads are joined, atexit handlers run and output is flushed; C-level exit handlers are
    skipped because libraries' static destructors expect threads the parent had and the child
    does not, and can hang.
    """
    shutdown_threads = getattr(threading, "_shutdown", None)  # what interpreter exit calls
    if shutdown_threads is not None:
        shutdown_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main() -> None:
    """Serve tasks on the socket given as the first argument; a forked task's child exits here."""
    code = serve(sys.argv[1])
    if code is not None:  # a task's child
        _leave(code)


if __name__ == "__main__":
    main()
