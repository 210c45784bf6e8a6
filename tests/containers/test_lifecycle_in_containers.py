"""The lifecycle on the real images: MLflow as the chart starts it (PostgreSQL backend), the
training pipeline with every task in the components image (kfp's DockerRunner through the
engine's Docker API), the bento exported to an S3 API stand-in, then imported and served by
the serving image with the chart's init container and server command."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
import sqlalchemy

from kubecycle.config import load_config
from kubecycle.errors import PipelineRunError
from kubecycle.examples import EXAMPLES_DIR
from kubecycle.tracking import free_port

from .conftest import RELEASE
from .pod import PodRunner, pod_spec, wait_http
from .test_mlflow_image import (
    PROBE,
    assert_restricted,
    check_probe,
    mlflow_values,
    prepare_database,
    start_mlflow,
)

BUCKET = "kubecycle-bentos"


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These variables set for a block (module-scoped fixtures have no monkeypatch)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def object_store() -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 with the bento bucket; yields the AWS_* variables."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}
    with environment(env):
        boto3.client("s3").create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tracking(engine, render, tmp_path_factory, postgres_url) -> Iterator[str]:
    """The MLflow image as the chart runs it, over the session's real PostgreSQL."""
    port = free_port()
    pg_port = sqlalchemy.engine.make_url(postgres_url).port
    cluster = render(mlflow_values(port, postgresql={"port": pg_port}))
    prepare_database(postgres_url, cluster.secret(f"{RELEASE}-postgresql")["password"])
    pod, _, url = start_mlflow(engine, cluster, tmp_path_factory.mktemp("mlflow"), port)
    try:
        yield url
    finally:
        pod.remove_all()


@pytest.fixture(scope="module")
def trained(tracking, object_store, docker_host, tmp_path_factory) -> dict:
    """The default demo trained with every task in the components image."""
    from kubecycle.pipelines.run import run_local

    home = tmp_path_factory.mktemp("home")
    cfg = load_config(EXAMPLES_DIR / "penguins.yaml")
    cfg = cfg.model_copy(update={"deploy": cfg.deploy.model_copy(
        update={"bento_store": f"s3://{BUCKET}"})})
    with environment({**object_store, "DOCKER_HOST": docker_host, "KUBECYCLE_HOME": str(home)}):
        return run_local(cfg, home / "run", tracking_uri=tracking, in_containers=True)


def test_training_pipeline_runs_task_by_task_in_the_components_image(trained, object_store):
    import boto3

    assert trained["status"] == "promoted" and trained["model_version"] == "1"
    assert trained["metrics"]["test"]["accuracy"] > 0.9
    with environment(object_store):
        keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == ["penguins-species-1.bento"]


def test_a_failing_task_fails_the_run(tracking, docker_host, tmp_path):
    """A task that raises in its container fails the run (podman removed auto-remove
    containers before kfp read their exit code, and kfp took that as success)."""
    from kubecycle.pipelines.run import run_local

    cfg = load_config(EXAMPLES_DIR / "penguins.yaml")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"target": "no_such_column"})})
    with environment({"DOCKER_HOST": docker_host, "KUBECYCLE_HOME": str(tmp_path / "home")}), \
            pytest.raises(PipelineRunError, match="no_such_column"):
        run_local(cfg, tmp_path / "run", tracking_uri=tracking, in_containers=True)


@pytest.fixture(scope="module")
def served_log(tmp_path_factory) -> Path:
    """The inference-log claim the serving pod writes and the monitoring job reads."""
    return tmp_path_factory.mktemp("inference-log")


CLIENTS = 4
MAX_REQUESTS = 2000  # bounded load: the clients stop at this count or when the server goes


