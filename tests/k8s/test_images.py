"""Every Dockerfile under images/ passes hadolint and keeps kubecycle's image rules."""

from __future__ import annotations

import re

import pytest

from .conftest import REPO

DOCKERFILES = sorted((REPO / "images").glob("*/Dockerfile"))


def test_there_are_images():
    assert {p.parent.name for p in DOCKERFILES} >= {"components", "mlflow", "serving"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint(k8s, dockerfile):
    result = k8s("hadolint", "--failure-threshold", "info", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


DERIVED = {"components-gpu"}  # built on the components image


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_multi_stage_non_root_with_configurable_base(dockerfile):
    text = dockerfile.read_text()
    if dockerfile.parent.name in DERIVED:
        assert "ARG COMPONENTS_IMAGE=" in text and "FROM ${COMPONENTS_IMAGE}" in text
    else:
        assert text.count("\nFROM ") + text.startswith("FROM ") >= 2, "multi-stage"
        assert "ARG BASE_IMAGE=" in text, "base image must be configurable"
    user = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")


def test_components_image_installs_runtime_dependencies_at_the_lock(
        dockerfile=REPO / "images/components/Dockerfile"):
    text = dockerfile.read_text()
    assert text.index("COPY requirements.lock") < text.index("COPY src"), "dependency layer first"
    # the project's [project.dependencies] constrained by the lock, never the lock itself
    # (it pins the test tools too)
    assert "['project']['dependencies']" in text and "-c requirements.lock -r /tmp/runtime.txt" in text
    assert "-r requirements.lock" not in text and "pip check" in text
    for folder in ("src", "components", "pipelines", "examples", "manifests"):
        assert f"COPY {folder} ./{folder}" in text, f"{folder} is a package folder of pyproject"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_mlflow_telemetry_is_off(dockerfile):
    assert "MLFLOW_DISABLE_TELEMETRY=true" in dockerfile.read_text()


def test_docker_context_holds_every_package_folder():
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert not ignored & {"src", "components", "pipelines", "examples", "manifests"}


def _pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version.strip()
    return pins


SERVING = REPO / "images" / "serving"


def test_serving_requirements_are_the_lock_plus_s3fs():
    """The runtime serves bentos built against requirements.lock: same versions, every line
    pinned, and the bento's requirements plus s3fs (bentoml import s3://...) all there."""
    text = (SERVING / "requirements.txt").read_text()
    lines = [x for x in text.splitlines() if x.strip() and not x.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", x) for x in lines), lines
    serving, lock = _pins(SERVING / "requirements.txt"), _pins(REPO / "requirements.lock")
    assert set(serving) >= {"bentoml", "scikit-learn", "pandas", "numpy", "scipy", "joblib",
                            "pyarrow", "onnxruntime", "s3fs", "fsspec", "aiobotocore",
                            "botocore"}
    # aiobotocore pins botocore narrowly; the lock's botocore is moto's (dev), see the file
    assert {n: v for n, v in serving.items() if lock.get(n, v) != v}.keys() <= {"botocore"}


MLFLOW = REPO / "images" / "mlflow"


def test_mlflow_requirements_are_the_whole_pinned_closure():
    """Every line pinned (installed --no-deps, then pip check), the drivers of each backend and
    the exporter behind --expose-prometheus there, versions shared with the lock equal."""
    text = (MLFLOW / "requirements.txt").read_text()
    lines = [x for x in text.splitlines() if x.strip() and not x.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", x) for x in lines), lines
    pins, lock = _pins(MLFLOW / "requirements.txt"), _pins(REPO / "requirements.lock")
    assert set(pins) >= {"mlflow", "psycopg", "psycopg-binary", "psycopg2-binary", "boto3",
                         "prometheus-flask-exporter", "sqlalchemy", "pandas"}
    assert {n: v for n, v in pins.items() if lock.get(n, v) != v} == {}
    dockerfile = (MLFLOW / "Dockerfile").read_text()
    assert "--no-deps -r /tmp/requirements.txt" in dockerfile and "pip check" in dockerfile


def test_serving_image_runtime_layout():
    text = (SERVING / "Dockerfile").read_text()
    assert "python -m venv /opt/venv" in text and "PATH=/opt/venv/bin:$PATH" in text
    assert "HOME=/tmp" in text and "BENTOML_HOME=/bentoml" in text
    assert "--no-deps -r /tmp/requirements.txt" in text and "pip check" in text
    assert "USER 10001:10001" in text
    assert "COPY src" not in text, "the runtime serves any bento; it needs no kubecycle source"
