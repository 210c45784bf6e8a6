"""The whole lifecycle through the `kubecycle` command, with real MLflow server processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from mlflow.tracking import MlflowClient

from kubecycle.examples import EXAMPLES_DIR
from kubecycle.tracking import free_port

pytestmark = pytest.mark.slow
KUBECYCLE = str(Path(sys.executable).parent / "kubecycle")
FAST = {"tuning": {"trials": 3, "strategy": "random", "cv_folds": 3}}


def user_env(cwd: Path, **extra: str) -> dict[str, str]:
    """A user's environment: KUBECYCLE_HOME (autouse fixture) but no BENTOML_HOME, and a HOME
    of its own, so a command that missed KUBECYCLE_HOME's bento store would show in HOME; a
    stray MLFLOW_REGISTRY_URI (closed port) that kubecycle must not follow: its registry is
    the tracking server's."""
    env = {key: value for key, value in os.environ.items() if key != "BENTOML_HOME"}
    return {**env, "HOME": str(cwd / "user-home"), "MLFLOW_REGISTRY_URI": "http://127.0.0.1:9",
            **extra}


def kubecycle(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECYCLE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=user_env(cwd))


def write_config(folder: Path, data: dict, **extra) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"data": data, **FAST, **extra}))
    return path


def test_demo_twice_promotes_then_gates(tmp_path, servers):
    """No config, no tracking URI: the shipped demo on a local store, run twice."""
    first = kubecycle("run", "--output", str(tmp_path / "one"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["status"] == "promoted" and summary["model_version"] == "1"
    assert summary["task"] == "classification" and summary["model_name"] == "penguins-species"
    assert summary["metrics"]["test"]["accuracy"] > 0.9
    assert summary["model"]["family"] in {"logistic_regression", "random_forest",
                                          "gradient_boosting", "lightgbm", "xgboost"}
    ranking = {entry["family"]: entry for entry in summary["model"]["ranking"]}
    skipped = [name for name, entry in ranking.items() if entry.get("skipped")]
    assert skipped == list(ranking)[-2:] == ["mlp", "torch"]  # 344 rows: too few
    assert "fewer than the 1000 it needs" in ranking["mlp"]["reason"]
    assert "fewer than the 5000 it needs" in ranking["torch"]["reason"]
    assert all(entry["reason"] == "default search for classification"
               for name, entry in ranking.items() if name not in skipped)
    assert sum("cv_metric" in entry for entry in ranking.values()) == 5
    # explanations name the data's columns, per species, and LIME is compared with SHAP
    assert set(summary["top_features"]) <= set(pd.read_csv(EXAMPLES_DIR / "penguins.csv").columns)
    assert set(summary["explanation"]["top_by_class"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert 0.0 <= summary["explanation"]["lime_agreement"] <= 1.0
    assert summary["bento_tag"].startswith("penguins-species:")
    for report in summary["reports"].values():
        assert Path(report).is_file() and Path(report).stat().st_size > 500
    home = tmp_path / "home"  # KUBECYCLE_HOME from the autouse fixture
    assert summary["tracking_uri"] == f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    assert "kubecycle run: promoted" in first.stdout
    assert list((home / "tmp").iterdir()) == []  # the run's scratch TMPDIR is removed

    second = kubecycle("run", "--output", str(tmp_path / "two"), cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert again["model_version"] == "2"
    assert again["status"] == "rejected" and "does not beat" in again["reason"]

    client = MlflowClient(summary["tracking_uri"], registry_uri=summary["tracking_uri"])
    assert str(client.get_model_version_by_alias("penguins-species", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("penguins-species", "challenger").version) == "2"
    tags = client.get_model_version("penguins-species", "1").tags
    assert tags["kubecycle.bento_tag"] == summary["bento_tag"]
    # the champion is served as a verified ONNX graph (checked on the registered test rows)
    assert tags["kubecycle.serving_runtime"] == summary["serving_runtime"] == "onnx"
    assert tags["kubecycle.serving_runtime_reason"] == summary["serving_runtime_reason"]
    parent = client.get_run(summary["run_id"])
    assert parent.info.status == "FINISHED"
    trials = client.search_runs([parent.info.experiment_id],
                                f"tags.mlflow.parentRunId = '{summary['run_id']}'")
    assert len(trials) == 40  # 5 families x the default 8 trials, each a nested run

    # batch scoring with the champion: a progress bar off a terminal stays quiet
    scored = kubecycle("predict", "--input", str(EXAMPLES_DIR / "penguins.csv"), "--output",
                       str(tmp_path / "scores.parquet"), cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert re.search(r"penguins-species v1 \(onnx\): scored 344 of 344 rows in .* -> .*"
                     r"scores.parquet; 0 rejected", scored.stdout.replace("\n", " "))
    assert pd.read_parquet(tmp_path / "scores.parquet")["prediction"].notna().all()
    refused = kubecycle("predict", "--input", "nowhere.csv", "--output", "s.csv", cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "error: --input nowhere.csv not found" in refused.stderr

    # the feedback loop on the same store: a healthy window, then drift that retrains
    penguins = pd.read_csv(EXAMPLES_DIR / "penguins.csv")
    window = penguins.sample(400, replace=True, random_state=3)
    window.to_parquet(tmp_path / "healthy.parquet")
    healthy = kubecycle("monitor", "--current", str(tmp_path / "healthy.parquet"),
                        "-o", str(tmp_path / "mon-ok"), cwd=tmp_path)
    assert healthy.returncode == 0, healthy.stderr[-3000:]
    window.assign(body_mass_g=window.body_mass_g + 1500, flipper_length_mm=window.flipper_length_mm
                  + 25, bill_length_mm=window.bill_length_mm + 9, island="Biscoe", sex="male"
                  ).to_parquet(tmp_path / "drifted.parquet")
    drifted = kubecycle("monitor", "--current", str(tmp_path / "drifted.parquet"), "--retrain",
                        "-o", str(tmp_path / "mon-drift"), cwd=tmp_path)
    assert drifted.returncode == 3, drifted.stderr[-3000:]
    outcome = json.loads((tmp_path / "mon-drift" / "summary.json").read_text())
    assert outcome["status"] == "drift" and outcome["decision"]["retrain"]
    retrained = client.get_run(outcome["retrain_run_id"])
    assert retrained.data.tags["kubecycle.gate"] in ("promoted", "rejected")
    # the window's labelled rows joined the training data (duplicates aside)
    assert retrained.data.metrics["data.rows_clean"] > len(penguins.drop_duplicates())
    versions = client.search_model_versions("name = 'penguins-species'")
    assert len(versions) == 3  # the retraining registered a version through the same gate

    # serving the champion feeds the inference log that monitoring reads
    exported = kubecycle("package", "--export", str(tmp_path / "export"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert list((tmp_path / "export").glob("*.bento"))
    port = free_port()
    server = servers.start([KUBECYCLE, "serve", "--port", str(port)],
                           user_env(tmp_path, KUBECYCLE_INFERENCE_LOG_FLUSH_SECONDS="3600"), port,
                           tmp_path, tmp_path / "serve.log")
    try:
        base = f"http://127.0.0.1:{port}"
        records = window.drop(columns="species").head(50)
        body = {"records": records.astype(object).where(records.notna(), None).to_dict("records")}
        answer = requests.post(f"{base}/predict_batch", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 50
    finally:
        servers.stop(server)  # SIGTERM: the rows still buffered are written as it stops
    assert not (tmp_path / "user-home" / "bentoml").exists()  # one store: KUBECYCLE_HOME's
    served = kubecycle("monitor", "--current", str(home / "inference-log"), "--window", "1h",
                       "-o", str(tmp_path / "mon-log"), cwd=tmp_path)
    assert served.returncode in (0, 3), served.stderr[-3000:]
    logged = json.loads((tmp_path / "mon-log" / "summary.json").read_text())
    assert logged["drift"]["rows"] == 50
    # labels that arrive later are joined to the logged predictions by request id
    ids = answer.json()["request_ids"]
    labels = pd.DataFrame({"request_id": [*ids[:40], "never-served"],
                           "species": [*window["species"].head(40), "Adelie"]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    fed = kubecycle("feedback", "--labels", str(tmp_path / "labels.csv"), cwd=tmp_path)
    assert fed.returncode == 0, fed.stderr[-3000:]
    assert "41 labels stored" in fed.stdout and "40 match logged predictions; 1 match no " \
        "logged prediction (e.g. never-served)" in fed.stdout.replace("\n", " ")


def test_regression_with_mixed_columns(tmp_path, mlflow_server, make_mixed):
    frame = make_mixed(400).drop(columns=["churn"])
    # pandas extension dtypes survive Parquet: every stage (Evidently too) must take them
    frame = frame.astype({"x2": "Float64", "colour": "category", "member": "boolean"})
    frame.loc[::9, "member"] = pd.NA
    frame.to_parquet(tmp_path / "data.parquet")
    config = write_config(tmp_path, {"source": "data.parquet", "target": "amount"},
                          mlflow={"model_name": "amounts"},
                          cleaning={"outliers": {"method": "iqr", "action": "drop"}},
                          features={"create": {"products": "interactions"}})
    result = kubecycle("run", str(config), "-o", str(tmp_path / "out"),
                       "--tracking-uri", mlflow_server, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["task"] == "regression" and summary["metric"] == "rmse"
    outliers = summary["cleaning"]["outliers"]  # training rows only: the test rows keep theirs
    assert outliers["method"] == "iqr" and outliers["dropped"] == outliers["flagged"] > 0
    assert summary["cleaning"]["rows_after"] == summary["cleaning"]["rows_before"] - outliers[
        "dropped"]
    assert summary["metrics"]["test"]["r2"] > 0.8
    assert summary["tracking_uri"] == mlflow_server
    # the datetime column's parts come from the service's feed, the products are computed in
    # the graph: it serves them
    import mlflow.artifacts

    plan = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=summary["run_id"], artifact_path="features/plan.json", tracking_uri=mlflow_server,
        dst_path=str(tmp_path / "plan"))).read_text())
    assert plan["combined"] == ["x1", "x2"] and plan["squares"] is False
    assert summary["serving_runtime"] == "onnx"
    assert summary["serving_runtime_reason"].startswith("identical predictions on")


@pytest.mark.parametrize(("family", "task"), [("xgboost", "classification"),
                                              ("lightgbm", "regression"), ("mlp", "classification"),
                                              ("torch", "regression")])
def test_boosted_and_neural_families_end_in_served_predictions(
        tmp_path, mlflow_server, servers, make_mixed, family, task):
    """Each new family through the whole pipeline: tuned, registered, packaged (ONNX verified
    or the scikit-learn runtime with its reason) and served."""
    frame = make_mixed(1200).drop(columns=["amount" if task == "classification" else "churn"])
    frame.to_csv(tmp_path / "data.csv", index=False)
    target = "churn" if task == "classification" else "amount"
    config = write_config(tmp_path, {"source": "data.csv", "target": target},
                          mlflow={"model_name": f"{family}-model"}, models={"families": [family]})
    result = kubecycle("run", str(config), "-o", str(tmp_path / "out"),
                       "--tracking-uri", mlflow_server, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"]["family"] == family and summary["status"] == "promoted"
    assert summary["model"]["ranking"][0]["reason"] == "listed in models.families"
    test = summary["metrics"]["test"]
    assert (test["f1"] > 0.8) if task == "classification" else (test["r2"] > 0.9)
    assert summary["serving_runtime"] == "onnx", summary["serving_runtime_reason"]

    port = free_port()
    server = servers.start([KUBECYCLE, "serve", str(config), "--port", str(port),
                            "--tracking-uri", mlflow_server],
                           user_env(tmp_path), port, tmp_path, tmp_path / "serve.log")
    try:
        records = frame.drop(columns=[target]).head(5)
        body = {"records": records.astype(object).where(records.notna(), None).to_dict("records")}
        answer = requests.post(f"http://127.0.0.1:{port}/predict_batch", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
    finally:
        servers.stop(server)
    expected = list(mlflow_model(mlflow_server, f"{family}-model").predict(records))
    if task == "regression":
        assert predictions == pytest.approx(expected, rel=1e-4)
    else:
        assert predictions == expected


def mlflow_model(tracking_uri: str, name: str):
    """The registered champion, loaded as the scikit-learn Pipeline it is."""
    import mlflow.sklearn

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.sklearn.load_model(f"models:/{name}@champion")


def test_clustering_without_target(tmp_path, mlflow_server, penguins):
    penguins.drop(columns=["species"]).to_csv(tmp_path / "data.csv", index=False)
    config = write_config(tmp_path, {"source": "data.csv"}, mlflow={"model_name": "groups"},
                          models={"families": ["kmeans"]},
                          deploy={"bento_store": str(tmp_path / "bentos")})
    result = kubecycle("run", str(config), "-o", str(tmp_path / "out"),
                       "--tracking-uri", mlflow_server, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["task"] == "clustering" and summary["status"] == "promoted"
    assert 0 < summary["metrics"]["test"]["silhouette"] <= 1
    assert summary["serving_runtime"] == "onnx", summary["serving_runtime_reason"]
    # the bento went to the store too, and deploy pins that archive
    archive = tmp_path / "bentos" / f"groups-{summary['model_version']}.bento"
    assert archive.is_file()
    rendered = kubecycle("deploy", str(config), "--render", "--tracking-uri", mlflow_server,
                         cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert f"value: {archive}" in rendered.stdout


def _one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    text = " ".join(result.stderr.split())  # rich may wrap the line
    for word in words:
        assert word in text, text


@pytest.mark.parametrize(
    ("data", "extra", "words"),
    [
        ({"source": "missing.csv", "target": "y"}, {}, ["missing.csv not found"]),
        ({"source": "garbage.csv", "target": "y"}, {}, ["garbage.csv could not be read"]),
        ({"source": "penguins.csv", "target": "specie"}, {}, ["target column 'specie' not found"]),
        ({"source": "penguins.csv", "target": "species"}, {"task": "regression"},
         ["is not numeric"]),
        ({"source": "one_class.csv", "target": "species"}, {}, ["single class"]),
        ({"source": "empty_col.csv", "target": "species"}, {}, ["['note'] hold no values"]),
        ({"source": "header.csv", "target": "species"}, {}, ["has no rows"]),
    ],
)
def test_bad_data_fails_in_one_line_and_registers_nothing(
        tmp_path, mlflow_server, penguins, data, extra, words, request):
    penguins.to_csv(tmp_path / "penguins.csv", index=False)
    penguins.assign(species="Adelie").to_csv(tmp_path / "one_class.csv", index=False)
    penguins.assign(note=float("nan")).to_csv(tmp_path / "empty_col.csv", index=False)
    penguins.head(0).to_csv(tmp_path / "header.csv", index=False)
    (tmp_path / "garbage.csv").write_bytes(b"\xff\xfe\x00garbage\x00\xff,\n\x00")
    name = "bad-" + re.sub(r"[^a-z0-9]+", "-", request.node.callspec.id.lower()).strip("-")
    config = write_config(tmp_path, data, mlflow={"model_name": name}, **extra)
    result = kubecycle("run", str(config), "-o", str(tmp_path / "out"),
                       "--tracking-uri", mlflow_server, cwd=tmp_path)
    _one_line_error(result, *words)
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    assert client.search_model_versions(f"name = '{name}'") == []
    assert not (tmp_path / "out" / "summary.json").exists()
    experiment = client.get_experiment_by_name("kubecycle").experiment_id
    parents = client.search_runs([experiment], f"tags.`kubecycle.model_name` = '{name}'")
    assert [r.info.status for r in parents] == ["FAILED"]


def test_bad_config_and_unreachable_mlflow(tmp_path, penguins):
    penguins.to_csv(tmp_path / "penguins.csv", index=False)
    bad_family = write_config(tmp_path, {"source": "penguins.csv", "target": "species"},
                              models={"families": ["xgboostt"]})
    _one_line_error(kubecycle("run", str(bad_family), cwd=tmp_path),
                    "models.families", "unknown model family ['xgboostt']")
    bad_metric = write_config(tmp_path, {"source": "penguins.csv", "target": "species"},
                              metric="rmse")
    _one_line_error(kubecycle("run", str(bad_metric), cwd=tmp_path),
                    "metric 'rmse' is not a classification metric")
    config = write_config(tmp_path, {"source": "penguins.csv", "target": "species"})
    from kubecycle.tracking import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    _one_line_error(kubecycle("run", str(config), "--tracking-uri", dead, cwd=tmp_path),
                    f"MLflow tracking server {dead} is unreachable")


def test_a_pretrained_model_is_evaluated_registered_and_served_without_training(
        tmp_path, mlflow_server, penguins):
    """A LightGBM file in place of tune and train; then the registered version itself, by its
    MLflow URI (`--pretrained`), which the gate keeps out (not better than itself)."""
    import lightgbm

    inputs = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
    rows = penguins.dropna(subset=["body_mass_g"])
    booster = lightgbm.LGBMRegressor(n_estimators=40, verbose=-1).fit(
        rows[inputs], rows["body_mass_g"]).booster_
    booster.save_model(tmp_path / "mass.txt")
    penguins.to_csv(tmp_path / "penguins.csv", index=False)
    config = write_config(tmp_path, {"source": "penguins.csv", "target": "body_mass_g",
                                     "drop_columns": ["species", "island", "sex", "year"]},
                          mlflow={"model_name": "pretrained-mass"},
                          models={"pretrained": "mass.txt"})
    result = kubecycle("run", str(config), "-o", str(tmp_path / "out"),
                       "--tracking-uri", mlflow_server, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"]["family"] == "pretrained lightgbm"
    assert summary["model"]["params"] == {"source": str(tmp_path / "mass.txt")}
    assert summary["status"] == "promoted" and summary["metrics"]["test"]["r2"] > 0.5
    assert summary["serving_runtime"] == "onnx", summary["serving_runtime_reason"]
    assert set(summary["top_features"]) == set(inputs)
    assert "tune-family" not in (tmp_path / "out" / "pipeline.log").read_text()
    registered = mlflow_model(mlflow_server, "pretrained-mass")
    sample = rows[inputs].head(20)
    np.testing.assert_allclose(registered.predict(sample), booster.predict(sample), rtol=1e-9)

    again = kubecycle("run", str(config), "-o", str(tmp_path / "again"), "--tracking-uri",
                      mlflow_server, "--pretrained", "models:/pretrained-mass/1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["model"]["family"] == "pretrained mlflow"
    assert summary["status"] != "promoted" and summary["model_version"] == "2"


def test_a_pickle_is_not_loaded_without_trust(tmp_path, mlflow_server, penguins):
    import joblib
    from sklearn.linear_model import LinearRegression

    inputs = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
    rows = penguins.dropna()
    joblib.dump(LinearRegression().fit(rows[inputs], rows["body_mass_g"]), tmp_path / "m.joblib")
    penguins.to_csv(tmp_path / "penguins.csv", index=False)
    config = write_config(tmp_path, {"source": "penguins.csv", "target": "body_mass_g"},
                          mlflow={"model_name": "pickled"}, models={"pretrained": "m.joblib"})
    _one_line_error(kubecycle("run", str(config), "--tracking-uri", mlflow_server, cwd=tmp_path),
                    "m.joblib is a pickle", "models.trust_pickle: true")
    config.write_text(config.read_text().replace("pretrained: m.joblib",
                                                 "pretrained: m.joblib\n  trust_pickle: true"))
    _one_line_error(kubecycle("run", str(config), "--tracking-uri", mlflow_server, cwd=tmp_path),
                    "does not take the data's columns", "'species'", "data.drop_columns")
