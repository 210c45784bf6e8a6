"""The serving resources (Deployment, Service, HPA, PDB, NetworkPolicy, ServiceAccount) as the
chart renders them and as the kustomize base and overlays hold them: probes, selectors that
match the pods (a canary's too), secrets only by reference, replicas left to the HPA."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from .conftest import REPO

CHART = REPO / "charts" / "kubecycle"
NAME = "kubecycle-serving"
SELECTOR = {"app.kubernetes.io/name": "kubecycle", "app.kubernetes.io/instance": "kubecycle",
            "app.kubernetes.io/component": "serving"}


def _documents(text: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


def _chart(k8s, *values: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = k8s("helm", "template", "kubecycle", str(CHART), "-n", "mlops", *values)
    assert out.returncode == 0, out.stderr
    return _documents(out.stdout)


@pytest.fixture(scope="module", params=["chart", "base", "kind", "production"])
def serving(request, k8s) -> dict[tuple[str, str], dict[str, Any]]:
    """The serving objects from the chart's defaults, the base and each overlay."""
    if request.param == "chart":
        return _chart(k8s)
    folder = REPO / "manifests" / ("base" if request.param == "base" else
                                   f"overlays/{request.param}")
    out = k8s("kubectl", "kustomize", str(folder))
    assert out.returncode == 0, out.stderr
    return _documents(out.stdout)


def _pod(documents) -> dict[str, Any]:
    return documents[("Deployment", NAME)]["spec"]["template"]


