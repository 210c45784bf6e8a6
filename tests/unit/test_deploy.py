"""`kubecycle deploy` against a real HTTP Kubernetes API stand-in (kmock's emulator): apply,
rollback and canary through the official client; rendering pins the model version."""

from __future__ import annotations

import asyncio
import threading

import kmock
import mlflow
import pytest
import yaml
from typer.testing import CliRunner

from kubecycle.deploy import rollout
from kubecycle.deploy.cluster import Cluster, api_client, object_path
from kubecycle.deploy.pin import (
    DEPLOYMENT,
    PREVIOUS,
    SERVING_FILES,
    ServingTarget,
    base_documents,
    canary_replicas,
    canary_share,
    field_paths,
    pin_patch,
    render,
    target_from_annotations,
)
from kubecycle.errors import DeployError
from kubecycle.pipelines.cli import app

NS = "mlops"
V1 = ServingTarget("penguins-species", "1", "penguins-species", "s3://bentos/penguins-species-1.bento")
V2 = ServingTarget("penguins-species", "2", "penguins-species", "s3://bentos/penguins-species-2.bento")


def _ssa_merge(live: object, applied: object) -> object:
    """Server-side apply's merge, as far as these objects need it: maps recursively, lists of
    maps keyed by name item by item, everything else replaced."""
    if isinstance(live, dict) and isinstance(applied, dict):
        return {**live, **{k: _ssa_merge(live.get(k), v) for k, v in applied.items()}}
    if (isinstance(live, list) and isinstance(applied, list)
            and all(isinstance(i, dict) and "name" in i for i in live + applied)):
        merged = {i["name"]: i for i in live}
        for item in applied:
            merged[item["name"]] = _ssa_merge(merged.get(item["name"], {}), item)
        return list(merged.values())
    return applied


class ApplyingEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus server-side apply: create-on-PATCH, keyed-list merges, and the
    removal of annotations a field manager applied before and omits now (kmock keeps no
    managedFields: the tests assert on the bodies and parameters sent instead). `conflict`
    makes the next apply fail as a real API server does when another manager owns a field."""

    conflict: str | None = None
    bodies: list[tuple[str, dict, dict]] = []

    async def _handle(self, request):
        content_type = request.headers.get("Content-Type", "")
        if (request.action == kmock.action.UPDATE and request.name
                and content_type.startswith("application/apply-patch")):
            if self.conflict:
                raise kmock.KubernetesError(status=409, reason="Conflict", message=self.conflict)
            key = (request.resource, request.namespace, request.name)
            manager = request.params.get("fieldManager", "")
            self.bodies.append((manager, dict(request.params), request.data))
            async with self._lock:
                if key not in self._objects or self._objects[key].deleted:
                    if key in self._objects:
                        self._objects[key].create(request.data)
                    else:
                        self._objects[key] = request.data
                else:
                    merged = _ssa_merge(self._objects[key].raw, request.data)
                    before = next((b for m, _, b in reversed(self.bodies[:-1])
                                   if m == manager and b["metadata"]["name"] == request.name), {})
                    dropped = set(before.get("metadata", {}).get("annotations", {})) - set(
                        request.data["metadata"].get("annotations", {}))
                    for name in dropped:
                        merged["metadata"]["annotations"].pop(name, None)
                    self._objects[key].delete()
                    self._objects[key].create(merged)
            object.__setattr__(request, "data", {})  # applied above already
        return await super()._handle(request)


@pytest.fixture
def kube_api(tmp_path):
    """The stand-in on 127.0.0.1 in a thread of its own, and a kubeconfig pointing at it."""
    started, state = threading.Event(), {}

    async def serve() -> None:
        stop = asyncio.Event()
        state["stop"] = lambda: loop.call_soon_threadsafe(stop.set)
        async with ApplyingEmulator() as handler, kmock.Server(handler, host="127.0.0.1") as server:
            state["url"] = str(server.url).rstrip("/")
            state["handler"] = handler
            started.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(20), "the Kubernetes API stand-in did not start"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": state["url"]}}],
        "users": [{"name": "deployer", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "deployer"}}]}))
    state["handler"].bodies = []
    yield str(kubeconfig), state["handler"]
    state["stop"]()
    thread.join(20)


def _deployment(cluster: Cluster, name: str = DEPLOYMENT) -> dict | None:
    return cluster.get("apps/v1", "Deployment", NS, name)


def _canary_status(cluster: Cluster) -> float:
    """The canary's share of the desired pods, read back from the live objects."""
    stable, canary = _deployment(cluster), _deployment(cluster, f"{DEPLOYMENT}-canary")
    return canary_share(int(stable["spec"]["replicas"]), int(canary["spec"]["replicas"]))


