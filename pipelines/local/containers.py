"""Run pipeline tasks in the components image, as the KFP launcher runs them on a cluster.

kfp's DockerRunner starts one container per task with the task's compiled command and args;
it talks to Docker, or to podman's Docker-compatible API (`podman system service`,
DOCKER_HOST=unix:///path.sock). Each task runs as the chart runs kubecycle's pods: uid 10001,
read-only root filesystem, every capability dropped, no privilege escalation, a writable /tmp
only, on the host's network (so a tracking server on 127.0.0.1 answers).
"""

from __future__ import annotations

import codecs
import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kubecycle.config import KubecycleConfig, SqlSource

TASK_USER = "10001:10001"
TMP_SIZE = "4g"


def host_mounts(cfg: KubecycleConfig, writable: tuple[Path, ...] = ()) -> list[Any]:
    """Mounts of the host folders a task names by host path besides the pipeline root.

    kfp mounts the pipeline root itself. These are the folders of the data file and of a
    pre-trained model file (read-only), a local bento store (exports land there) and the
    `writable` folders (e.g. the artifacts of a local tracking store, written by path).
    """
    from docker.types import Mount

    store = cfg.deploy.bento_store
    local_store = (Path(store),) if store and "://" not in store else ()
    mounts = []
    for folder in (*writable, *local_store):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o777)  # the task user writes there
        mounts.append(Mount(str(folder.resolve()), str(folder.resolve()), type="bind"))
    read = [] if isinstance(cfg.data.source, SqlSource) else [cfg.data.source]
    read += [cfg.models.pretrained] if cfg.models.pretrained else []
    # a missing folder is not mounted: the task that reads it reports the missing file
    folders = {str(Path(path).resolve().parent) for path in read if ":/" not in path}
    folders = {folder for folder in folders if Path(folder).is_dir()}
    mounts += [Mount(folder, folder, type="bind", read_only=True) for folder in sorted(folders)]
    return mounts


def container_runner(mounts: list[Any], environment: dict[str, str]) -> Any:
    """A kfp DockerRunner that starts tasks like the chart's pods (see the module doc)."""
    from kfp import local

    return local.DockerRunner(
        user=TASK_USER, read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        tmpfs={"/tmp": f"rw,size={TMP_SIZE},mode=1777"}, network_mode="host",
        environment=environment, mounts=mounts)


def _run_and_wait(client: Any, image: str, command: list[str], volumes: dict[str, Any],
                  **run_args: Any) -> int:
    """Start a task container, stream its log, return its real exit code, then remove it."""
    from kfp.local.docker_task_handler import add_latest_tag_if_not_present

    run_args.pop("auto_remove", None)
    container = client.containers.run(image=add_latest_tag_if_not_present(image), command=command,
                                      detach=True, stdout=True, stderr=True, volumes=volumes,
                                      **run_args)
    try:
        for line in whole_lines(container.logs(stream=True, follow=True)):
            print(line, end="")
        return int(container.wait()["StatusCode"])
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def whole_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The text of a log stream, line by line.

    The stream yields one chunk per write of the task, and a traceback is written in pieces
    (module, dot, class name); kfp indents every print, so printing chunks put runs of spaces
    inside lines (`kubecycle.errors.    DataValidationError`).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        yield from (f"{line}\n" for line in lines)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


@contextlib.contextmanager
def waited_containers() -> Iterator[None]:
    """Keep task containers until their exit code is read, within this block.

    kfp 2.17's DockerRunner starts task containers with auto-remove and reads a container
    already gone at wait time as exit code 0; podman removes it at once, so a task that failed
    was reported SUCCESS.
    """
    from kfp.local import docker_task_handler

    original = docker_task_handler.run_docker_container
    docker_task_handler.run_docker_container = _run_and_wait
    try:
        yield
    finally:
        docker_task_handler.run_docker_container = original


@contextlib.contextmanager
def open_umask() -> Iterator[None]:
    """Folders kfp creates on the host for task outputs must be writable by the task user."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)
