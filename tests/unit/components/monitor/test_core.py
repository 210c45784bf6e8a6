"""A monitoring pass end to end against a real MLflow server and a Pushgateway stand-in."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from kubecycle.components.ingest.core import with_labelled_rows
from kubecycle.components.monitor.core import EXIT_DRIFT, EXIT_HEALTHY, monitor
from kubecycle.errors import DataSourceError, DataValidationError, MonitoringError, RegistryError
from kubecycle.monitoring.window import LabelledWindow
from kubecycle.tracking import free_port


def healthy(penguins: pd.DataFrame, rows: int = 600) -> pd.DataFrame:
    return penguins.sample(rows, replace=True, random_state=1).reset_index(drop=True)


def drifted(penguins: pd.DataFrame, rows: int = 600) -> pd.DataFrame:
    frame = healthy(penguins, rows)
    return frame.assign(bill_length_mm=frame.bill_length_mm + 8, bill_depth_mm=frame.bill_depth_mm + 3,
                        flipper_length_mm=frame.flipper_length_mm + 20,
                        body_mass_g=frame.body_mass_g + 1500, island="Biscoe", sex="male")


class Recorder:
    """A retrainer that records its calls (the local one runs the whole pipeline: e2e)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def __call__(self, cfg, labelled) -> str:
        self.calls.append((cfg.mlflow.model_name, labelled))
        return f"retrain-{len(self.calls)}"


def test_healthy_window(registered, penguins, tmp_path):
    path = tmp_path / "window.parquet"
    healthy(penguins).to_parquet(path)
    outcome = monitor(registered, current=path, output_dir=tmp_path / "out")
    assert outcome.exit_code == EXIT_HEALTHY and not outcome.drift.dataset_drift
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "healthy" and summary["model_version"] == "1"
    assert set(summary["drift"]["columns"]) >= {"bill_length_mm", "island", "prediction",
                                                "species"}
    assert summary["model_quality"]["window"]["accuracy"] > 0.9
    assert summary["model_quality"]["registered_test"]["f1"] > 0.9
    assert (tmp_path / "out" / "drift_report.html").stat().st_size > 10_000
    run = mlflow.MlflowClient().get_run(outcome.monitoring_run_id)
    assert run.data.tags["kubecycle.model_version"] == "1"
    assert run.data.tags["kubecycle.dataset_drift"] == "false"
    assert run.data.metrics["window_rows"] == 600


def test_drift_policy_consecutive_windows_and_cooldown(penguins, mlflow_server, tmp_path,
                                                       make_registered, monkeypatch):
    cfg = make_registered(penguins, mlflow_server, "mon-policy", consecutive_windows=2,
                            cooldown_hours=6, retrain=True)
    path = tmp_path / "window.csv"
    drifted(penguins).to_csv(path, index=False)
    monkeypatch.chdir(tmp_path)  # a relative --current reaches retraining as an absolute path
    retrainer = Recorder()
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)

    first = monitor(cfg, current="window.csv", output_dir=tmp_path / "1", retrainer=retrainer,
                    now=now)
    assert first.exit_code == EXIT_DRIFT
    assert {"body_mass_g", "island", "sex"} <= set(first.drift.drifted_columns)
    assert not first.decision.retrain and "needs 2" in first.decision.reason

    second = monitor(cfg, current="window.csv", output_dir=tmp_path / "2", retrainer=retrainer,
                     now=now)
    assert second.decision.retrain and second.retrain_run_id == "retrain-1"
    # the window's labelled rows go to retraining, named as the training pipeline reads them
    assert retrainer.calls == [("mon-policy", LabelledWindow(str(path), "", now.isoformat()))]
    extended, added = with_labelled_rows(penguins, "species", retrainer.calls[0][1])
    assert added == 600 and len(extended) == len(penguins) + 600
    run = mlflow.MlflowClient().get_run(second.monitoring_run_id)
    assert run.data.tags["kubecycle.retrain_run_id"] == "retrain-1"

    third = monitor(cfg, current=path, output_dir=tmp_path / "3", retrainer=retrainer,
                    now=datetime.now(UTC))
    assert not third.decision.retrain and "cooldown" in third.decision.reason
    assert len(retrainer.calls) == 1