def _pinned_version(deployment: dict) -> tuple[str, str, list[str]]:
    pod = deployment["spec"]["template"]
    env = [e["value"] for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]
           for e in c.get("env", []) if e["name"] == "KUBECYCLE_BENTO_URI"]
    return (deployment["metadata"]["annotations"]["kubecycle.io/model-version"],
            pod["metadata"]["labels"]["kubecycle.io/model-version"], env)


def _install(cluster: Cluster, replicas: int | None = 0, claim: bool = True) -> None:
    """What `helm install` leaves (unpinned, at zero replicas) or, with replicas=None, what
    `kubectl apply -k` leaves: the serving objects of the base, created by another manager."""
    for document in base_documents():
        if document["kind"] == "PersistentVolumeClaim" and not claim:
            continue
        document["metadata"]["namespace"] = NS
        if document["kind"] == "Deployment" and replicas is not None:
            document["spec"]["replicas"] = replicas
        path = object_path(document["apiVersion"], document["kind"], NS)
        cluster._call("POST", path, body=document, query=[("fieldManager", "helm")])


PIN_PATHS = {
    "metadata.annotations.kubecycle.io/model-name", "metadata.annotations.kubecycle.io/model-version",
    "metadata.annotations.kubecycle.io/bento-uri",
    "spec.template.metadata.labels.kubecycle.io/model-version",
    "spec.template.metadata.annotations.kubecycle.io/model-name",
    "spec.template.metadata.annotations.kubecycle.io/model-version",
    "spec.template.metadata.annotations.kubecycle.io/bento-uri",
    "spec.template.spec.initContainers[name=import-bento].env[name=KUBECYCLE_BENTO_URI].value",
    "spec.template.spec.containers[name=serve].env[name=KUBECYCLE_BENTO_NAME].value"}
PREVIOUS_PATHS = {f"metadata.annotations.kubecycle.io/previous-{k}"
                  for k in ("model-name", "model-version", "bento-uri")}


def test_render_pins_every_serving_object(tmp_path):
    documents = render(V2, "team-a", image="registry.local/serving:9")
    assert [d["kind"] for d in documents] == ["PersistentVolumeClaim", "ServiceAccount",
                                             "Deployment", "Service", "HorizontalPodAutoscaler",
                                             "PodDisruptionBudget", "NetworkPolicy"]
    assert len(documents) == len(SERVING_FILES)
    assert {d["metadata"]["namespace"] for d in documents} == {"team-a"}
    deployment = documents[2]
    assert _pinned_version(deployment) == ("2", "2", [V2.bento_uri])
    pod = deployment["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["initContainers"] + pod["containers"]} == {
        "registry.local/serving:9"}
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims == {documents[0]["metadata"]["name"]}  # the render is self-sufficient
    assert target_from_annotations(deployment["metadata"]["annotations"]) == V2
    service = documents[3]
    selector = service["spec"]["selector"]
    assert "kubecycle.io/track" not in selector  # stable and canary pods both get traffic
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_pin_patch_holds_only_the_pin():
    live = next(d for d in base_documents() if d["kind"] == "Deployment")
    live["metadata"]["namespace"] = NS
    body = pin_patch(live, V2, previous=V1)
    assert field_paths(body) == PIN_PATHS | PREVIOUS_PATHS
    assert body["metadata"]["name"] == DEPLOYMENT and body["metadata"]["namespace"] == NS
    assert field_paths(pin_patch(live, V2)) == PIN_PATHS  # no previous: none sent


@pytest.mark.parametrize("stable,percent,expected", [
    (2, 10, (1, 100 / 3)), (9, 10, (1, 10.0)), (3, 50, (3, 50.0)), (4, 20, (1, 20.0))])
def test_canary_share_is_a_replica_ratio(stable, percent, expected):
    replicas, share = canary_replicas(stable, percent)
    assert (replicas, pytest.approx(share)) == (expected[0], pytest.approx(expected[1]))


@pytest.mark.parametrize("percent", [0, 100, -5, 250])
def test_canary_share_out_of_range_is_refused(percent):
    with pytest.raises(DeployError, match="between 0 and 100"):
        canary_replicas(2, percent)


def _pin_applies(handler) -> list[tuple[dict, dict]]:
    return [(params, body) for _, params, body in handler.bodies]


