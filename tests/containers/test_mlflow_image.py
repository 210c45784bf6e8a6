"""The MLflow image, started as the chart's Deployment: each backend the chart offers (the
in-chart PostgreSQL, an external SQLAlchemy URL such as SQLite), metrics on."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy

from kubecycle.tracking import free_port

from .conftest import RELEASE, http_json
from .pod import PodRunner, pod_spec, wait_http


def mlflow_values(port: int, **extra) -> dict:
    return {"mlflow": {"port": port, **extra.pop("mlflow", {})},
            "serving": {"enabled": False}, "monitoring": {"enabled": False}, **extra}


def prepare_database(postgres_url: str, password: str) -> None:
    """The in-chart database's role and database, on the session's real PostgreSQL."""
    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(sqlalchemy.text(
            "select 1 from pg_roles where rolname = 'mlflow'")).first()
        if not exists:
            connection.execute(sqlalchemy.text(f"create role mlflow login password '{password}'"))
            connection.execute(sqlalchemy.text("create database mlflow owner mlflow"))


def start_mlflow(engine: str, cluster, tmp_path, port: int) -> tuple[PodRunner, str, str]:
    deployment = cluster.find("Deployment", f"{RELEASE}-mlflow")
    claims = {f"{RELEASE}-mlflow-artifacts": tmp_path / "artifacts"}
    claims[f"{RELEASE}-mlflow-artifacts"].mkdir()
    pod = PodRunner(engine, cluster, pod_spec(deployment), tmp_path, claims=claims)
    container = pod.start("mlflow")
    wait_http(f"http://127.0.0.1:{port}/health", runner=pod, container=container)
    return pod, container, f"http://127.0.0.1:{port}"


def assert_tracks(url: str) -> None:
    """An experiment is created and read back through the tracking API."""
    name = f"container-check-{uuid.uuid4().hex[:6]}"
    created = http_json("POST", f"{url}/api/2.0/mlflow/experiments/create", body={"name": name})
    found = http_json("GET", f"{url}/api/2.0/mlflow/experiments/get?experiment_id="
                      f"{created['experiment_id']}")
    assert found["experiment"]["name"] == name


PROBE = """
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print(os.getuid(), os.getgid(), status["CapEff"].strip(), status["NoNewPrivs"].strip())
try:
    open("/probe", "w")
except OSError as error:
    print("refused", error.errno)
"""


def assert_restricted(pod: PodRunner, container: str) -> None:
    """uid 10001, no capabilities, no privilege escalation, a root filesystem that refuses
    writes: checked inside the running container."""
    probe = pod.exec(container, "python3", "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    check_probe(probe.stdout)


def check_probe(output: str) -> None:
    lines = output.strip().split("\n")
    assert lines[0] == "10001 10001 0000000000000000 1", output
    assert lines[1].startswith("refused"), output


def test_mlflow_with_the_in_chart_postgresql_and_metrics(engine, render, tmp_path, postgres_url):
    import requests

    pg_port = sqlalchemy.engine.make_url(postgres_url).port
    port = free_port()
    cluster = render(mlflow_values(port, postgresql={"port": pg_port},
                                   metrics={"serviceMonitor": {"enabled": True}}))
    password = cluster.secret(f"{RELEASE}-postgresql")["password"]
    prepare_database(postgres_url, password)
    pod, container, url = start_mlflow(engine, cluster, tmp_path, port)
    try:
        assert_tracks(url)
        assert_restricted(pod, container)
        metrics = requests.get(f"{url}/metrics", timeout=30)
        assert metrics.status_code == 200 and "mlflow_http_request_total" in metrics.text
        database = sqlalchemy.engine.make_url(postgres_url).set(database="mlflow")
        with sqlalchemy.create_engine(database).connect() as connection:
            stored = connection.execute(sqlalchemy.text("select count(*) from experiments"))
            assert stored.scalar() >= 2  # Default and the one created: the server used PostgreSQL
    finally:
        pod.remove_all()


@pytest.mark.parametrize("uri", ["sqlite:////mlartifacts/mlflow.db"])
def test_mlflow_with_an_external_database_url(engine, render, tmp_path, uri):
    port = free_port()
    cluster = render(mlflow_values(port, mlflow={"backend": {
        "type": "external", "external": {"existingSecret": "mlflow-db", "key": "uri"}}}))
    cluster.extra_secrets["mlflow-db"] = {"uri": uri}
    pod, container, url = start_mlflow(engine, cluster, tmp_path, port)
    try:
        assert_tracks(url)
        assert_restricted(pod, container)
        assert (tmp_path / "artifacts" / "mlflow.db").is_file()
    finally:
        pod.remove_all()
