"""What `kubecycle deploy` renders is what kustomize renders from manifests/base, pinned to a
version, and every object it can send (stable and canary) passes the same strict checks."""

from __future__ import annotations

import pytest
import yaml

from kubecycle.components.deploy.core import (
    SERVING_FILES,
    ServingTarget,
    base_documents,
    pin_deployment,
    render,
    to_yaml,
)

from .conftest import REPO
from .policy import check_restricted, validate_strict, yamllint_clean

TARGET = ServingTarget("churn-model", "12", "churn-model", "s3://bentos/churn-model-12.bento")


def _key(document: dict) -> tuple[str, str]:
    return document["kind"], document["metadata"]["name"]


def test_base_documents_equal_kustomize_output(k8s):
    result = k8s("kubectl", "kustomize", str(REPO / "manifests" / "base"))
    assert result.returncode == 0, result.stderr
    kustomized = {_key(d): d for d in yaml.safe_load_all(result.stdout) if d}
    ours = base_documents()
    assert len(ours) == len(SERVING_FILES)
    for document in ours:
        assert document == kustomized[_key(document)], _key(document)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    documents = render(TARGET, "team-a", image="registry.example/serving:1.2.3")
    stable = next(d for d in documents if d["kind"] == "Deployment")
    canary = pin_deployment(stable, TARGET, None, track="canary", replicas=1)
    path = tmp_path_factory.mktemp("deploy") / "rendered.yaml"
    path.write_text(to_yaml([*documents, canary]))
    return path


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_rendered_objects_pass_strict_schemas(rendered, k8s, version):
    validate_strict(k8s, rendered, version)


def test_rendered_objects_are_restricted_and_lint_clean(rendered, k8s):
    documents = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    assert check_restricted(documents) == []
    yamllint_clean(k8s, rendered)
    names = {_key(d) for d in documents}
    assert ("Deployment", "kubecycle-serving-canary") in names
    assert all(d["metadata"]["namespace"] == "team-a" for d in documents)
