"""Every Dockerfile under images/ passes hadolint and keeps kubecycle's image rules."""

from __future__ import annotations

import pytest

from .conftest import REPO

DOCKERFILES = sorted((REPO / "images").glob("*/Dockerfile"))


def test_there_are_images():
    assert {p.parent.name for p in DOCKERFILES} >= {"components", "mlflow"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint(k8s, dockerfile):
    result = k8s("hadolint", "--failure-threshold", "info", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_multi_stage_non_root_with_configurable_base(dockerfile):
    text = dockerfile.read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2, "multi-stage"
    assert "ARG BASE_IMAGE=" in text, "base image must be configurable"
    user = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")


def test_components_image_installs_the_lock(dockerfile=REPO / "images/components/Dockerfile"):
    text = dockerfile.read_text()
    assert text.index("COPY requirements.lock") < text.index("COPY src"), "dependency layer first"
