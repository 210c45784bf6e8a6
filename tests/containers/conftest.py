"""Fixtures for the tests of kubecycle's real images (`make test-containers` builds them first).

The engine and image names come from the environment the make target sets
(KUBECYCLE_CONTAINER_ENGINE, CONTAINERS_CONF, KUBECYCLE_IMAGE_REGISTRY); the pods' settings
come from the rendered chart (`helm template`), never retyped here.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubecycle import __version__

from .pod import Cluster

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / ".tools" / "bin" / "helm"
ENGINE = os.environ.get("KUBECYCLE_CONTAINER_ENGINE", "")
REGISTRY = os.environ.get("KUBECYCLE_IMAGE_REGISTRY", "ghcr.io/kubecycle")
RELEASE = "kubecycle"
NAMESPACE = "kubecycle"


@pytest.fixture(autouse=True)
def _engine_required() -> None:
    if not ENGINE:
        pytest.skip("needs the images: run `make test-containers` (it builds them and sets "
                    "KUBECYCLE_CONTAINER_ENGINE)")


@pytest.fixture(scope="session")
def engine() -> str:
    return ENGINE


def image(name: str) -> str:
    """The tag `make images` gives an image."""
    return f"{REGISTRY}/{name}:{__version__}"


@pytest.fixture(scope="session")
def render() -> Callable[[dict[str, Any]], Cluster]:
    """Render the chart with values (as `helm install` would) into a Cluster of documents."""

    def _render(values: dict[str, Any]) -> Cluster:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
            yaml.safe_dump({"imageRegistry": REGISTRY, **values}, handle)
            handle.flush()
            result = subprocess.run(
                [str(HELM), "template", RELEASE, str(REPO / "charts" / "kubecycle"),
                 "--namespace", NAMESPACE, "--values", handle.name],
                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return Cluster([d for d in yaml.safe_load_all(result.stdout) if d])

    return _render


@pytest.fixture(scope="session")
def docker_host(engine, tmp_path_factory) -> Iterator[str]:
    """A Docker-compatible API for kfp's DockerRunner: podman's, started for the session, or
    the Docker engine's."""
    if engine != "podman":
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    socket = Path(tempfile.mkdtemp(prefix="kc-podman-")) / "podman.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            assert service.poll() is None, "podman system service exited"
            assert time.monotonic() < deadline, "podman's API socket never appeared"
            time.sleep(0.2)
        yield f"unix://{socket}"
    finally:
        service.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            service.wait(timeout=30)
        if service.poll() is None:
            service.kill()
            service.wait(timeout=30)


def http_json(method: str, url: str, host: str | None = None, body: Any = None) -> Any:
    import requests

    headers = {"Host": host} if host else {}
    response = requests.request(method, url, json=body, headers=headers, timeout=30)
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    return json.loads(response.text or "{}")
