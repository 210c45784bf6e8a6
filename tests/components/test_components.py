"""Stage components run through kfp's local SubprocessRunner, chained in small pipelines
(kfp.local runs a lone component only without input artifacts)."""

import json
from pathlib import Path

import kfp.local
import mlflow
import pytest
from kfp import dsl

from kubecycle.components.features.component import plan_features
from kubecycle.components.ingest.component import ingest_data
from kubecycle.components.split.component import split_data
from kubecycle.components.track.component import start_run
from kubecycle.components.tune.component import candidate_families, tune_family
from kubecycle.components.validate.component import validate_data
from kubecycle.config import parse_config


@dsl.pipeline
def up_to_tuning(config: str, tracking_uri: str) -> dsl.Artifact:
    run_id = start_run(config=config, tracking_uri=tracking_uri, run_name="t").outputs["run_id"]
    raw = ingest_data(config=config).outputs["raw"]
    valid = validate_data(config=config, tracking_uri=tracking_uri, run_id=run_id, raw=raw)
    split = split_data(config=config, clean=valid.outputs["clean"],
                       contract=valid.outputs["contract"])
    plan = plan_features(config=config, tracking_uri=tracking_uri, run_id=run_id,
                         contract=valid.outputs["contract"])
    candidate_families(config=config, run_id=run_id, contract=valid.outputs["contract"])
    return tune_family(config=config, tracking_uri=tracking_uri, run_id=run_id,
                       family="logistic_regression", train=split.outputs["train"],
                       plan=plan.outputs["plan"]).outputs["result"]


@dsl.pipeline
def validate_only(config: str, tracking_uri: str):
    raw = ingest_data(config=config).outputs["raw"]
    validate_data(config=config, tracking_uri=tracking_uri, run_id="unused", raw=raw)


@pytest.fixture
def local_runner(tmp_path):
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False),
                   pipeline_root=str(tmp_path / "kfp"), raise_on_error=True)


def _config(source) -> str:
    return parse_config({"data": {"source": str(source), "target": "species"},
                         "tuning": {"trials": 2, "strategy": "random"},
                         "mlflow": {"experiment": "components"}}).to_json()


def test_stages_up_to_tuning(local_runner, tmp_path, penguins, mlflow_server):
    penguins.to_csv(tmp_path / "p.csv", index=False)
    task = up_to_tuning(config=_config(tmp_path / "p.csv"), tracking_uri=mlflow_server)
    result = json.loads(Path(task.output.path).read_text())
    assert result["family"] == "logistic_regression"
    assert result["trials"] == 2 and result["cv_metric"] > 0.9

    client = mlflow.MlflowClient(mlflow_server, registry_uri=mlflow_server)
    experiment = client.get_experiment_by_name("components")
    parent = client.search_runs([experiment.experiment_id], "tags.`kubecycle.parent` = 'true'")[0]
    assert parent.data.metrics["data.rows_clean"] == len(penguins)
    assert parent.data.tags["kubecycle.task"] == "classification"
    nested = client.search_runs([experiment.experiment_id],
                                f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(nested) == 2 and all("C" in r.data.params for r in nested)
    mlflow.set_tracking_uri(mlflow_server)
    plan = json.loads(mlflow.artifacts.load_text(
        f"runs:/{parent.info.run_id}/features/plan.json"))
    assert plan["onehot"] == ["island", "sex"]


def test_failing_component_fails_the_run(local_runner, tmp_path, penguins, mlflow_server):
    penguins.assign(species="Adelie").to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(RuntimeError, match="validate-data"):
        validate_only(config=_config(tmp_path / "one.csv"), tracking_uri=mlflow_server)
