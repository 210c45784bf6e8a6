"""`kubecycle deploy`: pin a registered version into the serving manifests and apply them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from kubecycle.config import KubecycleConfig
from kubecycle.errors import DeployError
from kubecycle.registry import BENTO_URI_TAG, bento_archive, bento_name, resolve_version

if TYPE_CHECKING:
    from kubecycle.deploy.pin import ServingTarget
    from kubecycle.deploy.rollout import DeployResult

Action = Literal["apply", "rollback", "canary", "promote", "abort"]


def serving_target(cfg: KubecycleConfig, model: str = "", bento_uri: str | None = None
                   ) -> ServingTarget:
    """The registered version to serve (the champion by default) and its bento archive URI.

    The URI is --bento-uri, else the version's kubecycle.bento_uri tag (set by an export to a
    URI), else <deploy.bento_store>/<bento name>-<version>.bento (what
    `kubecycle package --export` names).

    The MLflow tracking URI must already be set.
    """
    from kubecycle.deploy.pin import ServingTarget

    version = resolve_version(model, cfg.mlflow.model_name)
    name = bento_name(version.name)
    uri = bento_uri or version.tags.get(BENTO_URI_TAG)
    if uri is None and cfg.deploy.bento_store:
        uri = f"{cfg.deploy.bento_store.rstrip('/')}/{bento_archive(version.name, version.version)}"
    if uri is None:
        raise DeployError(f"{version.name} v{version.version} has no exported bento on record; "
                          "export it with `kubecycle package --export s3://...`, set "
                          "deploy.bento_store, or pass --bento-uri")
    return ServingTarget(version.name, version.version, name, uri)


def deploy(action: Action, cfg: KubecycleConfig, target: ServingTarget | None, *,
           namespace: str | None = None, image: str | None = None, percent: float = 0.0,
           kubeconfig: str | None = None, context: str | None = None) -> DeployResult:
    """Run one deploy action against the cluster of the kubeconfig (or in-cluster account).

    Args:
        action: What to do.
        cfg: The config (deploy.namespace, deploy.replicas).
        target: The version to pin (apply) or to run as the canary (canary).
        namespace: Namespace of the serving Deployment (default: deploy.namespace).
        image: Serving image of a canary only (default: the stable's); the stable's image
            belongs to Helm or kustomize, like everything but the model pin.
        percent: Canary share of the pods.
        kubeconfig: Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
        context: Kubeconfig context.

    Returns:
        What was done.

    Raises:
        DeployError: the cluster refused, or the action cannot be done (the message says why).
    """
    from kubecycle.deploy import rollout
    from kubecycle.deploy.cluster import Cluster, api_client

    if image and action != "canary":
        raise DeployError("--image sets the image of a --canary only: the stable Deployment's "
                          "image belongs to Helm (serving.image.*) or kustomize (images:)")
    cluster = Cluster(api_client(kubeconfig, context))
    namespace = namespace or cfg.deploy.namespace
    if action == "apply":
        return rollout.apply(cluster, target, namespace, cfg.deploy.replicas)
    if action == "canary":
        return rollout.start_canary(cluster, target, namespace, percent, image)
    if action == "promote":
        return rollout.promote_canary(cluster, namespace)
    if action == "abort":
        return rollout.abort_canary(cluster, namespace)
    return rollout.rollback(cluster, namespace)
