"""The lifecycle on the real images: MLflow as the chart starts it (PostgreSQL backend), the
training pipeline with every task in the components image (kfp's DockerRunner through the
engine's Docker API), the bento exported to an S3 API stand-in, then imported and served by
the serving image with the chart's init container and server command."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
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
from .test_mlflow_image import assert_restricted, mlflow_values, prepare_database, start_mlflow

BUCKET = "kubecycle-bentos"


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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


def test_serving_image_imports_and_serves_the_exported_bento(engine, render, trained,
                                                             object_store, tmp_path):
    port = free_port()
    cluster = render({"mlflow": {"enabled": False}, "monitoring": {"enabled": False},
                      "serving": {"port": port, "bentoStore": f"s3://{BUCKET}",
                                  "bentoStoreSecret": "bento-store",
                                  "model": {"name": "penguins-species", "version": "1"}}})
    cluster.extra_secrets["bento-store"] = object_store
    deployment = cluster.find("Deployment", f"{RELEASE}-serving")
    log = tmp_path / "inference-log"
    log.mkdir()
    pod = PodRunner(engine, cluster, pod_spec(deployment), tmp_path,
                    claims={f"{RELEASE}-inference-log": log})
    try:
        pod.run_init_containers()
        container = pod.start("serve")
        wait_http(f"http://127.0.0.1:{port}/readyz", runner=pod, container=container)
        rows = pd.read_csv(EXAMPLES_DIR / "penguins.csv").drop(columns="species").head(20)
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        for record in records:
            answer = requests.post(f"http://127.0.0.1:{port}/predict", json={"record": record},
                                   timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_version"] == "1"
            assert answer.json()["prediction"] in {"Adelie", "Chinstrap", "Gentoo"}
        assert_restricted(pod, container)
        assert pod.stop(container) == 0
        written = pd.concat(pd.read_parquet(p) for p in Path(log).rglob("*.parquet"))
        assert len(written) == len(records)  # the rows still buffered are written at SIGTERM
    finally:
        pod.remove_all()
