"""The register stage against a real MLflow server process."""

import json
import os

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from kubecycle.components.features.core import plan_columns
from kubecycle.components.register.core import register_version
from kubecycle.components.split.core import split_frame
from kubecycle.components.track.core import start_parent_run
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.validate.core import clean
from kubecycle.config import parse_config
from kubecycle.evaluation import evaluate_model
from kubecycle.modelling import TuneResult
from kubecycle.registry import CHAMPION, load_contract, version_by_alias


def _register(penguins, server, name, family, params, recent=None, **gate):
    cfg = parse_config({"data": {"source": "x.csv", "target": "species"},
                        "mlflow": {"model_name": name}})
    run_id = start_parent_run(cfg, server)
    cleaned = clean(penguins, "species")
    train, test = split_frame(cleaned.frame, "species", "classification", 0.3, 0)
    plan = plan_columns(cleaned.contract, cfg.features)
    model = fit_final(plan, select_best([TuneResult(family, "f1", params, 0, 0)]), train, 0)
    metrics = evaluate_model(model, test, "species", "classification").metrics
    return register_version(model, run_id=run_id, model_name=name, task="classification",
                          metric="f1", test_metrics=metrics, train=train, test=test,
                          target="species", contract=cleaned.contract, seed=0,
                          min_score=gate.get("min_score"),
                          min_improvement=gate.get("min_improvement", 0.0), recent=recent,
                          policy=gate.get("policy", "recent"), min_recent_rows=10)


def test_gate_promotes_then_keeps_the_better_champion(penguins, mlflow_server):
    name = "reg-gate"
    weak = _register(penguins, mlflow_server, name, "logistic_regression", {"C": 0.001})
    assert weak.decision.promote and weak.version == "1"
    strong = _register(penguins, mlflow_server, name, "random_forest", {"n_estimators": 50})
    assert strong.decision.promote and strong.champion_version == "1"
    same = _register(penguins, mlflow_server, name, "random_forest", {"n_estimators": 50})
    assert not same.decision.promote and "does not beat" in same.decision.reason

    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    assert client.get_model_version_by_alias(name, CHAMPION).version == "2"
    assert client.get_model_version_by_alias(name, "challenger").version == "3"
    tags = client.get_model_version(name, "3").tags
    assert tags["kubecycle.gate"] == "rejected" and float(tags["kubecycle.test_f1"]) > 0.9


def test_minimum_score_blocks_promotion(penguins, mlflow_server):
    result = _register(penguins, mlflow_server, "reg-min", "logistic_regression", {},
                       min_score=1.01)
    assert not result.decision.promote and "below the minimum" in result.decision.reason
    assert version_by_alias("reg-min", CHAMPION) is None


def test_logged_model_has_signature_example_contract_and_reference(penguins, mlflow_server):
    result = _register(penguins, mlflow_server, "reg-art", "random_forest", {"n_estimators": 10})
    info = mlflow.models.get_model_info(result.model_uri)
    assert "bill_length_mm" in info.signature.inputs.input_names()
    assert info.saved_input_example_info is not None
    loaded = mlflow.sklearn.load_model(f"models:/reg-art@{CHAMPION}")
    assert set(loaded.predict(penguins.drop(columns=["species"]).head(3))) <= {
        "Adelie", "Chinstrap", "Gentoo"}
    champion = version_by_alias("reg-art", CHAMPION)
    assert load_contract(champion).columns["island"].categories == [
        "Biscoe", "Dream", "Torgersen"]
    reference = mlflow.artifacts.download_artifacts(
        run_id=champion.run_id, artifact_path="reference/reference.parquet")
    import pandas as pd

    frame = pd.read_parquet(reference)
    assert "prediction" in frame and len(frame) > 100
    stats = mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/reference/stats.json")
    assert stats["columns"]["island"]["counts"]["Biscoe"] > 0
    assert stats["columns"]["bill_length_mm"]["kind"] == "numeric"
    assert stats["columns"]["prediction"]["kind"] == "categorical"


