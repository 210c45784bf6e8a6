"""Deploy, roll back and canary the serving Deployment through a Cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubecycle.components.deploy.cluster import Cluster
from kubecycle.components.deploy.core import (
    DEPLOYMENT,
    PREVIOUS,
    TRACK,
    ServingTarget,
    base_documents,
    canary_replicas,
    pin_deployment,
    render,
    target_from_annotations,
)
from kubecycle.errors import DeployError

CANARY = f"{DEPLOYMENT}-canary"


@dataclass(frozen=True)
class DeployResult:
    """What a deploy action did, for the CLI to print."""

    action: str
    namespace: str
    target: ServingTarget | None
    previous: ServingTarget | None = None
    objects: list[str] = field(default_factory=list)
    canary_share: float | None = None


def _live(cluster: Cluster, namespace: str, name: str) -> dict | None:
    return cluster.get("apps/v1", "Deployment", namespace, name)


def _annotations(deployment: dict | None) -> dict[str, str]:
    return (deployment or {}).get("metadata", {}).get("annotations") or {}


def _apply_all(cluster: Cluster, documents: list[dict]) -> list[str]:
    for document in documents:
        cluster.apply(document)
    return [f"{d['kind']}/{d['metadata']['name']}" for d in documents]


def apply(cluster: Cluster, target: ServingTarget, namespace: str, image: str | None = None
          ) -> DeployResult:
    """Apply every serving object pinned to target; the version served before is recorded on
    the Deployment so that rollback can return to it."""
    previous = target_from_annotations(_annotations(_live(cluster, namespace, DEPLOYMENT)))
    documents = render(target, namespace, image, previous=previous)
    return DeployResult("applied", namespace, target, previous, _apply_all(cluster, documents))


def rollback(cluster: Cluster, namespace: str, image: str | None = None) -> DeployResult:
    """Serve the version recorded as previous again (rolling back twice returns)."""
    live = _live(cluster, namespace, DEPLOYMENT)
    if live is None:
        raise DeployError(f"no {DEPLOYMENT} Deployment in namespace {namespace}; "
                          "deploy one with `kubecycle deploy --apply`")
    annotations = _annotations(live)
    previous = target_from_annotations(annotations, PREVIOUS)
    if previous is None:
        raise DeployError(f"{DEPLOYMENT} in {namespace} records no previous model version; "
                          "nothing to roll back to (pin one with --apply --model NAME/VERSION)")
    current = target_from_annotations(annotations)
    document = _stable(namespace)
    pinned = pin_deployment(document, previous, image, previous=current)
    return DeployResult("rolled back", namespace, previous, current, _apply_all(cluster, [pinned]))


def _stable(namespace: str) -> dict:
    deployment = next(d for d in base_documents() if d["kind"] == "Deployment")
    deployment["metadata"]["namespace"] = namespace
    return deployment


def start_canary(cluster: Cluster, challenger: ServingTarget, namespace: str, percent: float,
                 image: str | None = None, default_replicas: int = 2) -> DeployResult:
    """Run challenger in a second Deployment beside the stable one; the Service sends it about
    `percent` of the requests (replica ratio)."""
    live = _live(cluster, namespace, DEPLOYMENT)
    if live is None:
        raise DeployError(f"no stable {DEPLOYMENT} in namespace {namespace} to compare against; "
                          "deploy the champion first with `kubecycle deploy --apply`")
    stable = (live.get("status") or {}).get("replicas") or live["spec"].get("replicas") \
        or default_replicas
    replicas, share = canary_replicas(int(stable), percent)
    canary = pin_deployment(_stable(namespace), challenger, image, track="canary",
                            replicas=replicas)
    for constraint in canary["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
        labels = constraint.get("labelSelector", {}).get("matchLabels", {})
        if TRACK in labels:
            labels[TRACK] = "canary"
    current = target_from_annotations(_annotations(live))
    return DeployResult("canary started", namespace, challenger, current,
                        _apply_all(cluster, [canary]), canary_share=share)


def promote_canary(cluster: Cluster, namespace: str, image: str | None = None) -> DeployResult:
    """The stable Deployment takes the canary's version; the canary is removed."""
    canary = _live(cluster, namespace, CANARY)
    target = target_from_annotations(_annotations(canary)) if canary else None
    if target is None:
        raise DeployError(f"no canary {CANARY} in namespace {namespace}; start one with "
                          "`kubecycle deploy --canary PERCENT --model ...`")
    result = apply(cluster, target, namespace, image)
    cluster.delete("apps/v1", "Deployment", namespace, CANARY)
    return DeployResult("canary promoted", namespace, target, result.previous,
                        [*result.objects, f"Deployment/{CANARY} (deleted)"])


def abort_canary(cluster: Cluster, namespace: str) -> DeployResult:
    """Remove the canary; the stable Deployment keeps serving."""
    canary = _live(cluster, namespace, CANARY)
    if canary is None or not cluster.delete("apps/v1", "Deployment", namespace, CANARY):
        raise DeployError(f"no canary {CANARY} in namespace {namespace} to abort")
    return DeployResult("canary aborted", namespace, target_from_annotations(
        _annotations(canary)), None, [f"Deployment/{CANARY} (deleted)"])
