"""Render the serving manifests (manifests/base) pinned to one registered model version.

The kustomize base is the single source: `kubecycle deploy` reads its serving files and the
labels its kustomization adds, sets the namespace and pins the model (annotations, a pod
label, the bento URI and name the pods import and serve). A canary is the same Deployment
under another name and track label; the Service selects both tracks, so traffic follows the
replica ratio.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import yaml

from kubecycle.errors import DeployError

SERVING_FILES = (
    "serving-serviceaccount.yaml",
    "serving-deployment.yaml",
    "serving-service.yaml",
    "serving-hpa.yaml",
    "serving-pdb.yaml",
    "networkpolicy-serving.yaml",
)
DEPLOYMENT = "kubecycle-serving"
MODEL_NAME = "kubecycle.io/model-name"
MODEL_VERSION = "kubecycle.io/model-version"
BENTO_URI = "kubecycle.io/bento-uri"
PREVIOUS = "kubecycle.io/previous-"  # + model-name, model-version, bento-uri: for --rollback
TRACK = "kubecycle.io/track"
Track = Literal["stable", "canary"]


@dataclass(frozen=True)
class ServingTarget:
    """What the pods serve: a registered model version and where its bento archive lives."""

    model_name: str
    model_version: str
    bento_name: str  # the name `bentoml serve` finds after importing the archive
    bento_uri: str

    def annotations(self, prefix: str = "kubecycle.io/") -> dict[str, str]:
        return {f"{prefix}model-name": self.model_name, f"{prefix}model-version": self.model_version,
                f"{prefix}bento-uri": self.bento_uri}


def base_documents() -> list[dict[str, Any]]:
    """The serving objects of manifests/base with the labels its kustomization adds."""
    base = resources.files("kubecycle.manifests") / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    documents = []
    for name in SERVING_FILES:
        if name not in kustomization.get("resources", []):
            raise DeployError(f"manifests/base/kustomization.yaml does not list {name}")
        documents.append(yaml.safe_load((base / name).read_text()))
    for entry in kustomization.get("labels", []):
        for document in documents:
            _add_labels(document, entry["pairs"], entry.get("includeSelectors", False))
    return documents


def _add_labels(document: dict[str, Any], labels: dict[str, str], selectors: bool) -> None:
    """What kustomize's `labels` do to the kinds served here."""
    document["metadata"].setdefault("labels", {}).update(labels)
    if not selectors:
        return
    spec, kind = document.get("spec", {}), document["kind"]
    if kind == "Deployment":
        spec["selector"]["matchLabels"].update(labels)
        spec["template"]["metadata"].setdefault("labels", {}).update(labels)
        for constraint in spec["template"]["spec"].get("topologySpreadConstraints", []):
            constraint.get("labelSelector", {}).get("matchLabels", {}).update(labels)
    elif kind == "Service":
        spec.setdefault("selector", {}).update(labels)
    elif kind == "PodDisruptionBudget":
        spec["selector"].setdefault("matchLabels", {}).update(labels)
    elif kind == "NetworkPolicy":
        spec["podSelector"].setdefault("matchLabels", {}).update(labels)


def _set_env(container: dict[str, Any], values: dict[str, str]) -> None:
    env = container.setdefault("env", [])
    for name, value in values.items():
        entry = next((e for e in env if e["name"] == name), None)
        if entry is None:
            env.append({"name": name, "value": value})
        else:
            entry.pop("valueFrom", None)
            entry["value"] = value


def pin_deployment(deployment: dict[str, Any], target: ServingTarget, image: str | None,
                   track: Track = "stable", replicas: int | None = None,
                   previous: ServingTarget | None = None) -> dict[str, Any]:
    """A copy of the serving Deployment serving target (as the canary when track='canary')."""
    pinned = copy.deepcopy(deployment)
    meta, spec = pinned["metadata"], pinned["spec"]
    template = spec["template"]
    if track == "canary":
        meta["name"] = f"{DEPLOYMENT}-canary"
        for labels in (meta["labels"], spec["selector"]["matchLabels"],
                       template["metadata"]["labels"]):
            labels[TRACK] = "canary"
    meta.setdefault("annotations", {}).update(target.annotations())
    if previous is not None and previous != target:
        meta["annotations"].update(previous.annotations(PREVIOUS))
    template["metadata"]["labels"][MODEL_VERSION] = target.model_version
    template["metadata"].setdefault("annotations", {}).update(target.annotations())
    pod = template["spec"]
    for container in pod.get("initContainers", []) + pod["containers"]:
        if image:
            container["image"] = image
        names = {e["name"] for e in container.get("env", [])}
        _set_env(container, {k: v for k, v in {"KUBECYCLE_BENTO_URI": target.bento_uri,
                                               "KUBECYCLE_BENTO_NAME": target.bento_name}.items()
                             if k in names})
    if replicas is not None:
        spec["replicas"] = replicas
    return pinned


def render(target: ServingTarget, namespace: str, image: str | None = None,
           previous: ServingTarget | None = None) -> list[dict[str, Any]]:
    """Every serving object for the stable track, pinned to target, in namespace."""
    documents = []
    for document in base_documents():
        if document["kind"] == "Deployment":
            document = pin_deployment(document, target, image, previous=previous)
        document["metadata"]["namespace"] = namespace
        documents.append(document)
    return documents


def canary_replicas(stable: int, percent: float) -> tuple[int, float]:
    """Canary replicas for a traffic share next to `stable` replicas, and the share it gives.

    Traffic splits by ready pods behind the one Service, so the share is a replica ratio.
    """
    if not 0 < percent < 100:
        raise DeployError(f"--canary takes a percentage between 0 and 100, not {percent}")
    canary = max(1, math.ceil(stable * percent / (100 - percent) - 1e-9))
    return canary, 100 * canary / (stable + canary)


def target_from_annotations(annotations: dict[str, str], prefix: str = "kubecycle.io/"
                            ) -> ServingTarget | None:
    """The target recorded on a live Deployment (current or, with PREVIOUS, the one before)."""
    from kubecycle.components.package.core import bento_name

    name = annotations.get(f"{prefix}model-name")
    version = annotations.get(f"{prefix}model-version")
    uri = annotations.get(f"{prefix}bento-uri")
    if not (name and version and uri):
        return None
    return ServingTarget(name, version, bento_name(name), uri)


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream, as `kubectl apply -f -` reads it."""
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)
