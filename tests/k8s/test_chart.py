"""The Helm chart: lint, render with several values files, and check what it renders with
real tools (yamllint, kubernetes-validate, checkov) and the restricted Pod Security Standard."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .conftest import REPO
from .policy import check_restricted, checkov_clean, validate_strict, yamllint_clean

CHART = REPO / "charts" / "kubecycle"
VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


@pytest.fixture(scope="module", params=VALUES, ids=lambda p: p.stem)
def rendered(request, k8s, tmp_path_factory) -> Path:
    values = request.param
    lint = k8s("helm", "lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    out = k8s("helm", "template", "rel", str(CHART), "-n", "mlops", "-f", str(values))
    assert out.returncode == 0, out.stderr
    path = tmp_path_factory.mktemp(values.stem) / "rendered.yaml"
    path.write_text(out.stdout)
    return path


def test_yamllint(rendered, k8s):
    yamllint_clean(k8s, rendered)


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_schemas(rendered, k8s, version):
    validate_strict(k8s, rendered, version)


def test_restricted_pod_security(rendered):
    documents = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    assert check_restricted(documents) == []
    assert any(d["kind"] == "Deployment" for d in documents)


def test_checkov(rendered, k8s):
    checkov_clean(k8s, rendered.parent, 100)


def test_mlflow_wiring_defaults(rendered):
    documents = {(d["kind"], d["metadata"]["name"]): d
                 for d in yaml.safe_load_all(rendered.read_text()) if d}
    deployment = documents[("Deployment", "rel-kubecycle-mlflow")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    hosts = next(a for a in container["args"] if a.startswith("--allowed-hosts="))
    assert "rel-kubecycle-mlflow,rel-kubecycle-mlflow:*" in hosts
    assert "rel-kubecycle-mlflow.mlops.svc.cluster.local:*" in hosts
    env = {e["name"]: e for e in container["env"]}
    assert "value" not in env["MLFLOW_BACKEND_STORE_URI"] or "$(POSTGRES_PASSWORD)" in env[
        "MLFLOW_BACKEND_STORE_URI"]["value"]
    for item in container["env"]:  # secrets only by reference
        assert "PASSWORD" not in item["name"] or "valueFrom" in item
        assert "SECRET" not in item["name"] or "valueFrom" in item


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "mlflow.backend.type=external"], "needs mlflow.backend.external.existingSecret"),
        (["--set", "mlflow.artifacts.type=s3"], "needs mlflow.artifacts.s3.destination"),
        (["--set", "mlflow.replicas=3"], "needs mlflow.backend.type=external"),
        (["--set", "mlflow.colour=blue"], "additional properties 'colour' not allowed"),
        (["--set", "mlflow.resources.requests.cpu=lots"], "cpu"),
    ],
)
def test_bad_values_are_refused(k8s, values, message):
    result = k8s("helm", "template", "rel", str(CHART), *values)
    assert result.returncode != 0
    assert message in result.stderr


def test_helm_test_hooks_call_mlflow_and_serving(k8s):
    unpinned = k8s("helm", "template", "rel", str(CHART), "-n", "mlops")
    assert "rel-kubecycle-serving-test" not in unpinned.stdout  # no model: no pods to call
    out = k8s("helm", "template", "rel", str(CHART), "-n", "mlops",
              "--set", "serving.model.name=m", "--set", "serving.model.version=1")
    pods = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out.stdout)
            if d and d["kind"] == "Pod"}
    assert {n: p["metadata"]["annotations"]["helm.sh/hook"] for n, p in pods.items()} == {
        "rel-kubecycle-mlflow-test": "test", "rel-kubecycle-serving-test": "test"}
    script = pods["rel-kubecycle-mlflow-test"]["spec"]["containers"][0]["args"][0]
    assert "http://rel-kubecycle-mlflow:5000" in script and "/health" in script
    serving = pods["rel-kubecycle-serving-test"]["spec"]["containers"][0]
    assert "http://rel-kubecycle-serving:3000" in serving["args"][0]
    assert '"/readyz"' in serving["args"][0]
    assert serving["image"] == "ghcr.io/kubecycle/serving:0.1.0"
    off = k8s("helm", "template", "rel", str(CHART), "--set", "serving.enabled=false")
    assert "rel-kubecycle-serving-test" not in off.stdout


def test_monitoring_cronjob(k8s):
    out = k8s("helm", "template", "rel", str(CHART), "-n", "mlops",
              "--set", "monitoring.pushgateway=http://pushgateway.monitoring:9091",
              "--set", "monitoring.existingSecret=monitor-credentials")
    documents = [d for d in yaml.safe_load_all(out.stdout) if d]
    cronjob = next(d for d in documents if d["kind"] == "CronJob")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] == 300
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2 and job["activeDeadlineSeconds"] == 3600
    assert job["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2]
    pod = job["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    script = container["args"][0]
    assert "kubecycle monitor /etc/kubecycle/config.yaml" in script
    assert '--tracking-uri "http://rel-kubecycle-mlflow.mlops:5000"' in script
    assert '--push-metrics "http://pushgateway.monitoring:9091"' in script
    assert 'if [ "$status" -eq 3 ]; then exit 0; fi' in script  # drift is not a failed job
    assert container["envFrom"] == [{"secretRef": {"name": "monitor-credentials"}}]
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]["config.yaml"]
    from kubecycle.config import parse_config

    assert parse_config(yaml.safe_load(config)).monitoring.retrain is True


def test_inference_log_in_an_object_store(k8s):
    values = CHART / "ci" / "inference-log-s3-values.yaml"
    out = k8s("helm", "template", "rel", str(CHART), "-n", "mlops", "-f", str(values))
    assert out.returncode == 0, out.stderr
    documents = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert not [d for d in documents if d["kind"] == "PersistentVolumeClaim"
                and "inference-log" in d["metadata"]["name"]]
    serving = next(d for d in documents if d["kind"] == "Deployment"
                   and d["metadata"]["labels"]["app.kubernetes.io/component"] == "serving")
    serve = next(c for c in serving["spec"]["template"]["spec"]["containers"]
                 if c["name"] == "serve")
    assert {"name": "KUBECYCLE_INFERENCE_LOG", "value": "s3://kubecycle-inference/penguins"} in \
        serve["env"]
    assert serve["envFrom"] == [{"secretRef": {"name": "inference-log-store"}}]
    cronjob = next(d for d in documents if d["kind"] == "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert '--current "s3://kubecycle-inference/penguins"' in pod["containers"][0]["args"][0]
    assert pod["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "monitor-credentials"}},
        {"secretRef": {"name": "inference-log-store"}}]
    for spec in (serving["spec"]["template"]["spec"], pod):
        assert "inference-log" not in [v["name"] for v in spec["volumes"]]


def test_inference_log_uri_must_be_an_object_store(k8s):
    out = k8s("helm", "template", "rel", str(CHART), "-n", "mlops",
              "--set", "monitoring.inferenceLog.uri=/mnt/log")
    assert out.returncode != 0 and "inferenceLog" in out.stderr and "uri" in out.stderr


def _documents(k8s, *args: str) -> list[dict]:
    """The chart rendered (release rel, namespace mlops) with these values, as documents."""
    out = k8s("helm", "template", "rel", str(CHART), "-n", "mlops", *args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_scoring_is_off_by_default_and_a_cronjob_with_a_schedule(k8s):
    default = k8s("helm", "template", "rel", str(CHART), "-n", "mlops")
    assert "rel-kubecycle-scoring" not in default.stdout
    documents = _documents(k8s, "-f", str(CHART / "ci" / "scoring-values.yaml"))
    cronjob = next(d for d in documents if d["kind"] == "CronJob"
                   and d["metadata"]["name"] == "rel-kubecycle-scoring")
    assert cronjob["spec"]["schedule"] == "0 2 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["podFailurePolicy"]["rules"][0]["onExitCodes"] == {
        "containerName": "score", "operator": "In", "values": [2]}
    container = job["template"]["spec"]["containers"][0]
    assert container["command"] == ["kubecycle", "predict", "/etc/kubecycle/config.yaml"]
    assert container["args"] == ["--input=s3://kubecycle-batch/incoming/",
                                 "--output=s3://kubecycle-batch/scores/penguins.parquet",
                                 "--tracking-uri=http://rel-kubecycle-mlflow.mlops:5000",
                                 "--model=penguins-species@champion"]
    assert container["envFrom"] == [{"secretRef": {"name": "batch-store"}}]
    config = next(d for d in documents if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == "rel-kubecycle-scoring")["data"]["config.yaml"]
    from kubecycle.config import parse_config

    assert parse_config(yaml.safe_load(config)).scoring.max_reject_share == 0.01


def test_scoring_without_a_schedule_is_a_job_per_revision_on_a_claim(k8s):
    documents = _documents(k8s, "--set", "scoring.enabled=true,scoring.input=/data/scoring/in/,"
                                         "scoring.output=/data/scoring/out.csv,"
                                         "scoring.existingClaim=batch")
    job = next(d for d in documents if d["kind"] == "Job")
    assert job["metadata"]["name"] == "rel-kubecycle-scoring-1"
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
    pod = job["spec"]["template"]["spec"]
    assert {"name": "data", "mountPath": "/data/scoring"} in pod["containers"][0]["volumeMounts"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "batch"}} in pod["volumes"]


@pytest.mark.parametrize(("values", "named"), [
    (["scoring.enabled=true"], "input"),
    (["scoring.enabled=true,scoring.input=s3://b/in/,scoring.output=s3://b/out.txt"], "output"),
    (["scoring.enabled=true,scoring.input=/etc/passwd,scoring.output=s3://b/o.csv"], "input"),
])
def test_bad_scoring_values_are_refused(k8s, values, named):
    out = k8s("helm", "template", "rel", str(CHART), "--set", *values)
    assert out.returncode != 0 and "scoring" in out.stderr and named in out.stderr


def test_grafana_dashboard_configmap_carries_the_shipped_json(k8s):
    import json

    off = k8s("helm", "template", "rel", str(CHART), "-n", "mlops")
    assert "rel-kubecycle-dashboard" not in off.stdout
    config_map = next(d for d in _documents(k8s, "-f", str(CHART / "ci" / "dashboard-values.yaml"))
                      if d["metadata"]["name"] == "rel-kubecycle-dashboard")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "kubecycle.json").read_text())
    assert json.loads(config_map["data"]["kubecycle.json"]) == shipped


def test_evidently_workspace_claim_job_flag_and_read_only_ui(k8s):
    documents = _documents(k8s, "-f", str(CHART / "ci" / "evidently-values.yaml"))
    claim = next(d for d in documents if d["kind"] == "PersistentVolumeClaim"
                 and d["metadata"]["name"] == "rel-kubecycle-evidently")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    cronjob = next(d for d in documents if d["kind"] == "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "--workspace /data/evidently" in pod["containers"][0]["args"][0]
    assert {"name": "evidently", "mountPath": "/data/evidently"} in pod["containers"][0][
        "volumeMounts"]
    ui = next(d for d in documents if d["kind"] == "Deployment"
              and d["metadata"]["name"] == "rel-kubecycle-evidently")
    container = ui["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["evidently", "ui", "--workspace", "/data/evidently"]
    assert {"name": "workspace", "mountPath": "/data/evidently", "readOnly": True} in container[
        "volumeMounts"]
    off = k8s("helm", "template", "rel", str(CHART), "-n", "mlops")
    assert "rel-kubecycle-evidently" not in off.stdout
