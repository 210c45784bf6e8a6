"""The model pin of the serving Deployment: what `kubecycle deploy` owns, and the full render.

Ownership (README, "Who owns what"): Helm or kustomize own every serving object; `kubecycle
deploy` owns only the model pin: the Deployment's kubecycle.io/model-* and previous-*
annotations, the pod template's model-version label and kubecycle.io/ annotations, and the
values of KUBECYCLE_BENTO_URI / KUBECYCLE_BENTO_NAME. `pin_patch` builds exactly that body
for a server-side apply. `render` still prints the whole pinned serving set of manifests/base
(with the claim its pods mount) for `kubectl apply -f` without Helm or kustomize. A canary is
the stable Deployment under another name and track label; the Service selects both tracks, so
traffic follows the replica ratio.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import yaml

from kubecycle import settings
from kubecycle.errors import DeployError
from kubecycle.registry import bento_name

SERVING_FILES = (
    "inference-log-pvc.yaml",
    "serving-serviceaccount.yaml",
    "serving-deployment.yaml",
    "serving-service.yaml",
    "serving-hpa.yaml",
    "serving-pdb.yaml",
    "networkpolicy-serving.yaml",
)
DEPLOYMENT = "kubecycle-serving"
PIN = "kubecycle.io/"  # + model-name, model-version, bento-uri: the pin's annotations
PREVIOUS = "kubecycle.io/previous-"  # + the same: the pin before, for --rollback
MODEL_VERSION = f"{PIN}model-version"  # also the pod template's label
TRACK = "kubecycle.io/track"
# Set by the chart on an unpinned Deployment it keeps at zero replicas: the count the first pin
# scales it to (the HPA's minimum, or serving.replicas).
REPLICAS_WHEN_PINNED = "kubecycle.io/replicas-when-pinned"
Track = Literal["stable", "canary"]


@dataclass(frozen=True)
class ServingTarget:
    """What the pods serve: a registered model version and where its bento archive lives."""

    model_name: str
    model_version: str
    bento_name: str  # the name `bentoml serve` finds after importing the archive
    bento_uri: str

    def env(self) -> dict[str, str]:
        """The pod env values that pin this version.

        They name the archive the init container imports and the bento the server serves.
        """
        return {settings.BENTO_URI.name: self.bento_uri, settings.BENTO_NAME.name: self.bento_name}

    def annotations(self, prefix: str = PIN) -> dict[str, str]:
        """The annotations that record the pin (prefix PREVIOUS: the pin before)."""
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


def pin_patch(live: dict[str, Any], target: ServingTarget,
              previous: ServingTarget | None = None) -> dict[str, Any]:
    """The server-side apply body of the model pin of the live Deployment, and nothing else.

    Args:
        live: The Deployment as the API returns it (Helm or kustomize created it).
        target: The version to serve.
        previous: The version served before, recorded for --rollback (omitted when None, so
            that a stale record of this field manager is removed by the API server).

    Returns:
        apiVersion, kind, name and namespace, the pin annotations, the pod template's
        model-version label and annotations, and the pin env values of the containers that
        declare them (list items keyed by name, as server-side apply merges them).
    """
    meta = live["metadata"]
    annotations = target.annotations()
    if previous is not None:
        annotations.update(previous.annotations(PREVIOUS))
    values = target.env()
    pod: dict[str, Any] = {}
    for key in ("initContainers", "containers"):
        entries = [{"name": c["name"], "env": [{"name": e["name"], "value": values[e["name"]]}
                                               for e in c.get("env", []) if e["name"] in values]}
                   for c in live["spec"]["template"]["spec"].get(key, [])]
        if any(entry["env"] for entry in entries):
            pod[key] = [entry for entry in entries if entry["env"]]
    return {"apiVersion": live.get("apiVersion", "apps/v1"), "kind": live.get("kind", "Deployment"),
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "annotations": annotations},
            "spec": {"template": {"metadata": {"labels": {MODEL_VERSION: target.model_version},
                                               "annotations": target.annotations()},
                                  "spec": pod}}}


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
        _set_env(container, {k: v for k, v in target.env().items() if k in names})
    if replicas is not None:
        spec["replicas"] = replicas
    return pinned


SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                   "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences")
FOREIGN_ANNOTATIONS = ("meta.helm.sh/", "deployment.kubernetes.io/", "kubectl.kubernetes.io/",
                       PREVIOUS)


def canary_from(live: dict[str, Any], challenger: ServingTarget, image: str | None,
                replicas: int) -> dict[str, Any]:
    """The canary Deployment: a copy of the live stable one that serves the challenger.

    The copy keeps the stable Deployment as Helm or kustomize sized it, and serves challenger
    under the canary name and track, with `replicas` pods.

    Args:
        live: The stable Deployment as the API returns it.
        challenger: The version the canary serves.
        image: Serving image of the canary (None: the stable's image).
        replicas: Desired canary replicas.

    Returns:
        A full Deployment for a server-side apply; the canary is kubecycle deploy's own object.
    """
    document = {key: copy.deepcopy(live[key]) for key in ("apiVersion", "kind", "metadata", "spec")}
    meta = document["metadata"]
    for key in SERVER_METADATA:
        meta.pop(key, None)
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items()
                           if not k.startswith(FOREIGN_ANNOTATIONS)}
    canary = pin_deployment(document, challenger, image, track="canary", replicas=replicas)
    for constraint in canary["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
        labels = constraint.get("labelSelector", {}).get("matchLabels", {})
        if TRACK in labels:
            labels[TRACK] = "canary"
    return canary


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

    Traffic splits by ready pods behind the one Service, so the share is a replica ratio of
    the desired counts (spec.replicas): status.replicas also counts surge pods of a rollout.

    Args:
        stable: Desired replicas of the stable Deployment.
        percent: Wanted share of the canary, strictly between 0 and 100.

    Returns:
        The canary's replicas and the share of the pods it will have.

    Raises:
        DeployError: percent is out of range.
    """
    if not 0 < percent < 100:
        raise DeployError(f"--canary takes a percentage between 0 and 100, not {percent}")
    canary = max(1, math.ceil(stable * percent / (100 - percent) - 1e-9))
    return canary, canary_share(stable, canary)


def canary_share(stable: int, canary: int) -> float:
    """Percent of the pods the canary has, from the desired replicas of both Deployments."""
    return 100 * canary / (stable + canary) if stable + canary else 0.0


def target_from_annotations(annotations: dict[str, str], prefix: str = PIN
                            ) -> ServingTarget | None:
    """The target recorded on a live Deployment (current or, with PREVIOUS, the one before)."""
    name = annotations.get(f"{prefix}model-name")
    version = annotations.get(f"{prefix}model-version")
    uri = annotations.get(f"{prefix}bento-uri")
    if not (name and version and uri):
        return None
    return ServingTarget(name, version, bento_name(name), uri)


IDENTITY = {"apiVersion", "kind", "metadata.name", "metadata.namespace"}


def field_paths(document: Any, prefix: str = "") -> set[str]:
    """The leaf fields of a document as server-side apply tracks ownership of them.

    Lists of maps with a name are keyed by it (`containers[name=serve].image`); the key itself
    and the object's identity (apiVersion, kind, name, namespace) are left out: managers that
    send the same key share it without conflict. Two managers conflict only on a common path.

    Args:
        document: A manifest (or part of one).
        prefix: The path of document inside its object.

    Returns:
        Dotted paths of every leaf value.
    """
    if isinstance(document, dict):
        paths: set[str] = set()
        for key, value in document.items():
            path = f"{prefix}.{key}" if prefix else key
            if path not in IDENTITY:
                paths |= field_paths(value, path) if value not in ({}, []) else {path}
        return paths
    if isinstance(document, list) and document and all(
            isinstance(i, dict) and "name" in i for i in document):
        return {path for item in document
                for path in field_paths({k: v for k, v in item.items() if k != "name"},
                                        f"{prefix}[name={item['name']}]")
                or {f"{prefix}[name={item['name']}]"}}
    return {prefix}


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream, as `kubectl apply -f -` reads it."""
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)
