"""The training pipeline compiles to valid KFP IR without importing the heavy libraries."""

import json
import subprocess
import sys

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubecycle.config import parse_config
from kubecycle.pipelines.run import compile_pipeline

STAGES = {"start-run", "ingest-data", "validate-data", "explore-data", "split-data",
          "plan-features", "candidate-families", "train-model", "evaluate-model",
          "explain-model", "register-model", "package-model", "summarize-run"}


def test_compiled_ir_parses_into_pipeline_spec(tmp_path):
    cfg = parse_config({"data": {"source": "s3://bucket/data.csv", "target": "y"},
                        "tuning": {"parallelism": 3}})
    path = compile_pipeline(cfg, tmp_path / "pipeline.yaml", "http://mlflow:5000")
    document = yaml.safe_load(path.read_text())
    spec = json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "kubecycle-training"
    root_tasks = set(spec.root.dag.tasks)
    assert root_tasks >= STAGES
    loop = next(t for name, t in spec.root.dag.tasks.items() if name.startswith("for-loop"))
    assert loop.iterator_policy.parallelism_limit == 3
    inner = spec.components[loop.component_ref.name].dag.tasks
    assert set(inner) == {"tune-family"}
    defaults = spec.root.input_definitions.parameters
    assert json.loads(defaults["config"].default_value.string_value)["data"]["target"] == "y"
    assert defaults["tracking_uri"].default_value.string_value == "http://mlflow:5000"
    images = {e["container"]["image"] for e in document["deploymentSpec"]["executors"].values()}
    assert images == {"ghcr.io/kubecycle/components:0.1.0"}
    assert all(not t.caching_options.enable_cache for t in spec.root.dag.tasks.values())


def test_a_pretrained_model_takes_the_place_of_tune_and_train(tmp_path):
    cfg = parse_config({"data": {"source": "s3://bucket/data.csv", "target": "y"},
                        "models": {"pretrained": "models:/churn/3"}})
    path = compile_pipeline(cfg, tmp_path / "pipeline.yaml", "http://mlflow:5000")
    spec = json_format.ParseDict(yaml.safe_load(path.read_text()), pipeline_spec_pb2.PipelineSpec())
    root_tasks = set(spec.root.dag.tasks)
    assert root_tasks == STAGES - {"candidate-families", "train-model"} | {"load-pretrained-model",
                                                                           "clean-training-rows"}
    summary = spec.root.dag.tasks["summarize-run"].inputs.artifacts["selection"]
    assert summary.task_output_artifact.producer_task == "load-pretrained-model"


def test_compile_cli_imports_no_heavy_library(tmp_path):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from kubecycle.pipelines.cli import app\n"
        f"r = CliRunner().invoke(app, ['compile', '-o', r'{tmp_path / 'p.yaml'}'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('sklearn', 'mlflow', 'bentoml', 'evidently', 'shap', 'optuna')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"KUBECYCLE_COMPONENTS_IMAGE": "registry.local/kc:dev",
                                 "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert "registry.local/kc:dev" in (tmp_path / "p.yaml").read_text()
