"""`kubecycle submit` against a real HTTP stand-in of the KFP v2beta1 REST API (kfp.Client unpatched)."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from typer.testing import CliRunner

from kubecycle.config import parse_config
from kubecycle.errors import SubmitError
from kubecycle.pipelines.cli import app
from kubecycle.pipelines.submit import cron_with_seconds, submit
from kubecycle.tracking import free_port

API = "/apis/v2beta1"  # the stand-in (tests/conftest.py) serves this prefix


@pytest.fixture(autouse=True)
def _no_kfp_environment(monkeypatch):
    for name in ("KUBECYCLE_KFP_TOKEN", "KF_PIPELINES_TOKEN", "KF_PIPELINES_UI_ENDPOINT",
                 "KF_PIPELINES_ENDPOINT", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
                 "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cfg():
    return parse_config({"data": {"source": "s3://bucket/data.csv", "target": "species"},
                         "mlflow": {"experiment": "penguins"}})


def _spec(body: dict) -> pipeline_spec_pb2.PipelineSpec:
    return json_format.ParseDict(body["pipeline_spec"], pipeline_spec_pb2.PipelineSpec())


def test_one_run_carries_the_compiled_pipeline_and_the_experiment(kfp_api, cfg):
    result = submit(cfg, kfp_api.url, experiment="churn", tracking_uri="http://mlflow:5000")

    [created] = kfp_api.sent("POST", f"{API}/experiments")
    assert created.body["display_name"] == "churn"
    [listed] = kfp_api.sent("GET", f"{API}/experiments")  # looked up by name first
    assert json.loads(listed.query["filter"][0])["predicates"] == [
        {"operation": 1, "key": "display_name", "stringValue": "churn"}]
    [run] = kfp_api.sent("POST", f"{API}/runs")
    spec = _spec(run.body)
    assert spec.pipeline_info.name == "kubecycle-training"
    defaults = spec.root.input_definitions.parameters
    assert json.loads(defaults["config"].default_value.string_value) == json.loads(cfg.to_json())
    assert defaults["tracking_uri"].default_value.string_value == "http://mlflow:5000"
    assert run.body["experiment_id"] == result.experiment_id == next(iter(kfp_api.experiments))
    assert result.run_id == next(iter(kfp_api.runs))
    assert result.url == f"{kfp_api.url}/#/runs/details/{result.run_id}"
    assert result.recurring_run_id is None and result.state is None
    assert not kfp_api.sent("GET", f"{API}/runs/.+")  # not waited for
    assert all("authorization" not in r.headers for r in kfp_api.requests)


def test_an_existing_experiment_is_reused(kfp_api, cfg):
    kfp_api.experiments["e-1"] = {"experiment_id": "e-1", "display_name": "kubecycle"}
    result = submit(cfg, kfp_api.url)
    assert result.experiment_id == "e-1"
    assert not kfp_api.sent("POST", f"{API}/experiments")
    assert kfp_api.sent("POST", f"{API}/runs")[0].body["experiment_id"] == "e-1"


@pytest.mark.parametrize("how", ["option", "env"])
def test_the_token_is_sent_as_bearer_on_every_request(kfp_api, cfg, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("KF_PIPELINES_TOKEN", "s3cret")
    submit(cfg, kfp_api.url, token="s3cret" if how == "option" else None)
    assert {r.headers.get("authorization") for r in kfp_api.requests} == {"Bearer s3cret"}
    assert kfp_api.sent("POST", f"{API}/runs")


def test_schedule_creates_a_recurring_run_with_six_field_cron(kfp_api, cfg):
    result = submit(cfg, kfp_api.url, schedule="*/5 * * * *")

    assert not kfp_api.sent("POST", f"{API}/runs")
    [recurring] = kfp_api.sent("POST", f"{API}/recurringruns")
    assert recurring.body["trigger"] == {"cron_schedule": {"cron": "0 */5 * * * *"}}
    assert recurring.body["mode"] == "ENABLE" and recurring.body["max_concurrency"] == 1
    assert recurring.body["no_catchup"] is True
    assert _spec(recurring.body).pipeline_info.name == "kubecycle-training"
    assert recurring.body["experiment_id"] == result.experiment_id
    assert result.cron == "0 */5 * * * *" and result.run_id is None
    assert result.url == f"{kfp_api.url}/#/recurringrun/details/{result.recurring_run_id}"


@pytest.mark.parametrize(("schedule", "cron"), [
    ("0 3 * * *", "0 0 3 * * *"),
    ("*/15 8-18 * * MON-FRI", "0 */15 8-18 * * MON-FRI"),
    ("30 2 1,15 jan-jun ?", "0 30 2 1,15 jan-jun ?"),
])
def test_cron_gets_a_seconds_field(schedule, cron):
    assert cron_with_seconds(schedule) == cron


@pytest.mark.parametrize(("schedule", "problem"), [
    ("0 3 * *", "4 fields"),
    ("0 0 3 * * *", "6 fields"),
    ("61 * * * *", "minute '61' is outside 0-59"),
    ("0 5-2 * * *", "runs backwards"),
    ("*/0 * * * *", "at least 1"),
    ("? * * * *", "'?' is only allowed"),
    ("0 3 * FOO *", "month 'FOO' is not a number in 1-12 or a name JAN-DEC"),
    ("0 3 * * 1;2", "day-of-week field '1;2' is malformed"),
    ("every day", "2 fields"),
])
def test_malformed_schedule_is_refused_before_contacting_the_api(kfp_api, cfg, schedule, problem):
    with pytest.raises(SubmitError, match="--schedule") as caught:
        submit(cfg, kfp_api.url, schedule=schedule)
    assert problem in str(caught.value)
    assert not kfp_api.requests


def test_wait_polls_until_succeeded(kfp_api, cfg):
    kfp_api.run_states = ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"]
    seen = []
    result = submit(cfg, kfp_api.url, wait=True, poll_seconds=0.01, on_submitted=seen.append)
    assert result.state == "SUCCEEDED"
    assert seen and seen[0].run_id == result.run_id and seen[0].state is None
    assert len(kfp_api.sent("GET", f"{API}/runs/{result.run_id}")) == 4


@pytest.mark.parametrize(("state", "detail"), [("FAILED", "task train-model failed"),
                                               ("CANCELED", "")])
def test_wait_fails_on_a_final_state_other_than_succeeded(kfp_api, cfg, state, detail):
    kfp_api.run_states = ["RUNNING", state]
    with pytest.raises(SubmitError, match=rf"run \S+ ended {state}") as caught:
        submit(cfg, kfp_api.url, wait=True, poll_seconds=0.01)
    assert detail in str(caught.value)
    assert f"{kfp_api.url}/#/runs/details/" in str(caught.value)


def test_wait_gives_up_after_the_timeout(kfp_api, cfg):
    kfp_api.run_states = ["RUNNING"]
    with pytest.raises(SubmitError, match=r"did not finish within 0.2 s \(still RUNNING\)"):
        submit(cfg, kfp_api.url, wait=True, timeout=0.2, poll_seconds=0.05)


def test_wait_and_schedule_exclude_each_other(kfp_api, cfg):
    with pytest.raises(SubmitError, match="--wait"):
        submit(cfg, kfp_api.url, schedule="0 3 * * *", wait=True)
    assert not kfp_api.requests


def test_unreachable_host_is_named(cfg):
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SubmitError) as caught:
        submit(cfg, host)
    assert str(caught.value).startswith(f"KFP API at {host} is unreachable")
    assert "check --host" in str(caught.value)


def test_a_rejected_run_reports_status_and_server_message(kfp_api, cfg):
    kfp_api.failures["POST", "create run"] = (400, "Invalid input error: pipeline spec is invalid")
    with pytest.raises(SubmitError) as caught:
        submit(cfg, kfp_api.url)
    message = str(caught.value)
    assert message == (f"KFP API at {kfp_api.url} refused to create the run: HTTP 400 Bad Request: "
                       "Invalid input error: pipeline spec is invalid")


def test_an_unauthorized_answer_asks_for_a_token(kfp_api, cfg):
    kfp_api.failures["GET", "healthz"] = (401, "Jwt is missing")
    with pytest.raises(SubmitError, match=r"HTTP 401 Unauthorized: Jwt is missing; pass a valid --token"):
        submit(cfg, kfp_api.url)
    assert len(kfp_api.requests) == 1  # one probe, not kfp's five retries


def test_multi_user_api_needs_a_namespace(kfp_api, cfg):
    kfp_api.routes["GET", f"{API}/healthz"] = ("healthz", lambda request: {"multi_user": True})
    with pytest.raises(SubmitError, match="multi-user; pass --namespace"):
        submit(cfg, kfp_api.url)
    submit(cfg, kfp_api.url, namespace="team-a")
    assert kfp_api.sent("POST", f"{API}/experiments")[0].body["namespace"] == "team-a"


def test_cli_prints_run_id_and_link(kfp_api, tmp_path):
    config = tmp_path / "churn.yaml"
    config.write_text("data: {source: s3://bucket/churn.csv, target: churn}\n")
    result = CliRunner().invoke(app, ["submit", str(config), "--host", kfp_api.url,
                                      "--experiment", "churn", "--token", "t0k"])
    assert result.exit_code == 0, result.output
    run_id = next(iter(kfp_api.runs))
    assert f"run {run_id} in experiment churn" in result.stdout
    assert f"{kfp_api.url}/#/runs/details/{run_id}" in result.stdout
    [run] = kfp_api.sent("POST", f"{API}/runs")
    config_default = _spec(run.body).root.input_definitions.parameters["config"]
    assert json.loads(config_default.default_value.string_value)["data"]["target"] == "churn"
    assert run.headers["authorization"] == "Bearer t0k"


def test_cli_unreachable_host_is_one_error_line():
    host = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["submit", "--host", host])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: KFP API at {host} is unreachable"), lines
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SubmitError)  # handled, not raised through


def test_scoring_submits_its_pipeline_with_the_files_as_arguments(kfp_api, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data: {source: s3://bucket/data.csv, target: species}\n")
    result = CliRunner().invoke(app, ["submit", str(config), "--host", kfp_api.url,
                                      "--pipeline", "scoring", "--input", "s3://b/in/",
                                      "--output", "s3://b/out/scores.parquet",
                                      "--model", "penguins@champion"])
    assert result.exit_code == 0, result.output
    [run] = kfp_api.sent("POST", f"{API}/runs")
    assert _spec(run.body).pipeline_info.name == "kubecycle-scoring"
    assert run.body["runtime_config"]["parameters"] == {
        "source": "s3://b/in/", "destination": "s3://b/out/scores.parquet",
        "model": "penguins@champion"}


def test_a_scoring_schedule_carries_the_arguments_too(kfp_api, cfg):
    submit(cfg, kfp_api.url, schedule="0 2 * * *",
           scoring={"source": "s3://b/in/", "destination": "s3://b/out.csv", "model": ""})
    [recurring] = kfp_api.sent("POST", f"{API}/recurringruns")
    assert _spec(recurring.body).pipeline_info.name == "kubecycle-scoring"
    assert recurring.body["runtime_config"]["parameters"]["destination"] == "s3://b/out.csv"


@pytest.mark.parametrize(("args", "problem"), [
    (["--input", "a.csv"], "--input: only with --pipeline scoring"),
    (["--pipeline", "scoring", "--input", "a.csv"], "--pipeline scoring needs --input and --output"),
])
def test_scoring_options_are_checked_before_contacting_the_api(kfp_api, args, problem):
    result = CliRunner().invoke(app, ["submit", "--host", kfp_api.url, *args])
    assert result.exit_code == 2 and problem in result.output
    assert not kfp_api.requests
