"""`kubecycle deploy`: pin a registered version into the serving manifests and apply them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from kubecycle.config import KubecycleConfig
from kubecycle.errors import DeployError
from kubecycle.pipelines.serve import BENTO_URI_TAG
from kubecycle.registry import resolve_version

if TYPE_CHECKING:
    from kubecycle.components.deploy.core import ServingTarget
    from kubecycle.components.deploy.rollout import DeployResult

Action = Literal["apply", "rollback", "canary", "promote", "abort"]


def serving_target(cfg: KubecycleConfig, model: str = "", bento_uri: str | None = None
                   ) -> ServingTarget:
    """The registered version to serve (the champion by default) and its bento archive URI:
    --bento-uri, else the version's kubecycle.bento_uri tag (set by an export to a URI), else
    <deploy.bento_store>/<bento name>-<version>.bento (what `kubecycle package --export` names).

    The MLflow tracking URI must already be set.
    """
    from kubecycle.components.deploy.core import ServingTarget
    from kubecycle.components.package.core import bento_name

    version = resolve_version(model, cfg.mlflow.model_name)
    name = bento_name(version.name)
    uri = bento_uri or version.tags.get(BENTO_URI_TAG)
    if uri is None and cfg.deploy.bento_store:
        uri = f"{cfg.deploy.bento_store.rstrip('/')}/{name}-{version.version}.bento"
    if uri is None:
        raise DeployError(f"{version.name} v{version.version} has no exported bento on record; "
                          "export it with `kubecycle package --export s3://...`, set "
                          "deploy.bento_store, or pass --bento-uri")
    return ServingTarget(version.name, version.version, name, uri)


def deploy(action: Action, cfg: KubecycleConfig, target: ServingTarget | None, *,
           namespace: str | None = None, image: str | None = None, percent: float = 0.0,
           kubeconfig: str | None = None, context: str | None = None) -> DeployResult:
    """Run one deploy action against the cluster of the kubeconfig (or in-cluster account)."""
    from kubecycle.components.deploy import rollout
    from kubecycle.components.deploy.cluster import Cluster, api_client
    from kubecycle.images import serving_image

    cluster = Cluster(api_client(kubeconfig, context))
    namespace = namespace or cfg.deploy.namespace
    image = image or cfg.deploy.image or serving_image()
    if action == "apply":
        return rollout.apply(cluster, target, namespace, image)
    if action == "canary":
        return rollout.start_canary(cluster, target, namespace, percent, image,
                                    cfg.deploy.replicas)
    if action == "promote":
        return rollout.promote_canary(cluster, namespace, image)
    if action == "abort":
        return rollout.abort_canary(cluster, namespace)
    return rollout.rollback(cluster, namespace, image)