def test_inference_log_folder_and_time_window(registered, penguins, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    old = drifted(penguins, 300).drop(columns="species").assign(timestamp=now - timedelta(days=3))
    new = healthy(penguins, 300).drop(columns="species").assign(timestamp=now - timedelta(hours=1))
    old.to_parquet(log / "part-0.parquet")
    new.to_parquet(log / "part-1.parquet")
    recent = monitor(registered, current=log, output_dir=tmp_path / "a", since=timedelta(hours=24),
                     now=now)
    assert recent.drift.rows == 300 and not recent.drift.dataset_drift
    assert "species" not in recent.drift.columns and recent.model_quality["labelled_rows"] == 0
    everything = monitor(registered, current=log, output_dir=tmp_path / "b", now=now)
    assert everything.drift.rows == 600


def test_inference_log_in_an_object_store(registered, penguins, tmp_path, s3_bucket):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import fs

    filesystem, base = fs.FileSystem.from_uri(f"{s3_bucket}/inference-log")
    window = drifted(penguins, 300).drop(columns="species")
    for part in range(2):
        pq.write_table(pa.Table.from_pandas(window.iloc[part * 150:(part + 1) * 150]),
                       f"{base}/part-{part}.parquet", filesystem=filesystem)
    pq.write_table(pa.Table.from_pandas(window.head(5)), f"{base}/.part-9.parquet",
                   filesystem=filesystem)  # hidden: a write in progress
    outcome = monitor(registered, current=f"{s3_bucket}/inference-log",
                      output_dir=tmp_path / "out")
    assert outcome.drift.rows == 300 and outcome.drift.dataset_drift
    with pytest.raises(DataSourceError, match="not found"):
        monitor(registered, current=f"{s3_bucket}/nothing-here", output_dir=tmp_path / "none")


def test_data_quality_flags_unseen_and_out_of_range(registered, penguins, tmp_path):
    window = healthy(penguins, 200).assign(island="Atlantis")
    window.loc[:9, "body_mass_g"] = 99_999.0
    path = tmp_path / "w.parquet"
    window.to_parquet(path)
    quality = monitor(registered, current=path, output_dir=tmp_path / "o").data_quality
    assert quality["unseen_categories"]["island"] == {"Atlantis": 200}
    assert quality["out_of_range_share"]["body_mass_g"] == pytest.approx(0.05)


@pytest.fixture
def pushgateway():
    received: list[tuple[str, str, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        do_POST = do_PUT

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_metrics_pushed_to_the_gateway(registered, penguins, tmp_path, pushgateway):
    url, received = pushgateway
    path = tmp_path / "w.parquet"
    drifted(penguins).to_parquet(path)
    monitor(registered, current=path, output_dir=tmp_path / "o", push_url=url)
    assert len(received) == 1
    method, route, body = received[0]
    assert method == "PUT" and route.startswith("/metrics/job/kubecycle-monitor/model/")
    text = body.decode()
    assert "kubecycle_dataset_drift" in text and 'column="body_mass_g"' in text


@pytest.mark.parametrize(
    ("prepare", "error", "words"),
    [
        (lambda p, f: f.iloc[0:0].to_parquet(p), DataValidationError, "has no rows"),
        (lambda p, f: f.drop(columns=["island"]).to_parquet(p), DataValidationError,
         "lacks the model's column(s) ['island']"),
        (lambda p, f: f.rename(columns={"sex": "gender"}).to_parquet(p), DataValidationError,
         "columns not in the contract: ['gender']"),
        (lambda p, f: p.write_bytes(b"PAR1 not parquet"), DataSourceError, "could not be read"),
    ],
)
def test_bad_windows(registered, penguins, tmp_path, prepare, error, words):
    path = tmp_path / "w.parquet"
    prepare(path, healthy(penguins))
    with pytest.raises(error) as caught:
        monitor(registered, current=path, output_dir=tmp_path / "out")
    assert words in str(caught.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_champion_and_gateway_down(registered, penguins, tmp_path):
    path = tmp_path / "w.parquet"
    healthy(penguins).to_parquet(path)
    with pytest.raises(RegistryError, match="no model version nobody@champion"):
        monitor(registered, current=path, output_dir=tmp_path / "o", model="nobody@champion")
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MonitoringError, match=f"Pushgateway {dead}"):
        monitor(registered, current=path, output_dir=tmp_path / "o", push_url=dead)
    assert not (tmp_path / "o").exists()


def test_columns_the_model_ignores_may_be_absent_and_are_not_checked(penguins, mlflow_server,
                                                                      tmp_path, make_registered):
    with_ids = penguins.assign(penguin_id=range(len(penguins)))  # ID-like: the plan drops it
    cfg = make_registered(with_ids, mlflow_server, "mon-ids")
    path = tmp_path / "w.parquet"
    healthy(penguins).to_parquet(path)  # no penguin_id column at all
    outcome = monitor(cfg, current=path, output_dir=tmp_path / "o")
    assert not outcome.drift.dataset_drift and "penguin_id" not in outcome.drift.columns
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["not_checked"] == {"penguin_id": "ID-like (344 distinct values in 344 rows)"}
    assert "penguin_id" not in summary["data_quality"]["missing_share"]
    assert summary["model_quality"]["window"]["accuracy"] > 0.9


def test_empty_after_time_filter(registered, penguins, tmp_path):
    old = healthy(penguins).assign(timestamp=pd.Timestamp("2020-01-01", tz="UTC"))
    path = tmp_path / "w.parquet"
    old.to_parquet(path)
    with pytest.raises(DataValidationError, match="in the last 1 day"):
        monitor(registered, current=path, output_dir=tmp_path / "o", since=timedelta(hours=24))


def test_drift_creates_a_kfp_run_through_the_api(registered, penguins, tmp_path, kfp_api):
    from kubecycle.pipelines.retrain import kfp_retrainer

    path = tmp_path / "w.parquet"
    drifted(penguins).to_parquet(path)
    retrainer = kfp_retrainer(kfp_api.url, tracking_uri="http://kubecycle-mlflow.mlops:5000")
    outcome = monitor(registered, current=path, output_dir=tmp_path / "o", retrain=True,
                      retrainer=retrainer)
    [created] = kfp_api.sent("POST", "/apis/v2beta1/runs")
    assert list(kfp_api.runs) == [outcome.retrain_run_id]  # the id the API gave the run
    # the run's ingest reads the window's labelled rows where monitoring read them
    arguments = created.body["runtime_config"]["parameters"]
    assert arguments["labelled"] == str(path) and arguments["labelled_window"] == ""
    assert datetime.fromisoformat(arguments["labelled_until"]) <= datetime.now(UTC)
    spec = created.body["pipeline_spec"]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert json.loads(parameters["config"]["defaultValue"])["mlflow"]["model_name"] == (
        registered.mlflow.model_name)
    assert parameters["tracking_uri"]["defaultValue"] == "http://kubecycle-mlflow.mlops:5000"
    run = mlflow.MlflowClient().get_run(outcome.monitoring_run_id)
    assert run.data.tags["kubecycle.retrain_run_id"] == outcome.retrain_run_id


def test_versions_without_contract_or_reference(penguins, mlflow_server, tmp_path):
    """A version registered by hand (not by kubecycle run) lacks what monitoring needs."""
    from sklearn.dummy import DummyClassifier

    from kubecycle.config import parse_config
    from kubecycle.contract import infer_contract

    cfg = parse_config({"data": {"source": "x.csv", "target": "species"},
                        "mlflow": {"model_name": "mon-bare", "experiment": "mon-bare"}})
    client = mlflow.MlflowClient()
    features = penguins.drop(columns="species")
    model = DummyClassifier().fit(features, penguins.species)
    path = tmp_path / "w.parquet"
    healthy(penguins).to_parquet(path)
    for version, with_contract in (("1", False), ("2", True)):
        with mlflow.start_run():
            if with_contract:
                mlflow.log_dict(infer_contract(penguins, "species", "classification").to_dict(),
                                "contract/contract.json")
            mlflow.sklearn.log_model(model, name="model", registered_model_name="mon-bare",
                                     serialization_format="cloudpickle")
        client.set_registered_model_alias("mon-bare", "champion", version)
        expected = "has no reference data" if with_contract else "has no data contract"
        with pytest.raises(MonitoringError, match=expected):
            monitor(cfg, current=path, output_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_realized_performance_from_the_label_store_and_its_floor(penguins, mlflow_server,
                                                                  make_registered, tmp_path,
                                                                  pushgateway):
    cfg = make_registered(penguins, mlflow_server, "mon-realized", performance_floor=0.99,
                          performance_metric="accuracy", min_labels=20)
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    window = healthy(penguins, 200)
    log = tmp_path / "log"
    log.mkdir()
    served = window.drop(columns="species").assign(
        prediction=window["species"].where(np.arange(200) % 5 > 0, "Gentoo"),  # 80% right
        request_id=[f"r{i}" for i in range(200)], timestamp=now - timedelta(hours=30))
    served.to_parquet(log / "part-0.parquet")
    (tmp_path / "log" / "_labels").mkdir()
    pd.DataFrame({"request_id": [f"r{i}" for i in range(150)],
                  "label": [json.dumps(v) for v in window["species"].head(150)],
                  "received_at": now - timedelta(hours=6)}).to_parquet(
        tmp_path / "log" / "_labels" / "part.parquet")
    url, received = pushgateway
    outcome = monitor(cfg, current=log, output_dir=tmp_path / "o", now=now, push_url=url)
    realized = outcome.to_dict()["realized"]
    [chunk] = realized["chunks"]
    assert (chunk["predictions"], chunk["labelled"], chunk["coverage"]) == (200, 150, 0.75)
    expected = (window["species"].head(150) == served["prediction"].head(150)).mean()
    assert chunk["metrics"]["accuracy"] == pytest.approx(expected)
    assert chunk["delay_hours"] == pytest.approx(24.0)
    assert realized["below_floor"] and not outcome.decision.retrain
    assert outcome.decision.reason.startswith("realized accuracy")
    assert "retraining is off" in outcome.decision.reason
    text = received[0][2].decode()
    assert 'kubecycle_realized_metric{metric="accuracy"' in text
    assert "kubecycle_label_coverage" in text
    summary = json.loads(Path(outcome.paths["summary.json"]).read_text())
    assert summary["realized"]["latest"]["labelled"] == 150


def test_each_pass_adds_its_report_to_an_evidently_workspace(penguins, mlflow_server,
                                                             make_registered, tmp_path):
    from evidently.ui.workspace import Workspace

    folder = tmp_path / "workspace"
    cfg = make_registered(penguins, mlflow_server, "mon-workspace", workspace=str(folder))
    path = tmp_path / "w.parquet"
    healthy(penguins, 200).to_parquet(path)
    first = datetime(2026, 11, 24, tzinfo=UTC)
    for day in range(2):
        monitor(cfg, current=path, output_dir=tmp_path / f"o{day}", now=first + timedelta(days=day))
    workspace = Workspace(str(folder))
    [project] = workspace.search_project("mon-workspace monitoring")
    runs = workspace.list_runs(project.id)
    assert len(runs) == 2
    stamps = sorted(workspace.get_run(project.id, run).timestamp for run in runs)
    assert [s.date() for s in stamps] == [first.date(), (first + timedelta(days=1)).date()]
