"""The monitoring pipeline on kfp.local: the retrain branch really runs on drift (kfp.local
skips dsl.If branches on NamedTuple fields, so the verdict is a single output)."""

from __future__ import annotations

import kfp.local
import mlflow
import pytest
import yaml
from google.protobuf import json_format
from kfp import compiler
from kfp.pipeline_spec import pipeline_spec_pb2

from kubecycle.config import parse_config
from kubecycle.pipelines.monitoring import build_monitoring_pipeline
from kubecycle.pipelines.run import run_local


def _config(source: str, **monitoring):
    return parse_config({"data": {"source": source, "target": "species"},
                         "tuning": {"trials": 2, "strategy": "random"},
                         "models": {"families": ["logistic_regression"]},
                         "mlflow": {"model_name": "mon-pipeline", "experiment": "mon-pipeline"},
                         "cleaning": {"label_noise": {"method": "confident_learning"}},
                         "monitoring": monitoring})


def test_compiles_with_a_condition_around_the_training_dag(tmp_path):
    path = tmp_path / "monitoring.yaml"
    compiler.Compiler().compile(build_monitoring_pipeline(_config("x.csv")), str(path))
    spec = json_format.ParseDict(yaml.safe_load(path.read_text()), pipeline_spec_pb2.PipelineSpec())
    condition = next(t for n, t in spec.root.dag.tasks.items() if n.startswith("condition"))
    assert "retrain" in condition.trigger_policy.condition


@pytest.mark.slow
def test_drift_runs_the_retrain_branch(tmp_path, penguins, mlflow_server):
    penguins.to_csv(tmp_path / "train.csv", index=False)
    cfg = _config(str(tmp_path / "train.csv"), retrain=True)
    first = run_local(cfg, tmp_path / "run", tracking_uri=mlflow_server)
    assert first["status"] == "promoted"
    noise = first["cleaning"]["label_noise"]  # reported, not dropped (action: report)
    assert noise["method"] == "confident_learning" and noise["dropped"] == 0
    assert first["cleaning"]["rows_after"] == first["cleaning"]["rows_before"]
    window = penguins.sample(300, replace=True, random_state=2)
    window.assign(body_mass_g=window.body_mass_g + 1500, bill_length_mm=window.bill_length_mm + 9,
                  flipper_length_mm=window.flipper_length_mm + 25, island="Biscoe",
                  sex="male").to_parquet(tmp_path / "drifted.parquet")

    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False),
                   pipeline_root=str(tmp_path / "kfp"), raise_on_error=True)
    build_monitoring_pipeline(cfg)(config=cfg.to_json(), tracking_uri=mlflow_server,
                                   current=str(tmp_path / "drifted.parquet"))
    client = mlflow.MlflowClient(mlflow_server, registry_uri=mlflow_server)
    versions = client.search_model_versions("name = 'mon-pipeline'")
    assert len(versions) == 2  # the branch trained and registered a second version
    monitoring = client.search_runs(
        [client.get_experiment_by_name("mon-pipeline").experiment_id],
        "tags.`kubecycle.monitoring` = 'true'")
    assert [r.data.tags["kubecycle.retrain_run_id"] for r in monitoring] == [
        "delegated-to-pipeline"]
    # the branch trained on the configured rows plus the window's labelled ones
    retrained = client.get_run(versions[0].run_id if versions[0].version == "2"
                               else versions[1].run_id)
    original = client.get_run(first["run_id"]).data.metrics["data.rows_clean"]
    assert retrained.data.metrics["data.rows_clean"] > original