def load_until_stopped(port: int, stop_after: int, stop: Callable[[], None]) -> int:
    """CLIENTS threads send single-record /predict requests; after `stop_after` answers the
    server is stopped (SIGTERM) while they keep sending. Returns the answers with 200."""
    rows = pd.read_csv(EXAMPLES_DIR / "penguins.csv").drop(columns="species")
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    answered, lock, gone = [0], threading.Lock(), threading.Event()
    budget = iter(range(MAX_REQUESTS))

    def client() -> None:
        session = requests.Session()
        while not gone.is_set():
            with lock:
                index = next(budget, None)
            if index is None:
                return
            try:
                answer = session.post(f"http://127.0.0.1:{port}/predict",
                                      json={"record": records[index % len(records)]}, timeout=30)
            except requests.RequestException:
                gone.set()
                return
            if answer.status_code != 200:
                continue  # 503 while draining: not answered, not logged
            assert answer.json()["prediction"] in {"Adelie", "Chinstrap", "Gentoo"}
            with lock:
                answered[0] += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    while answered[0] < stop_after and any(t.is_alive() for t in threads):
        time.sleep(0.05)
    stop()
    gone.set()
    for thread in threads:
        thread.join(timeout=60)
    return answered[0]


@pytest.mark.parametrize("sink", ["claim", "object store"])
def test_serving_image_serves_the_bento_and_logs_every_answer_when_stopped(
        sink, engine, render, trained, object_store, served_log, tmp_path):
    """The chart's init container imports the exported bento, the chart's server command
    serves it; stopped with SIGTERM under load, it writes every row it answered."""
    import boto3

    port = free_port()
    logging: dict = {}
    if sink == "object store":
        logging = {"monitoring": {"enabled": False, "inferenceLog": {
            "uri": f"s3://{BUCKET}/inference-log", "existingSecret": "log-store"}}}
    cluster = render({"mlflow": {"enabled": False}, "monitoring": {"enabled": False}, **logging,
                      "serving": {"port": port, "bentoStore": f"s3://{BUCKET}",
                                  "bentoStoreSecret": "bento-store",
                                  "model": {"name": "penguins-species", "version": "1"}}})
    cluster.extra_secrets.update({"bento-store": object_store, "log-store": object_store})
    deployment = cluster.find("Deployment", f"{RELEASE}-serving")
    pod = PodRunner(engine, cluster, pod_spec(deployment), tmp_path,
                    claims={f"{RELEASE}-inference-log": served_log})
    try:
        pod.run_init_containers()
        container = pod.start("serve")
        wait_http(f"http://127.0.0.1:{port}/readyz", runner=pod, container=container)
        assert_restricted(pod, container)
        codes: list[int] = []
        answered = load_until_stopped(port, 200, lambda: codes.append(pod.stop(container)))
        assert codes == [0] and answered >= 200
        if sink == "claim":
            parts = list(served_log.rglob("*.parquet"))
        else:
            with environment(object_store):
                listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="inference-log/")
            parts = [f"s3://{BUCKET}/{o['Key']}" for o in listed.get("Contents", [])]
        with environment(object_store):
            written = pd.concat(pd.read_parquet(p) for p in parts)
        # every answered row is written; a request cut off by the stop may be written too
        assert answered <= len(written) <= answered + CLIENTS
        assert set(written["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    finally:
        pod.remove_all()


def monitoring_pod(engine, render, tracking: str, log: Path, tmp_path: Path) -> PodRunner:
    """The monitoring CronJob's pod as the chart renders it, on the claim serving wrote."""
    port = int(tracking.rsplit(":", 1)[1])
    cluster = render({"mlflow": {"port": port}, "serving": {"enabled": False}})
    cronjob = cluster.find("CronJob", f"{RELEASE}-monitoring")
    return PodRunner(engine, cluster, pod_spec(cronjob), tmp_path,
                     claims={f"{RELEASE}-inference-log": log})


def test_monitoring_job_reads_what_serving_logged(engine, render, tracking, served_log, tmp_path):
    pod = monitoring_pod(engine, render, tracking, served_log, tmp_path)
    try:
        result = pod.run("monitor")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "rows" in result.stdout + result.stderr
    finally:
        pod.remove_all()


def test_evidently_ui_shows_the_reports_the_monitoring_job_added(engine, render, tracking,
                                                                 served_log, tmp_path):
    """The monitoring CronJob adds its report to the workspace claim; the chart's Evidently UI
    Deployment, on the same claim read-only, lists the project and the pass."""
    ui_port = free_port()
    cluster = render({"mlflow": {"port": int(tracking.rsplit(":", 1)[1])},
                      "serving": {"enabled": False},
                      "monitoring": {"evidently": {"enabled": True,
                                                   "ui": {"enabled": True, "port": ui_port}}}})
    workspace = tmp_path / "evidently"
    workspace.mkdir()
    claims = {f"{RELEASE}-inference-log": served_log, f"{RELEASE}-evidently": workspace}
    (tmp_path / "job").mkdir()
    (tmp_path / "ui").mkdir()
    job = PodRunner(engine, cluster, pod_spec(cluster.find("CronJob", f"{RELEASE}-monitoring")),
                    tmp_path / "job", claims=claims)
    ui = PodRunner(engine, cluster, pod_spec(cluster.find("Deployment", f"{RELEASE}-evidently")),
                   tmp_path / "ui", claims=claims)
    try:
        result = job.run("monitor")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        container = ui.start("evidently")
        wait_http(f"http://127.0.0.1:{ui_port}/api/projects", runner=ui, container=container)
        [project] = requests.get(f"http://127.0.0.1:{ui_port}/api/projects", timeout=30).json()
        assert project["name"] == "penguins-species monitoring"
        runs = requests.get(f"http://127.0.0.1:{ui_port}/api/projects/{project['id']}/snapshots",
                            timeout=30).json()
        assert len(runs) == 1 and runs[0]["metadata"]["kubecycle.model_name"] == "penguins-species"
    finally:
        job.remove_all()
        ui.remove_all()


def test_scoring_job_scores_a_claim_as_the_chart_runs_it(engine, render, tracking, trained,
                                                         tmp_path):
    """The chart's one-off scoring Job on a claim: the champion the pipeline trained scores the
    penguins, a row that breaks the contract goes to the rejects beside the output."""
    port = int(tracking.rsplit(":", 1)[1])
    cluster = render({"mlflow": {"port": port}, "serving": {"enabled": False},
                      "monitoring": {"enabled": False},
                      "scoring": {"enabled": True, "existingClaim": "batch",
                                  "input": "/data/scoring/in/", "output": "/data/scoring/out.csv",
                                  "config": "data: {source: x.csv}\nmlflow: {model_name: "
                                            "penguins-species}\nscoring: {max_reject_share: 0.5}"}})
    data = tmp_path / "claim"
    (data / "in").mkdir(parents=True)
    penguins = pd.read_csv(EXAMPLES_DIR / "penguins.csv").drop(columns="species")
    penguins.head(50).to_csv(data / "in" / "a.csv", index=False)
    penguins.tail(1).assign(island="Atlantis").to_parquet(data / "in" / "b.parquet")
    pod = PodRunner(engine, cluster, pod_spec(cluster.find("Job", f"{RELEASE}-scoring-1")),
                    tmp_path, claims={"batch": data})
    try:
        result = pod.run("score", timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "penguins-species v1 (onnx): scored 50 of 51 rows" in result.stdout
        scores = pd.read_csv(data / "out.csv")
        assert len(scores) == 50 and set(scores["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
        rejects = pd.read_csv(data / "out.rejects.csv")
        assert rejects["reject_reason"].str.startswith("island: 'Atlantis'").all()
    finally:
        pod.remove_all()


def test_components_image_runs_restricted_with_runtime_dependencies_only(
        engine, render, tracking, served_log, tmp_path):
    pod = monitoring_pod(engine, render, tracking, served_log, tmp_path)
    container = pod.spec["containers"][0]
    container["command"] = ["python3", "-c", PROBE + (
        "import importlib.util\n"
        "print([m for m in ('pytest', 'ruff', 'moto', 'schemathesis', 'kmock')"
        " if importlib.util.find_spec(m)])")]
    container["args"] = []
    try:
        result = pod.run("monitor", timeout=300)
        assert result.returncode == 0, result.stderr
        check_probe(result.stdout.strip().rsplit("\n", 1)[0])
        assert result.stdout.strip().endswith("[]"), result.stdout  # no test tools
    finally:
        pod.remove_all()


def test_installed_package_runs_the_default_demo(engine, render, tracking, served_log, tmp_path):
    """`kubecycle run` with no arguments from the image's non-editable install, in the
    restricted pod the chart gives the components image."""
    pod = monitoring_pod(engine, render, tracking, served_log, tmp_path)
    container = pod.spec["containers"][0]
    container["command"], container["args"] = ["kubecycle", "run"], []
    try:
        result = pod.run("monitor")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "promoted" in result.stdout
    finally:
        pod.remove_all()


def test_monitoring_pipeline_retrains_in_containers(trained, tracking, object_store,
                                                   docker_host, tmp_path):
    """The monitoring pipeline with every task in the components image: a drifted window
    runs the retrain branch, which registers a new version through the same gate."""
    import kfp.local
    import mlflow
    from docker.types import Mount

    from kubecycle.pipelines.local.containers import (
        container_runner,
        host_mounts,
        open_umask,
        waited_containers,
    )
    from kubecycle.pipelines.monitoring import build_monitoring_pipeline

    cfg = load_config(EXAMPLES_DIR / "penguins.yaml")
    cfg = cfg.model_copy(update={"monitoring": cfg.monitoring.model_copy(update={"retrain": True})})
    window = tmp_path / "window"
    window.mkdir()
    penguins = pd.read_csv(EXAMPLES_DIR / "penguins.csv").sample(300, replace=True, random_state=2)
    penguins.assign(body_mass_g=penguins.body_mass_g + 1500, island="Biscoe", sex="male",
                    flipper_length_mm=penguins.flipper_length_mm + 25).to_parquet(
        window / "drifted.parquet")
    root = tmp_path / "kfp"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    mounts = [*host_mounts(cfg), Mount(str(window), str(window), type="bind", read_only=True)]
    with environment({"DOCKER_HOST": docker_host}), waited_containers(), open_umask():
        kfp.local.init(runner=container_runner(mounts, {"MLFLOW_DISABLE_TELEMETRY": "true"}),
                       pipeline_root=str(root), raise_on_error=True)
        build_monitoring_pipeline(cfg)(config=cfg.to_json(), tracking_uri=tracking,
                                       current=str(window / "drifted.parquet"))
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    versions = client.search_model_versions("name = 'penguins-species'")
    assert len(versions) >= 2  # the retrain branch ran in containers and registered a version


def test_cli_runs_the_demo_in_containers_on_the_local_store(docker_host, tmp_path):
    """`kubecycle run --in-containers` with no tracking server: the local store's artifacts
    are written by the task containers through a mount at their host path."""
    import subprocess
    import sys

    env = {**os.environ, "DOCKER_HOST": docker_host, "KUBECYCLE_HOME": str(tmp_path / "home")}
    for name in ("MLFLOW_TRACKING_URI", "KUBECYCLE_TRACKING_URI", "BENTOML_HOME"):
        env.pop(name, None)
    kubecycle = str(Path(sys.executable).parent / "kubecycle")
    result = subprocess.run([kubecycle, "run", "--in-containers", "-o", str(tmp_path / "run")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "promoted" in result.stdout
    assert list((tmp_path / "home" / "mlflow" / "artifacts").rglob("MLmodel"))