def test_probes_hit_readyz_and_livez_on_the_named_port(serving):
    pod = _pod(serving)["spec"]
    serve = pod["containers"][0]
    assert serve["name"] == "serve"
    assert [p["name"] for p in serve["ports"]] == ["http"]
    paths = {kind: serve[f"{kind}Probe"]["httpGet"] for kind in ("startup", "readiness", "liveness")}
    assert paths == {"startup": {"path": "/livez", "port": "http"},
                     "readiness": {"path": "/readyz", "port": "http"},
                     "liveness": {"path": "/livez", "port": "http"}}
    startup = serve["startupProbe"]
    assert 90 <= startup["periodSeconds"] * startup["failureThreshold"] <= 300  # about 2 min
    assert pod["terminationGracePeriodSeconds"] >= 15
    assert serve["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"


def test_import_then_serve_the_same_bento_store(serving):
    pod = _pod(serving)["spec"]
    [init], [serve] = pod["initContainers"], pod["containers"]
    assert init["name"] == "import-bento" and init["image"] == serve["image"]
    assert init["command"] == ["bentoml", "import", "$(KUBECYCLE_BENTO_URI)"]
    assert serve["command"] == ["bentoml", "serve", "$(KUBECYCLE_BENTO_NAME)", "--host",
                                "0.0.0.0", "--port", "3000"]
    # no model pinned: the pin's env entries are declared without value (kubecycle deploy
    # owns the values), so Helm and kustomize never set a field the pin sets
    init_env = {e["name"]: e.get("value") for e in init["env"]}
    assert init_env == {"KUBECYCLE_BENTO_URI": None, "BENTOML_HOME": "/bentoml"}
    env = {e["name"]: e.get("value") for e in serve["env"]}
    assert env == {"KUBECYCLE_BENTO_NAME": None, "BENTOML_HOME": "/bentoml",
                   "KUBECYCLE_INFERENCE_LOG": "/data/inference-log",
                   "KUBECYCLE_MAX_BATCH": "1000", "KUBECYCLE_EXTRA_FIELDS": "forbid"}
    mounts = {c["name"]: {m["name"]: m for m in c["volumeMounts"]} for c in (init, serve)}
    assert mounts["import-bento"]["bentoml"]["mountPath"] == "/bentoml"
    assert mounts["serve"]["bentoml"]["mountPath"] == "/bentoml"
    log = mounts["serve"]["inference-log"]
    assert log["mountPath"] == "/data/inference-log" and not log.get("readOnly")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["bentoml"] == {"name": "bentoml", "emptyDir": {}}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    claim = volumes["inference-log"]["persistentVolumeClaim"]["claimName"]
    assert claim == "kubecycle-inference-log"
    assert ("PersistentVolumeClaim", claim) in serving
    cronjob = serving[("CronJob", "kubecycle-monitoring")]["spec"]["jobTemplate"]["spec"]
    monitor = {v["name"]: v for v in cronjob["template"]["spec"]["volumes"]}
    assert monitor["inference-log"]["persistentVolumeClaim"] == {"claimName": claim,
                                                                "readOnly": True}


def test_secrets_only_by_reference(serving):
    pod = _pod(serving)["spec"]
    [init], [serve] = pod["initContainers"], pod["containers"]
    assert init["envFrom"] == [{"secretRef": {"name": "kubecycle-bento-store", "optional": True}}]
    assert "envFrom" not in serve  # the server needs no store credentials
    for container in (init, serve):
        for item in container["env"]:
            assert not any(word in item["name"] for word in ("KEY", "SECRET", "PASSWORD",
                                                             "TOKEN")), item
    assert not [d for d in serving.values() if d["kind"] == "Secret"
                and d["metadata"]["name"] == "kubecycle-bento-store"]


def test_selectors_match_the_stable_and_canary_pods(serving):
    deployment = serving[("Deployment", NAME)]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels == {**SELECTOR, "kubecycle.io/track": "stable"}  # model-version: the pin's
    assert deployment["spec"]["selector"]["matchLabels"] == {**SELECTOR,
                                                             "kubecycle.io/track": "stable"}
    canary = {**labels, "kubecycle.io/track": "canary"}
    service = serving[("Service", NAME)]["spec"]
    assert service["selector"] == SELECTOR  # no track label: canaries get their share
    assert service["ports"] == [{"name": "http", "port": 3000, "targetPort": "http"}]
    selectors = [service["selector"],
                 serving[("NetworkPolicy", NAME)]["spec"]["podSelector"]["matchLabels"]]
    if ("PodDisruptionBudget", NAME) in serving:
        selectors.append(serving[("PodDisruptionBudget", NAME)]["spec"]["selector"]["matchLabels"])
    for selector in selectors:
        assert selector.items() <= labels.items() and selector.items() <= canary.items()
    [spread] = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()


def test_the_hpa_owns_the_replica_count(serving):
    deployment = serving[("Deployment", NAME)]
    hpa = serving[("HorizontalPodAutoscaler", NAME)]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": NAME}
    # an apply or upgrade never resets the HPA; the chart keeps an unpinned Deployment at zero
    # (helm template sees no live pin), kustomize cannot know and leaves the count out
    assert deployment["spec"].get("replicas", 0) == 0
    assert int(deployment["metadata"]["annotations"]["kubecycle.io/replicas-when-pinned"]) == 2
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    requests = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests["cpu"]  # utilisation is relative to the request


def test_serving_identity_and_network(serving):
    account = serving[("ServiceAccount", NAME)]
    assert account["automountServiceAccountToken"] is False
    pod = _pod(serving)["spec"]
    assert pod["serviceAccountName"] == NAME and pod["automountServiceAccountToken"] is False
    assert not [d for d in serving.values() if d["kind"] in ("Role", "RoleBinding")]
    policy = serving[("NetworkPolicy", NAME)]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert {"podSelector": {}} in rule["from"]


def test_base_leaves_the_pin_to_kubecycle_deploy():
    """kubecycle deploy --render loads these files by name; the base pins no model."""
    base = REPO / "manifests" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    files = ["serving-serviceaccount.yaml", "serving-deployment.yaml", "serving-service.yaml",
             "serving-hpa.yaml", "serving-pdb.yaml", "networkpolicy-serving.yaml"]
    assert set(files) <= set(kustomization["resources"])
    deployment = yaml.safe_load((base / "serving-deployment.yaml").read_text())
    meta = deployment["metadata"]
    assert meta["labels"] == {"app.kubernetes.io/name": "kubecycle",
                              "app.kubernetes.io/component": "serving",
                              "kubecycle.io/track": "stable"}
    assert not [k for k in meta["annotations"] if k.startswith("kubecycle.io/model-")]
    assert "kubecycle.io/model-version" not in deployment["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"]


def test_autoscaling_off_renders_fixed_replicas_and_no_hpa(k8s):
    fixed = ("--set", "serving.autoscaling.enabled=false", "--set", "serving.replicas=3")
    documents = _chart(k8s, *fixed)
    deployment = documents[("Deployment", NAME)]
    assert deployment["spec"]["replicas"] == 0  # no model yet: no pods
    assert deployment["metadata"]["annotations"]["kubecycle.io/replicas-when-pinned"] == "3"
    assert ("HorizontalPodAutoscaler", NAME) not in documents
    pinned = _chart(k8s, *fixed, "--set", "serving.model.name=m", "--set", "serving.model.version=4")
    assert pinned[("Deployment", NAME)]["spec"]["replicas"] == 3


def test_pinning_another_version_moves_the_archive_and_the_labels(k8s):
    from kubecycle.registry import bento_name

    documents = _chart(k8s, "--set", "serving.model.name=Penguins_Species.V2",
                       "--set", "serving.model.version=12",
                       "--set", "serving.bentoStore=s3://bucket/bentos")
    deployment = documents[("Deployment", NAME)]
    pod = deployment["spec"]["template"]
    name = bento_name("Penguins_Species.V2")
    uri = f"s3://bucket/bentos/{name}-12.bento"
    assert pod["spec"]["initContainers"][0]["env"][0] == {"name": "KUBECYCLE_BENTO_URI",
                                                          "value": uri}
    assert pod["spec"]["containers"][0]["env"][0] == {"name": "KUBECYCLE_BENTO_NAME",
                                                      "value": name}
    assert pod["metadata"]["labels"]["kubecycle.io/model-version"] == "12"
    for notes in (deployment["metadata"]["annotations"], pod["metadata"]["annotations"]):
        assert notes["kubecycle.io/model-version"] == "12"
        assert notes["kubecycle.io/bento-uri"] == uri


def test_serving_disabled_leaves_no_serving_object(k8s):
    documents = _chart(k8s, "--set", "serving.enabled=false",
                       "--set", "metrics.serviceMonitor.enabled=true",
                       "--set", "metrics.prometheusRule.enabled=true")
    assert not [k for k in documents if "serving" in k[1]]
    rule = documents[("PrometheusRule", "kubecycle")]
    assert "bentoml_service_request_total" not in yaml.safe_dump(rule)


def test_metrics_scrape_and_alert_on_serving(k8s):
    documents = _chart(k8s, "--set", "metrics.serviceMonitor.enabled=true",
                       "--set", "metrics.prometheusRule.enabled=true")
    monitor = documents[("ServiceMonitor", NAME)]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= documents[
        ("Service", NAME)]["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] == "http" and monitor["endpoints"][0]["path"] == "/metrics"
    groups = {g["name"]: g for g in documents[("PrometheusRule", "kubecycle")]["spec"]["groups"]}
    [alert] = groups["kubecycle.serving"]["rules"]
    assert 'http_response_code=~"5.."' in alert["expr"] and 'job="kubecycle-serving"' in alert["expr"]
    assert alert["expr"].strip().endswith("> 0.05")


def test_inference_log_access_modes_are_a_value(k8s):
    documents = _chart(k8s, "--set", "monitoring.inferenceLog.accessModes={ReadWriteMany}",
                       "--set", "monitoring.enabled=false")
    claim = documents[("PersistentVolumeClaim", "kubecycle-inference-log")]  # serving writes
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    documents = _chart(k8s, "--set", "monitoring.enabled=false",
                       "--set", "serving.inferenceLog.enabled=false")
    assert ("PersistentVolumeClaim", "kubecycle-inference-log") not in documents


def test_notes_say_how_to_call_and_pin(k8s):
    out = k8s("helm", "install", "kubecycle", str(CHART), "-n", "mlops", "--dry-run=client")
    assert out.returncode == 0, out.stderr
    notes = out.stdout[out.stdout.index("NOTES:"):]
    assert "port-forward svc/kubecycle-serving 3000:3000" in notes
    assert "POST http://localhost:3000/predict" in notes and '{"record": {' in notes
    assert "no model pinned yet" in notes
    assert "kubecycle deploy --apply --model NAME/VERSION --namespace mlops" in notes
    assert "--set-string serving.model.version=VERSION" in notes
    assert "ReadWriteMany" in notes  # the default claim is ReadWriteOnce: said so


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "serving.extraFields=maybe"], "extraFields"),
        (["--set", "serving.runtime=gpu"], "runtime"),
        (["--set", "serving.autoscaling.minReplicas=0"], "minReplicas"),
        (["--set", "serving.autoscaling.minReplicas=7"], "must not exceed"),
        (["--set", "serving.model.version=latest"], "version"),
        (["--set", "serving.model.version=3"], "needs serving.model.name"),
        (["--set", "serving.bentoStore=kubecycle-bentos"], "bentoStore"),
        (["--set", "serving.replicas=2", "--set", "serving.colour=blue"],
         "additional properties 'colour' not allowed"),
        (["--set", "monitoring.inferenceLog.accessModes={ReadOnlyMany}"], "accessModes"),
    ],
)
def test_bad_serving_values_are_refused(k8s, values, message):
    result = k8s("helm", "template", "rel", str(CHART), *values)
    assert result.returncode != 0
    assert message in result.stderr


def test_access_log_is_a_value_off_by_default(k8s):
    def env(*values: str) -> dict[str, Any]:
        [serve] = _pod(_chart(k8s, *values))["spec"]["containers"]
        return {e["name"]: e.get("value") for e in serve["env"]}

    assert "KUBECYCLE_ACCESS_LOG" not in env()  # the service's default: off, the hot path on
    assert env("--set", "serving.accessLog=true")["KUBECYCLE_ACCESS_LOG"] == "true"
