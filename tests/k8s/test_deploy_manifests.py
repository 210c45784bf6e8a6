"""What `kubecycle deploy` renders is what kustomize renders from manifests/base, pinned to a
version, and every object it can send (stable and canary) passes the same strict checks."""

from __future__ import annotations

import pytest
import yaml

from kubecycle.deploy.pin import (
    SERVING_FILES,
    ServingTarget,
    base_documents,
    field_paths,
    pin_deployment,
    pin_patch,
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


def _serving_deployment(text: str) -> dict:
    return next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment"
                and d["metadata"]["name"] == "kubecycle-serving")


def _pin_fields(live: dict) -> set[str]:
    """Every field kubecycle deploy can send to this Deployment (pin and rollback record)."""
    previous = ServingTarget("other", "3", "other", "s3://bentos/other-3.bento")
    return field_paths(pin_patch({**live, "metadata": {**live["metadata"],
                                                      "namespace": "mlops"}}, TARGET, previous))


@pytest.mark.parametrize("values", ["default-values.yaml", "external-db-values.yaml",
                                    "inference-log-s3-values.yaml"])
def test_deploy_and_the_chart_own_disjoint_fields(k8s, values):
    """Helm 4 upgrades by server-side apply: a field both set conflicts. Unpinned by values,
    the chart sets no field of the pin, so `helm upgrade` after `kubecycle deploy` passes."""
    out = k8s("helm", "template", "kubecycle", str(REPO / "charts" / "kubecycle"), "-n", "mlops",
              "-f", str(REPO / "charts" / "kubecycle" / "ci" / values))
    assert out.returncode == 0, out.stderr
    chart = _serving_deployment(out.stdout)
    sent = _pin_fields(chart)
    assert len(sent) == 12
    assert sent.isdisjoint(field_paths(chart)), sent & field_paths(chart)


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_deploy_and_the_overlays_own_disjoint_fields(k8s, overlay):
    """`kubectl apply --server-side -k` of an overlay after `kubecycle deploy` conflicts on
    nothing and keeps the overlay's sizes: deploy sends no HPA, PDB or Deployment size."""
    out = k8s("kubectl", "kustomize", str(REPO / "manifests" / "overlays" / overlay))
    assert out.returncode == 0, out.stderr
    overlay_deployment = _serving_deployment(out.stdout)
    sent = _pin_fields(overlay_deployment)
    assert sent.isdisjoint(field_paths(overlay_deployment))
    assert not [p for p in sent if "replicas" in p or "resources" in p or "image" in p]


def test_values_that_pin_the_model_own_the_pin(k8s):
    """serving.model.* set: Helm owns the pin, and deploy would conflict on exactly it (the
    API's 409 becomes a DeployError saying how to pin with Helm or hand the pin over)."""
    out = k8s("helm", "template", "kubecycle", str(REPO / "charts" / "kubecycle"), "-n", "mlops",
              "-f", str(REPO / "charts" / "kubecycle" / "ci" / "serving-fixed-values.yaml"))
    chart = _serving_deployment(out.stdout)
    overlap = _pin_fields(chart) & field_paths(chart)
    assert overlap == {p for p in _pin_fields(chart) if "previous-" not in p}
