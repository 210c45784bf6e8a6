"""Running the training pipeline locally (kfp.local) and compiling it for a cluster."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kubecycle.config import KubecycleConfig
from kubecycle.errors import PipelineRunError
from kubecycle.settings import (
    BENTOML_HOME,
    HOME,
    MLFLOW_DISABLE_TELEMETRY,
    TMPDIR,
    TUNE_THREADS,
    kubecycle_home,
)

if TYPE_CHECKING:
    from kubecycle.monitoring.window import LabelledWindow

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TASK_STARTED = re.compile(r"Executing task '([^']+)'")
TASK_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
ERROR_LINE = re.compile(r"^\s*(kubecycle\.errors\.(\w+)|[A-Za-z_.]*(?:Error|Exception)): (.+)$")

ProgressCallback = Callable[[str, str], None]  # (task name, "started" | "SUCCESS" | "FAILURE")


class _TaskLog(io.TextIOBase):
    """Stands in for stdout while kfp.local runs.

    It keeps the log, reports task progress, and remembers the last error line printed by a
    failing task.
    """

    def __init__(self, log: io.TextIOBase, on_progress: ProgressCallback | None) -> None:
        self.log, self.on_progress = log, on_progress
        self.last_error: str | None = None
        self.kubecycle_error: str | None = None
        self._pending = ""

    def write(self, text: str) -> int:
        self.log.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._scan(ANSI.sub("", line))
        return len(text)

    def _scan(self, line: str) -> None:
        if self.on_progress and (started := TASK_STARTED.search(line)):
            self.on_progress(started.group(1), "started")
        elif self.on_progress and (finished := TASK_FINISHED.search(line)):
            self.on_progress(finished.group(1), finished.group(2))
        elif match := ERROR_LINE.match(line):
            self.last_error = f"{match.group(3).strip()}"
            if match.group(2):
                self.kubecycle_error = self.last_error

    def flush(self) -> None:
        self.log.flush()


@contextlib.contextmanager
def _tracking(tracking_uri: str | None, home: Path) -> Iterator[tuple[str, str]]:
    """Yield (URI the tasks use, URI to report) for the run's MLflow tracking server.

    The server is the given one, or a local server over KUBECYCLE_HOME's SQLite store
    (reported as that store, which outlives the server).
    """
    from kubecycle.tracking import check_reachable, local_server, local_store_uri

    if tracking_uri:
        check_reachable(tracking_uri)
        yield tracking_uri, tracking_uri
        return
    with local_server(home) as url:
        yield url, local_store_uri(home)


@contextlib.contextmanager
def _scratch(home: Path) -> Iterator[Path]:
    """A private TMPDIR under KUBECYCLE_HOME for the run, removed afterwards.

    kfp.local and each task's launcher leave folders in the temp dir otherwise.
    """
    folder = home / "tmp" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    before_env, before_tempdir = TMPDIR.get(), tempfile.tempdir
    os.environ[TMPDIR.name], tempfile.tempdir = str(folder), str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = before_tempdir
        if before_env is None:
            os.environ.pop(TMPDIR.name, None)
        else:
            os.environ[TMPDIR.name] = before_env
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _isolated(environment: dict[str, str]) -> Iterator[None]:
    """Set the tasks' environment for the run, and undo what kfp.local leaves behind.

    kfp.local swaps builtins.print and the root logger's handlers per task, not thread-safely
    under ParallelFor, so they can outlive the run (and write to its closed log).
    """
    import builtins
    import logging

    saved_env = {key: os.environ.get(key) for key in environment}
    saved_print, root = builtins.print, logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    os.environ.update(environment)
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        builtins.print = saved_print
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def _publish(summary: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """Copy the HTML reports next to summary.json and point the summary at the copies."""
    reports = {}
    for name, source in summary["reports"].items():
        target = output_dir / "reports" / f"{name}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        reports[name] = str(target)
    return {**summary, "reports": reports}


def default_output_dir(home: Path) -> Path:
    """A new run folder under home/runs/, named by the current UTC time."""
    return home / "runs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def run_local(
    cfg: KubecycleConfig,
    output_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    on_progress: ProgressCallback | None = None,
    in_containers: bool = False,
    labelled: LabelledWindow | None = None,
) -> dict[str, Any]:
    """Run the training pipeline on this machine.

    The tasks run on kfp's local SubprocessRunner, or each in the components image (kfp's
    DockerRunner, see kubecycle.pipelines.local.containers).

    Args:
        cfg: the validated config.
        output_dir: where summary.json, reports/ and pipeline.log go (default under
            KUBECYCLE_HOME/runs/).
        tracking_uri: an MLflow server; default: a local server over KUBECYCLE_HOME.
        on_progress: called with (task, state) as tasks start and finish.
        in_containers: run every task in the components image (Docker or podman's API at
            DOCKER_HOST), as the KFP launcher does on a cluster.
        labelled: labelled rows of a monitored window to add to the training data.

    Returns:
        The summary (also written to output_dir/summary.json).
    """
    import kfp.local

    from kubecycle.artifacts import write_json
    from kubecycle.pipelines.training import labelled_arguments

    home = kubecycle_home()
    output = Path(output_dir or cfg.output_dir or default_output_dir(home)).resolve()
    output.mkdir(parents=True, exist_ok=True)
    task_environment = _task_environment(cfg, home)
    started = time.monotonic()
    # the fork server imports the heavy libraries while the tracking server starts
    pipeline_root = home / "kfp"
    with _isolated(task_environment), _task_starter(in_containers, home) as launcher, \
            _tracking(tracking_uri, home) as (task_uri, report_uri), _scratch(home), \
            (output / "pipeline.log").open("w") as log:
        kfp.local.init(runner=_runner(cfg, in_containers, pipeline_root, task_environment),
                       pipeline_root=str(pipeline_root), raise_on_error=True)
        arguments = {"config": cfg.to_json(), "tracking_uri": task_uri,
                     "run_name": f"{output.name}-{uuid.uuid4().hex[:8]}",  # finds our run
                     **labelled_arguments(labelled)}
        summary = _run_tasks(cfg, arguments, launcher, _TaskLog(log, on_progress),
                             output / "pipeline.log")
    summary = {**_publish(summary, output), "tracking_uri": report_uri,
               "duration_seconds": round(time.monotonic() - started, 1),
               "output_dir": str(output)}
    write_json(output / "summary.json", summary)
    return summary


def _task_environment(cfg: KubecycleConfig, home: Path) -> dict[str, str]:
    """The environment every task of a local run gets."""
    return {
        HOME.name: str(home),
        BENTOML_HOME.name: BENTOML_HOME.get() or str(home / "bentoml"),
        MLFLOW_DISABLE_TELEMETRY.name: "true",
        # parallel tune tasks each get a share of the cores (OpenMP in HistGradientBoosting
        # spins badly when oversubscribed); the other stages keep all of them
        TUNE_THREADS.name: str(max(1, (os.cpu_count() or 1) // cfg.tuning.parallelism)),
    }


def _run_tasks(cfg: KubecycleConfig, arguments: dict[str, str], launcher: str | None,
               tee: _TaskLog, log_path: Path) -> dict[str, Any]:
    """Run the training pipeline's tasks on the initialised kfp.local runner.

    Returns:
        The summary the last task wrote.

    Raises:
        PipelineRunError: a task failed (its kubecycle error, else its last error line); the
            parent MLflow run is marked FAILED.
    """
    from kubecycle.artifacts import read_json
    from kubecycle.pipelines.local.forkserver import tasks_started_by
    from kubecycle.pipelines.training import build_training_pipeline

    pipeline = build_training_pipeline(cfg)
    try:
        with contextlib.redirect_stdout(tee), warnings.catch_warnings(), \
                tasks_started_by(launcher):
            # kfp.local warns that the cluster image and resource requests do not apply
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            result = pipeline(**arguments)
    except RuntimeError as exc:
        reason = tee.kubecycle_error or tee.last_error or ANSI.sub("", str(exc))
        _mark_failed(arguments["tracking_uri"], cfg.mlflow.experiment, arguments["run_name"])
        raise PipelineRunError(f"{reason} (full log: {log_path})") from None
    return read_json(result.output.path)


@contextlib.contextmanager
def _task_starter(in_containers: bool, home: Path) -> Iterator[str | None]:
    """Yield the fork server's launcher for subprocess tasks (warm imports), or None for containers.

    Containers start on their own, and the folders kfp makes for their outputs must be
    writable by the task user.
    """
    from kubecycle.pipelines.local.containers import open_umask, waited_containers
    from kubecycle.pipelines.local.forkserver import fork_server

    if in_containers:
        with waited_containers(), open_umask():
            yield None
    else:
        with fork_server(home / "forkserver.log") as launcher:
            yield launcher


def _runner(cfg: KubecycleConfig, in_containers: bool, pipeline_root: Path,
            task_environment: dict[str, str]) -> Any:
    """The kfp runner: a SubprocessRunner in this interpreter, or a DockerRunner of the components image."""
    import kfp.local

    if not in_containers:
        return kfp.local.SubprocessRunner(use_venv=False)
    from kubecycle.pipelines.local.containers import container_runner, host_mounts

    pipeline_root.mkdir(parents=True, exist_ok=True)
    pipeline_root.chmod(0o777)
    forwarded = {k: v for k, v in os.environ.items()
                 if k.startswith("AWS_") or k == "MLFLOW_S3_ENDPOINT_URL"}
    environment = {**forwarded, MLFLOW_DISABLE_TELEMETRY.name: "true",
                   TUNE_THREADS.name: task_environment[TUNE_THREADS.name]}
    # a local tracking server stores artifacts by path (file://), written by the tasks
    artifacts = pipeline_root.parent / "mlflow" / "artifacts"
    return container_runner(host_mounts(cfg, (artifacts,)), environment)


def _mark_failed(tracking_uri: str, experiment: str, run_name: str) -> None:
    """Mark this invocation's parent run FAILED if it was opened.

    Best effort: the run's own error is what the user needs to see.
    """
    with contextlib.suppress(Exception):
        import mlflow

        from kubecycle.registry import PARENT_RUN_TAG

        client = mlflow.MlflowClient(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id] if found else [],
                                  f"tags.`{PARENT_RUN_TAG}` = 'true' and "
                                  f"attributes.run_name = '{run_name}'")
        for run in runs:
            client.set_terminated(run.info.run_id, "FAILED")


PipelineName = Literal["training", "scoring"]


def compile_pipeline(cfg: KubecycleConfig, output_path: str | Path,
                     tracking_uri: str = "http://kubecycle-mlflow.mlops:5000",
                     pipeline: PipelineName = "training") -> Path:
    """Compile the training (or batch scoring) pipeline to KFP IR YAML, the config baked in."""
    from kfp import compiler

    if pipeline == "scoring":
        from kubecycle.pipelines.scoring import build_scoring_pipeline as build
    else:
        from kubecycle.pipelines.training import build_training_pipeline as build

    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(
        build(cfg), str(output_path),
        pipeline_parameters={"config": cfg.to_json(), "tracking_uri": tracking_uri})
    return output_path