def test_logged_model_pins_what_loading_it_needs(penguins, mlflow_server):
    from importlib import metadata
    from pathlib import Path

    result = _register(penguins, mlflow_server, "reg-req", "logistic_regression", {"C": 1.0})
    path = Path(mlflow.artifacts.download_artifacts(f"{result.model_uri}/requirements.txt"))
    requirements = set(path.read_text().split())
    assert {f"scikit-learn=={metadata.version('scikit-learn')}",
            f"skops=={metadata.version('skops')}"} <= requirements
    assert not {line for line in requirements if line.startswith(("pytest", "rich"))}


@pytest.fixture(autouse=True)
def _point_mlflow(mlflow_server):
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)


PLAIN_LOAD = """
import importlib.util, json, sys
assert importlib.util.find_spec("kubecycle") is None, "kubecycle is installed here"
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
import kubecycle.transformers
print(json.dumps({"predictions": [str(p) for p in model.predict(pd.read_parquet(sys.argv[2]))],
                  "transformers": kubecycle.transformers.__file__}))
"""


@pytest.mark.slow
def test_a_registered_model_loads_with_plain_mlflow_where_kubecycle_is_not(
        penguins, mlflow_server, tmp_path):
    """The model carries the code it needs (MLflow code_paths): a venv with only the model's
    own requirements and MLflow loads and runs it."""
    import subprocess
    import sys
    from pathlib import Path

    result = _register(penguins, mlflow_server, "reg-plain", "logistic_regression", {})
    local = Path(mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(tmp_path)))
    rows = penguins.drop(columns="species").head(20)
    rows.to_parquet(tmp_path / "rows.parquet")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    lock = Path(__file__).resolve().parents[3] / "requirements.lock"
    env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
           "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-c", str(lock), "-r",
                    str(local / "requirements.txt"), "mlflow-skinny", "pyarrow"],
                   env=env, check=True, capture_output=True)
    ran = subprocess.run([str(venv / "bin" / "python"), "-c", PLAIN_LOAD, str(local),
                          str(tmp_path / "rows.parquet")], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-3000:]
    answer = json.loads(ran.stdout.strip().splitlines()[-1])
    model = mlflow.sklearn.load_model(result.model_uri)
    assert answer["predictions"] == [str(p) for p in model.predict(rows)]
    assert answer["transformers"].startswith(str(local))  # the copy shipped with the model


@pytest.mark.parametrize("policy", ["test", "recent"])
def test_the_newest_labelled_rows_can_replace_a_champion_that_wins_on_test(
        penguins, mlflow_server, policy):
    """The champion wins on the test split but loses on the newest labelled rows: policy
    `recent` promotes the challenger, `test` keeps the champion; both scores are recorded."""
    name = f"reg-recent-{policy}"
    _register(penguins, mlflow_server, name, "random_forest", {"n_estimators": 30})
    # the world moved: penguins the champion calls Gentoo are now labelled Adelie, which the
    # weak challenger (nearly constant) predicts for every penguin
    recent = penguins[penguins["species"] == "Gentoo"].head(40).assign(species="Adelie")
    result = _register(penguins, mlflow_server, name, "logistic_regression", {"C": 0.0001},
                       recent=recent, policy=policy)
    decision = result.decision
    assert decision.recent_rows == len(recent)
    assert decision.recent_challenger_score > decision.recent_champion_score
    assert decision.challenger_score < decision.champion_score  # worse on the test split
    assert decision.promote is (policy == "recent")
    tags = MlflowClient(mlflow_server, registry_uri=mlflow_server).get_model_version(
        name, result.version).tags
    assert tags["kubecycle.recent_rows"] == str(len(recent))
    assert float(tags["kubecycle.recent.f1"]) == pytest.approx(decision.recent_challenger_score,
                                                               rel=1e-5)
