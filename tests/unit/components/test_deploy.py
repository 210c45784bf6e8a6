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

from kubecycle.components.deploy import rollout
from kubecycle.components.deploy.cluster import Cluster, api_client
from kubecycle.components.deploy.core import (
    DEPLOYMENT,
    SERVING_FILES,
    ServingTarget,
    canary_replicas,
    render,
    target_from_annotations,
)
from kubecycle.errors import DeployError
from kubecycle.pipelines.cli import app

NS = "mlops"
V1 = ServingTarget("penguins-species", "1", "penguins-species", "s3://bentos/penguins-species-1.bento")
V2 = ServingTarget("penguins-species", "2", "penguins-species", "s3://bentos/penguins-species-2.bento")


class ApplyingEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus server-side apply's create-on-PATCH (a real API server creates
    the object when an apply patch names one that does not exist)."""

    async def _handle(self, request):
        content_type = request.headers.get("Content-Type", "")
        if (request.action == kmock.action.UPDATE and request.name
                and content_type.startswith("application/apply-patch")):
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self._objects or self._objects[key].deleted:
                    if key in self._objects:
                        self._objects[key].create(request.data)
                    else:
                        self._objects[key] = request.data
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
    yield str(kubeconfig), state["handler"]
    state["stop"]()
    thread.join(20)


def _deployment(cluster: Cluster, name: str = DEPLOYMENT) -> dict | None:
    return cluster.get("apps/v1", "Deployment", NS, name)


def _pinned_version(deployment: dict) -> tuple[str, str, list[str]]:
    pod = deployment["spec"]["template"]
    env = [e["value"] for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]
           for e in c.get("env", []) if e["name"] == "KUBECYCLE_BENTO_URI"]
    return (deployment["metadata"]["annotations"]["kubecycle.io/model-version"],
            pod["metadata"]["labels"]["kubecycle.io/model-version"], env)


def test_render_pins_every_serving_object(tmp_path):
    documents = render(V2, "team-a", image="registry.local/serving:9")
    assert [d["kind"] for d in documents] == ["ServiceAccount", "Deployment", "Service",
                                             "HorizontalPodAutoscaler", "PodDisruptionBudget",
                                             "NetworkPolicy"]
    assert len(documents) == len(SERVING_FILES)
    assert {d["metadata"]["namespace"] for d in documents} == {"team-a"}
    deployment = documents[1]
    assert _pinned_version(deployment) == ("2", "2", [V2.bento_uri])
    pod = deployment["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["initContainers"] + pod["containers"]} == {
        "registry.local/serving:9"}
    assert target_from_annotations(deployment["metadata"]["annotations"]) == V2
    service = documents[2]
    selector = service["spec"]["selector"]
    assert "kubecycle.io/track" not in selector  # stable and canary pods both get traffic
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("stable,percent,expected", [
    (2, 10, (1, 100 / 3)), (9, 10, (1, 10.0)), (3, 50, (3, 50.0)), (4, 20, (1, 20.0))])
def test_canary_share_is_a_replica_ratio(stable, percent, expected):
    replicas, share = canary_replicas(stable, percent)
    assert (replicas, pytest.approx(share)) == (expected[0], pytest.approx(expected[1]))


@pytest.mark.parametrize("percent", [0, 100, -5, 250])
def test_canary_share_out_of_range_is_refused(percent):
    with pytest.raises(DeployError, match="between 0 and 100"):
        canary_replicas(2, percent)


def test_apply_rollback_and_canary_through_the_api(kube_api):
    kubeconfig, handler = kube_api
    cluster = Cluster(api_client(kubeconfig))

    first = rollout.apply(cluster, V1, NS)
    assert first.previous is None and len(first.objects) == len(SERVING_FILES)
    assert _pinned_version(_deployment(cluster)) == ("1", "1", [V1.bento_uri])
    applies = [r for r in list(handler) if r.method == "PATCH"]
    assert len(applies) == len(SERVING_FILES) and all(
        r.headers["Content-Type"] == "application/apply-patch+yaml"
        and r.params.get("fieldManager") == "kubecycle" and r.params.get("force") == "true"
        and r.headers["Authorization"] == "Bearer t0ken" for r in applies)

    second = rollout.apply(cluster, V2, NS)
    assert second.previous == V1
    assert _pinned_version(_deployment(cluster)) == ("2", "2", [V2.bento_uri])

    back = rollout.rollback(cluster, NS)
    assert (back.target, back.previous) == (V1, V2)
    assert _pinned_version(_deployment(cluster)) == ("1", "1", [V1.bento_uri])
    assert rollout.rollback(cluster, NS).target == V2  # rolling back twice returns

    canary = rollout.start_canary(cluster, V1, NS, 25)
    live = _deployment(cluster, f"{DEPLOYMENT}-canary")
    assert live["spec"]["replicas"] == 1 and canary.canary_share == pytest.approx(100 / 3)
    labels = live["spec"]["template"]["metadata"]["labels"]
    assert labels["kubecycle.io/track"] == "canary" and labels["kubecycle.io/model-version"] == "1"
    assert live["spec"]["selector"]["matchLabels"]["kubecycle.io/track"] == "canary"
    assert _pinned_version(_deployment(cluster))[0] == "2"  # stable untouched

    promoted = rollout.promote_canary(cluster, NS)
    assert promoted.target == V1 and promoted.previous == V2
    assert _deployment(cluster, f"{DEPLOYMENT}-canary") is None
    assert _pinned_version(_deployment(cluster)) == ("1", "1", [V1.bento_uri])

    rollout.start_canary(cluster, V2, NS, 10)
    assert rollout.abort_canary(cluster, NS).target == V2
    assert _deployment(cluster, f"{DEPLOYMENT}-canary") is None
    assert _pinned_version(_deployment(cluster))[0] == "1"


def test_clear_errors_for_what_cannot_be_done(kube_api, tmp_path):
    kubeconfig, _ = kube_api
    cluster = Cluster(api_client(kubeconfig))
    with pytest.raises(DeployError, match="deploy one with"):
        rollout.rollback(cluster, NS)
    with pytest.raises(DeployError, match="deploy the champion first"):
        rollout.start_canary(cluster, V2, NS, 10)
    with pytest.raises(DeployError, match="no canary"):
        rollout.promote_canary(cluster, NS)
    with pytest.raises(DeployError, match="no canary"):
        rollout.abort_canary(cluster, NS)
    rollout.apply(cluster, V1, NS)
    with pytest.raises(DeployError, match="no previous model version"):
        rollout.rollback(cluster, NS)

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

    both = runner.invoke(app, ["deploy", "--apply", "--rollback"])
    assert both.exit_code == 2 and "choose one of" in both.output
    missing = runner.invoke(app, ["deploy", "--render", "--model", "deploy-cli/9", *common])
    assert missing.exit_code != 0 and "deploy-cli/9 not found" in missing.output
