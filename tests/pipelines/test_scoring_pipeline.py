"""The batch scoring pipeline: compiled with the cluster settings, and run on kfp.local."""

from __future__ import annotations

import json
from pathlib import Path

import kfp.local
import pandas as pd
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubecycle.config import parse_config
from kubecycle.pipelines.run import compile_pipeline
from kubecycle.pipelines.scoring import build_scoring_pipeline


def _config(**extra):
    return parse_config({"data": {"source": "x.csv"},
                         "mlflow": {"model_name": "scoring-pipeline"}, **extra})


def test_compiles_one_uncached_task_with_the_score_stage_settings(tmp_path):
    cfg = _config(cluster={"caching": True, "resources": {"score": {"memory_limit": "2Gi"}},
                           "node_selector": {"pool": "batch"}})
    path = compile_pipeline(cfg, tmp_path / "scoring.yaml", "http://mlflow:5000", "scoring")
    documents = list(yaml.safe_load_all(path.read_text()))
    spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "kubecycle-scoring"
    [(name, task)] = spec.root.dag.tasks.items()
    assert name == "score-files" and not task.caching_options.enable_cache
    parameters = spec.root.input_definitions.parameters
    assert {"source", "destination", "model"} <= set(parameters)
    assert json.loads(parameters["config"].default_value.string_value)["mlflow"][
        "model_name"] == "scoring-pipeline"
    [executor] = documents[0]["deploymentSpec"]["executors"].values()
    assert executor["container"]["resources"]["memoryLimit"] == 2.147483648  # 2Gi in GB
    assert "pool" in json.dumps(documents[1]["platforms"]["kubernetes"])


def test_runs_on_kfp_local_and_writes_the_scores(tmp_path, mlflow_server, penguins, register_model):
    rows = register_model(penguins, mlflow_server, "scoring-pipeline", "species",
                          "classification", "f1", "logistic_regression")
    rows.to_csv(tmp_path / "in.csv", index=False)
    cfg = _config()
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False),
                   pipeline_root=str(tmp_path / "kfp"), raise_on_error=True)
    outcome = build_scoring_pipeline(cfg)(config=cfg.to_json(), tracking_uri=mlflow_server,
                                          source=str(tmp_path / "in.csv"),
                                          destination=str(tmp_path / "out" / "scores.parquet"))
    summary = json.loads(Path(outcome.output.path).read_text())
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (len(rows), len(rows), 0)
    assert summary["model_version"] == "1" and summary["runtime"] == "onnx"
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert len(scores) == len(rows) and scores["prediction"].isin(penguins["species"]).all()