def test_apply_rollback_and_canary_send_only_the_pin(kube_api):
    kubeconfig, handler = kube_api
    cluster = Cluster(api_client(kubeconfig))
    _install(cluster)

    first = rollout.apply(cluster, V1, NS, default_replicas=5)
    assert first.previous is None
    live = _deployment(cluster)
    assert _pinned_version(live) == ("1", "1", [V1.bento_uri])
    assert live["spec"]["replicas"] == 2  # the chart's replicas-when-pinned, from zero
    [(params, body)] = _pin_applies(handler)
    assert params == {"fieldManager": "kubecycle-deploy"}  # never forced
    assert field_paths(body) == PIN_PATHS
    [scale] = [r for r in list(handler) if r.method == "PATCH"
               and r.headers["Content-Type"] == "application/merge-patch+json"]
    assert scale.data == {"spec": {"replicas": 2}}
    assert scale.params == {"fieldManager": "kubecycle-deploy"}
    assert all(r.headers["Authorization"] == "Bearer t0ken" for r in list(handler))
    assert not [r for r in list(handler) if r.method == "PATCH" and r.params.get("force")]

    second = rollout.apply(cluster, V2, NS)
    assert second.previous == V1
    assert _pinned_version(_deployment(cluster)) == ("2", "2", [V2.bento_uri])
    assert field_paths(_pin_applies(handler)[-1][1]) == PIN_PATHS | PREVIOUS_PATHS
    again = rollout.apply(cluster, V2, NS)  # the same version again keeps the record
    assert again.previous == V1

    back = rollout.rollback(cluster, NS)
    assert (back.target, back.previous) == (V1, V2)
    assert _pinned_version(_deployment(cluster)) == ("1", "1", [V1.bento_uri])
    assert rollout.rollback(cluster, NS).target == V2  # rolling back twice returns
    assert all(field_paths(b) <= PIN_PATHS | PREVIOUS_PATHS and p == {
        "fieldManager": "kubecycle-deploy"} for p, b in _pin_applies(handler))

    canary = rollout.start_canary(cluster, V1, NS, 25, image="registry.local/serving:canary")
    live = _deployment(cluster, f"{DEPLOYMENT}-canary")
    assert live["spec"]["replicas"] == 1 and canary.canary_share == pytest.approx(100 / 3)
    labels = live["spec"]["template"]["metadata"]["labels"]
    assert labels["kubecycle.io/track"] == "canary" and labels["kubecycle.io/model-version"] == "1"
    assert live["spec"]["selector"]["matchLabels"]["kubecycle.io/track"] == "canary"
    assert not [k for k in live["metadata"]["annotations"] if k.startswith(PREVIOUS)]
    pod = live["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["containers"] + pod["initContainers"]} == {
        "registry.local/serving:canary"}
    assert _pinned_version(_deployment(cluster))[0] == "2"  # stable untouched
    assert _canary_status(cluster) == pytest.approx(100 / 3)

    promoted = rollout.promote_canary(cluster, NS)
    assert promoted.target == V1 and promoted.previous == V2
    assert _deployment(cluster, f"{DEPLOYMENT}-canary") is None
    assert _pinned_version(_deployment(cluster)) == ("1", "1", [V1.bento_uri])
    assert target_from_annotations(_deployment(cluster)["metadata"]["annotations"],
                                   PREVIOUS) == V2  # rollback after promote goes to V2
    assert rollout.rollback(cluster, NS).target == V2

    rollout.start_canary(cluster, V1, NS, 10)
    assert rollout.abort_canary(cluster, NS).target == V1
    assert _deployment(cluster, f"{DEPLOYMENT}-canary") is None
    assert _pinned_version(_deployment(cluster))[0] == "2"
    assert _deployment(cluster)["spec"]["replicas"] == 2  # scaled once, never again


def test_canary_share_counts_desired_replicas_not_surge_pods(kube_api):
    kubeconfig, _ = kube_api
    cluster = Cluster(api_client(kubeconfig))
    _install(cluster, replicas=None)  # kustomize: no count, defaulted by the server
    rollout.apply(cluster, V1, NS)
    cluster.scale("apps/v1", "Deployment", NS, DEPLOYMENT, 2)
    # a rollout in progress: 2 desired, 3 pods with the surge one
    cluster._call("PATCH", object_path("apps/v1", "Deployment", NS, DEPLOYMENT) + "/status",
                  body={"status": {"replicas": 3}}, content_type="application/merge-patch+json")
    result = rollout.start_canary(cluster, V2, NS, 25)
    assert _deployment(cluster, f"{DEPLOYMENT}-canary")["spec"]["replicas"] == 1
    assert result.canary_share == pytest.approx(100 / 3)  # 1 of 2 + 1, not 1 of 3 + 1
    assert _canary_status(cluster) == pytest.approx(100 / 3)
    pod = _deployment(cluster, f"{DEPLOYMENT}-canary")["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["containers"]} == {
        c["image"] for c in _deployment(cluster)["spec"]["template"]["spec"]["containers"]}


