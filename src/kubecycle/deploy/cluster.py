"""Talk to the Kubernetes API with the official client: server-side apply, read, delete.

Kept thin on purpose: every request goes through ApiClient.call_api with the object's own
path, so one code path serves every kind the serving manifests hold.
"""

from __future__ import annotations

from typing import Any

from kubecycle.errors import DeployError

# The field manager of every write: the model pin (server-side apply), the canary, and the
# scale-up of a Deployment kept at zero until its first pin. Never forced: a conflict means
# another manager (Helm values, a kustomize patch) sets a pin field, and the user must choose.
FIELD_MANAGER = "kubecycle-deploy"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"  # JSON is YAML: the client sends JSON
MERGE_CONTENT_TYPE = "application/merge-patch+json"


def api_client(kubeconfig: str | None = None, context: str | None = None):
    """A client from the in-cluster service account, else from kubeconfig (and context)."""
    from kubernetes import client, config

    from kubecycle.settings import KUBERNETES_SERVICE_HOST

    configuration = client.Configuration()
    try:
        if kubeconfig is None and context is None and KUBERNETES_SERVICE_HOST.get():
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(config_file=kubeconfig, context=context,
                                    client_configuration=configuration)
    except (config.ConfigException, OSError) as exc:
        raise DeployError(f"no usable Kubernetes credentials ({exc}); pass --kubeconfig or "
                          "set KUBECONFIG, or run inside the cluster") from None
    return client.ApiClient(configuration)


def _plural(kind: str) -> str:
    lower = kind.lower()
    return f"{lower[:-1]}ies" if lower.endswith("y") else f"{lower}s"


def object_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    """The REST path of a namespaced object (or of its collection when name is None)."""
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{_plural(kind)}"
    return f"{path}/{name}" if name else path


class Cluster:
    """Namespaced objects through one ApiClient."""

    def __init__(self, client) -> None:
        self.client = client

    @property
    def host(self) -> str:
        """The URL of the cluster's API server."""
        return self.client.configuration.host

    def _call(self, method: str, path: str, body: Any = None, query: list | None = None,
              content_type: str = "application/json") -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return self.client.call_api(
                path, method, header_params={"Accept": "application/json",
                                             "Content-Type": content_type},
                query_params=query or [], body=body, response_type="object",
                auth_settings=["BearerToken"], _return_http_data_only=True,
                _request_timeout=30)
        except ApiException as exc:
            if exc.status == 404 and method in ("GET", "DELETE"):
                return None
            reason = _api_reason(exc)
            hint = (" (the account needs RBAC for it in this namespace)"
                    if exc.status in (401, 403) else _CONFLICT_HINT if exc.status == 409 else "")
            raise DeployError(f"Kubernetes API {self.host} refused {method} {path}: "
                              f"{exc.status} {reason}{hint}") from None
        except HTTPError as exc:
            raise DeployError(f"cannot reach the Kubernetes API at {self.host}: {exc}; check the "
                              "kubeconfig context and that the cluster is up") from None

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        """The live object, or None when it does not exist."""
        return self._call("GET", object_path(api_version, kind, namespace, name))

    def apply(self, document: dict[str, Any]) -> dict:
        """Server-side apply (create or update) as field manager `kubecycle-deploy`, unforced.

        Args:
            document: The fields this manager owns (fields it owned before and omits now are
                removed by the API server unless another manager owns them too).

        Returns:
            The object after the apply.

        Raises:
            DeployError: the API refused it; a 409 means another manager owns a field sent.
        """
        meta = document["metadata"]
        path = object_path(document["apiVersion"], document["kind"], meta["namespace"],
                           meta["name"])
        return self._call("PATCH", path, body=document, content_type=APPLY_CONTENT_TYPE,
                          query=[("fieldManager", FIELD_MANAGER)])

    def scale(self, api_version: str, kind: str, namespace: str, name: str, replicas: int) -> dict:
        """Set spec.replicas by an update (as `kubectl scale` and the HPA do), never an apply.

        An update takes the field over from its previous owner without a conflict, and this
        manager's later applies never send it, so the HPA keeps the count afterwards.

        Returns:
            The object after the update.
        """
        return self._call("PATCH", object_path(api_version, kind, namespace, name),
                          body={"spec": {"replicas": replicas}}, content_type=MERGE_CONTENT_TYPE,
                          query=[("fieldManager", FIELD_MANAGER)])

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete the object (foreground: its pods go first); False if it was not there."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        return self._call("DELETE", object_path(api_version, kind, namespace, name),
                          body=body) is not None


_CONFLICT_HINT = (
    " (another field manager owns a pin field kubecycle deploy sends: Helm with serving.model.* "
    "values, or a kustomize patch. Pin through that tool, e.g. `helm upgrade --reuse-values "
    "--set serving.model.version=N`; or hand the pin over: `kubecycle deploy --apply` the "
    "version and bento Helm pins, then `helm upgrade --reuse-values --set "
    "serving.model.version=`; README: Who owns what)")


def _api_reason(exc) -> str:
    import json

    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)
