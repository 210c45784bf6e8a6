"""An Evidently workspace in a local folder or under an object-store URI (s3://, gs://).

Evidently's local workspace is a file layout: `<project>/metadata.json`, its dashboard, and one
`<project>/snapshots/<id>.json` per run. For a URI, a pass works on a temporary copy of the
metadata (never the snapshots, which grow with every pass), then uploads what it wrote: the
new snapshot first, then changed metadata, each object whole. Arrow's filesystems do the
transfers, with the credentials Arrow finds (AWS_*, GOOGLE_APPLICATION_CREDENTIALS).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SNAPSHOTS = "snapshots"  # Evidently's folder of runs inside a project folder


@dataclass(frozen=True)
class WorkspaceRun:
    """Where a report also goes: an Evidently workspace (folder or URI), its project, the run's tags."""

    folder: str
    project: str
    timestamp: datetime
    tags: dict[str, str]


def _is_uri(location: str) -> bool:
    return "://" in location  # file:// too: Arrow's local filesystem, like any store


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def local_workspace(location: str) -> Iterator[str]:
    """A local folder for the workspace at `location`, written back to it on success.

    A local path is used as it is. For a URI the project metadata is downloaded to a
    temporary folder, and whatever the block added or changed is uploaded when it ends
    without an error (snapshots before metadata); nothing is uploaded after an error.
    """
    if not _is_uri(location):
        Path(location).mkdir(parents=True, exist_ok=True)
        yield location
        return
    from pyarrow import fs

    filesystem, base = fs.FileSystem.from_uri(location)
    base = base.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="kubecycle-workspace-") as temporary:
        local = Path(temporary)
        found = filesystem.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
        for info in found:
            relative = info.path[len(base):].lstrip("/")
            if info.type != fs.FileType.File or f"/{SNAPSHOTS}/" in f"/{relative}":
                continue
            (local / relative).parent.mkdir(parents=True, exist_ok=True)
            with filesystem.open_input_stream(info.path) as source:
                (local / relative).write_bytes(source.read())
        before = {p: _digest(p) for p in local.rglob("*") if p.is_file()}
        yield temporary
        written = [p for p in local.rglob("*") if p.is_file() and before.get(p) != _digest(p)]
        for path in sorted(written, key=lambda p: SNAPSHOTS not in p.parts):  # snapshots first
            target = f"{base}/{path.relative_to(local).as_posix()}"
            if isinstance(filesystem, fs.LocalFileSystem):  # stores need no folders
                filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with filesystem.open_output_stream(target) as sink:
                sink.write(path.read_bytes())


def save_to_workspace(snapshot, run: WorkspaceRun) -> str:
    """Add the snapshot to the workspace's project (created when missing); return its id.

    `evidently ui --workspace FOLDER` then shows every pass's drift over time (for a URI:
    the same command with s3fs or gcsfs installed, or on a copy of the URI's objects).
    """
    from evidently.ui.workspace import Workspace

    with local_workspace(run.folder) as folder:
        workspace = Workspace(folder)
        found = workspace.search_project(run.project)
        project = found[0] if found else workspace.create_project(
            run.project, description="kubecycle monitoring passes")
        return str(workspace.add_run(project.id, snapshot, include_data=False).id)
