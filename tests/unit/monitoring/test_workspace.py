"""An Evidently workspace under an S3 URI (moto's server as the stand-in): passes add runs to
one project, snapshots are never downloaded again, and a failed pass uploads nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pandas as pd
import pytest

from kubecycle.monitoring.workspace import WorkspaceRun, local_workspace, save_to_workspace


def _snapshot(shift: float):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.DataFrame({"x": [float(i % 10) for i in range(200)]})
    return Report([DataDriftPreset()]).run(reference_data=reference,
                                           current_data=reference + shift)


def _keys(bucket: str, prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_passes_add_runs_to_one_project_under_the_uri(s3_bucket, tmp_path):
    from evidently.ui.workspace import Workspace

    uri = f"{s3_bucket}/monitoring/workspace"
    first = datetime(2026, 11, 24, tzinfo=UTC)
    ids = [save_to_workspace(_snapshot(shift), WorkspaceRun(uri, "churn monitoring",
                                                            first + timedelta(days=day), {}))
           for day, shift in enumerate((0.0, 5.0))]
    keys = _keys("kubecycle-test", "monitoring/workspace/")
    assert sum(k.endswith("/metadata.json") for k in keys) == 1  # one project
    assert sorted(k.rsplit("/", 1)[1] for k in keys if "/snapshots/" in k) == sorted(
        f"{i}.json" for i in ids)
    copy = tmp_path / "copy"  # what `evidently ui` would read: the objects as files
    for key in keys:
        target = copy / key.removeprefix("monitoring/workspace/")
        target.parent.mkdir(parents=True, exist_ok=True)
        boto3.client("s3").download_file("kubecycle-test", key, str(target))
    workspace = Workspace(str(copy))
    [project] = workspace.search_project("churn monitoring")
    assert sorted(map(str, workspace.list_runs(project.id))) == sorted(ids)


def test_snapshots_stay_in_the_store_and_a_failed_pass_uploads_nothing(s3_bucket):
    uri = f"{s3_bucket}/ws"
    save_to_workspace(_snapshot(0.0), WorkspaceRun(uri, "p", datetime(2026, 11, 24, tzinfo=UTC), {}))
    before = _keys("kubecycle-test", "ws/")
    with local_workspace(uri) as folder:
        from pathlib import Path

        local = sorted(p.name for p in Path(folder).rglob("*") if p.is_file())
    assert local == ["metadata.json"]  # the project metadata only, never the snapshots
    with pytest.raises(RuntimeError), local_workspace(uri) as folder:
        (Path(folder) / "half-written.json").write_text("{")
        raise RuntimeError("the pass failed")
    assert _keys("kubecycle-test", "ws/") == before


def test_a_local_folder_is_used_as_it_is_and_a_file_uri_like_a_store(tmp_path):
    with local_workspace(str(tmp_path / "ws")) as folder:
        assert folder == str(tmp_path / "ws")
    assert (tmp_path / "ws").is_dir()
    run = WorkspaceRun(f"file://{tmp_path}/uri-ws", "p", datetime(2026, 11, 24, tzinfo=UTC), {})
    snapshot = save_to_workspace(_snapshot(0.0), run)
    assert list((tmp_path / "uri-ws").glob(f"*/snapshots/{snapshot}.json"))
