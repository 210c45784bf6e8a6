"""Deploy, roll back and canary the serving Deployment through a Cluster.

Helm or kustomize create the stable Deployment and everything around it; these actions only
server-side apply its model pin (core.pin_patch) as field manager `kubecycle-deploy`, scale it
up from the zero the chart keeps until a first pin, and create or delete the canary, which is
kubecycle deploy's own object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubecycle.deploy.cluster import Cluster
from kubecycle.deploy.pin import (
    DEPLOYMENT,
    PREVIOUS,
    REPLICAS_WHEN_PINNED,
    ServingTarget,
    canary_from,
    canary_replicas,
    pin_patch,
    target_from_annotations,
)
from kubecycle.errors import DeployError

CANARY = f"{DEPLOYMENT}-canary"
INSTALL_HINT = ("install the serving objects first: `helm install kubecycle charts/kubecycle "
                "-n {ns}` or `kubectl apply -k manifests/overlays/<overlay>` (kubecycle deploy "
                "only pins the model; `kubecycle deploy --render` prints a full set)")


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


def _installed(cluster: Cluster, namespace: str) -> dict:
    """The stable Deployment, after checking that the claims its pods mount exist."""
    live = _live(cluster, namespace, DEPLOYMENT)
    if live is None:
        raise DeployError(f"no {DEPLOYMENT} Deployment in namespace {namespace}; "
                          + INSTALL_HINT.format(ns=namespace))
    for volume in live["spec"]["template"]["spec"].get("volumes", []):
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and cluster.get("v1", "PersistentVolumeClaim", namespace, claim) is None:
            raise DeployError(f"the {DEPLOYMENT} pods mount PersistentVolumeClaim {claim}, "
                              f"which is missing in namespace {namespace}; "
                              + INSTALL_HINT.format(ns=namespace))
    return live


def _pin(cluster: Cluster, live: dict, target: ServingTarget, previous: ServingTarget | None,
         default_replicas: int = 1) -> list[str]:
    """Apply the pin, scaling up a Deployment kept at zero until its first pin.

    It is scaled to the count its owner (the chart) recorded, else to default_replicas.
    """
    cluster.apply(pin_patch(live, target, previous))
    done = [f"Deployment/{DEPLOYMENT} (model pin)"]
    if live["spec"].get("replicas") == 0:
        wanted = int(_annotations(live).get(REPLICAS_WHEN_PINNED) or default_replicas)
        cluster.scale("apps/v1", "Deployment", live["metadata"]["namespace"], DEPLOYMENT, wanted)
        done.append(f"Deployment/{DEPLOYMENT} (scaled 0 -> {wanted})")
    return done


def apply(cluster: Cluster, target: ServingTarget, namespace: str, default_replicas: int = 1
          ) -> DeployResult:
    """Pin target on the stable Deployment, recording the version served before on it.

    The record lets rollback return to that version (pinning the served version again keeps
    the record).
    """
    live = _installed(cluster, namespace)
    annotations = _annotations(live)
    current = target_from_annotations(annotations)
    previous = (target_from_annotations(annotations, PREVIOUS) if current == target
                else current)
    result = _pin(cluster, live, target, previous, default_replicas)
    return DeployResult("applied", namespace, target, current if current != target else previous,
                        result)


def rollback(cluster: Cluster, namespace: str) -> DeployResult:
    """Serve the version recorded as previous again (rolling back twice returns)."""
    live = _installed(cluster, namespace)
    annotations = _annotations(live)
    previous = target_from_annotations(annotations, PREVIOUS)
    if previous is None:
        raise DeployError(f"{DEPLOYMENT} in {namespace} records no previous model version; "
                          "nothing to roll back to (pin one with --apply --model NAME/VERSION)")
    current = target_from_annotations(annotations)
    result = _pin(cluster, live, previous, current)
    return DeployResult("rolled back", namespace, previous, current, result)


def start_canary(cluster: Cluster, challenger: ServingTarget, namespace: str, percent: float,
                 image: str | None = None) -> DeployResult:
    """Run challenger in a second Deployment beside the stable one.

    The Service sends it about `percent` of the requests (ratio of the desired replicas).
    """
    live = _live(cluster, namespace, DEPLOYMENT)
    current = target_from_annotations(_annotations(live))
    if live is None or current is None or not live["spec"].get("replicas"):
        raise DeployError(f"no stable {DEPLOYMENT} serving a model in namespace {namespace} to "
                          "compare against; deploy the champion first with "
                          "`kubecycle deploy --apply`")
    replicas, share = canary_replicas(int(live["spec"]["replicas"]), percent)
    canary = canary_from(live, challenger, image, replicas)
    cluster.apply(canary)
    return DeployResult("canary started", namespace, challenger, current,
                        [f"Deployment/{CANARY}"], canary_share=share)


def promote_canary(cluster: Cluster, namespace: str) -> DeployResult:
    """The stable Deployment takes the canary's version; the canary is removed."""
    canary = _live(cluster, namespace, CANARY)
    target = target_from_annotations(_annotations(canary)) if canary else None
    if target is None:
        raise DeployError(f"no canary {CANARY} in namespace {namespace}; start one with "
                          "`kubecycle deploy --canary PERCENT --model ...`")
    result = apply(cluster, target, namespace)
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