def test_clear_errors_for_what_cannot_be_done(kube_api, tmp_path):
    kubeconfig, handler = kube_api
    cluster = Cluster(api_client(kubeconfig))
    with pytest.raises(DeployError, match=r"no kubecycle-serving Deployment in namespace mlops; "
                       r"install the serving objects first: `helm install"):
        rollout.apply(cluster, V1, NS)
    with pytest.raises(DeployError, match="helm install kubecycle charts/kubecycle -n mlops"):
        rollout.rollback(cluster, NS)
    with pytest.raises(DeployError, match="deploy the champion first"):
        rollout.start_canary(cluster, V2, NS, 10)
    with pytest.raises(DeployError, match="no canary"):
        rollout.promote_canary(cluster, NS)
    with pytest.raises(DeployError, match="no canary"):
        rollout.abort_canary(cluster, NS)
    _install(cluster, claim=False)
    with pytest.raises(DeployError, match=r"mount PersistentVolumeClaim kubecycle-inference-log, "
                       r"which is missing in namespace mlops; .*kubectl apply -k manifests"):
        rollout.apply(cluster, V1, NS)
    assert handler.bodies == []  # nothing was sent
    with pytest.raises(DeployError, match="deploy the champion first"):
        rollout.start_canary(cluster, V2, NS, 10)  # installed, but no model pinned
    cluster._call("POST", object_path("v1", "PersistentVolumeClaim", NS), body=next(
        d for d in base_documents() if d["kind"] == "PersistentVolumeClaim"))
    rollout.apply(cluster, V1, NS)
    with pytest.raises(DeployError, match="no previous model version"):
        rollout.rollback(cluster, NS)
    handler.conflict = ('Apply failed with 1 conflict: conflict with "helm": '
                        '.metadata.annotations.kubecycle.io/model-version')
    with pytest.raises(DeployError, match=r"409 Apply failed .* \(another field manager owns a "
                       r"pin field .*helm upgrade --reuse-values"):
        rollout.apply(cluster, V2, NS)

    with pytest.raises(DeployError, match="no usable Kubernetes credentials"):
        api_client(str(tmp_path / "missing-kubeconfig"))
    with open(kubeconfig) as handle:
        settings = yaml.safe_load(handle)
    settings["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(yaml.safe_dump(settings))
    with pytest.raises(DeployError, match=r"cannot reach the Kubernetes API at http://127\.0\.0\.1:9"):
        rollout.apply(Cluster(api_client(str(unreachable))), V1, NS)


def _register_versions(server: str, name: str, count: int) -> None:
    mlflow.set_tracking_uri(server)
    client = mlflow.MlflowClient()
    client.create_registered_model(name)
    with mlflow.start_run() as run:
        mlflow.log_text("stand-in", "model/MLmodel")
    for _ in range(count):
        version = client.create_model_version(name, f"runs:/{run.info.run_id}/model",
                                              run.info.run_id)
    client.set_model_version_tag(name, "1", "kubecycle.bento_uri", f"s3://exported/{name}-1.bento")
    client.set_registered_model_alias(name, "champion", version.version)


def test_cli_renders_applies_and_rolls_back(kube_api, mlflow_server, tmp_path):
    kubeconfig, _ = kube_api
    _install(Cluster(api_client(kubeconfig)))
    _register_versions(mlflow_server, "deploy-cli", 2)
    runner = CliRunner()
    common = ["--tracking-uri", mlflow_server, "--namespace", NS]

    rendered = runner.invoke(app, ["deploy", "--render", "--model", "deploy-cli/1", *common])
    assert rendered.exit_code == 0, rendered.output
    documents = list(yaml.safe_load_all(rendered.stdout))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    assert _pinned_version(deployment) == ("1", "1", ["s3://exported/deploy-cli-1.bento"])
    unexported = runner.invoke(app, ["deploy", "--render", "--model", "deploy-cli/2", *common])
    assert unexported.exit_code == 1 and "no exported bento on record" in unexported.output

    for model, extra in (("deploy-cli/1", []),
                         ("deploy-cli@champion", ["--bento-uri", "s3://elsewhere/v2.bento"])):
        applied = runner.invoke(app, ["deploy", "--apply", "--model", model, "--kubeconfig",
                                      kubeconfig, *common, *extra])
        assert applied.exit_code == 0, applied.output
    assert "applied in mlops: deploy-cli v2; before: v1" in applied.stdout
    back = runner.invoke(app, ["deploy", "--rollback", "--kubeconfig", kubeconfig, "--namespace", NS])
    assert back.exit_code == 0 and "rolled back in mlops: deploy-cli v1" in back.stdout

    image = runner.invoke(app, ["deploy", "--rollback", "--image", "x/serving:2", "--kubeconfig",
                                kubeconfig, "--namespace", NS])
    assert image.exit_code == 1 and "--image sets the image of a --canary only" in image.output

    both = runner.invoke(app, ["deploy", "--apply", "--rollback"])
    assert both.exit_code == 2 and "choose one of" in both.output
    missing = runner.invoke(app, ["deploy", "--render", "--model", "deploy-cli/9", *common])
    assert missing.exit_code != 0 and "deploy-cli/9 not found" in missing.output
