"""One monitoring pass: the champion's reference against the current window.

The pass covers drift, data and model quality, the retraining decision, and the results
(JSON, HTML, MLflow, Prometheus).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.config import KubecycleConfig
from kubecycle.contract import DataContract
from kubecycle.errors import DataValidationError, MonitoringError
from kubecycle.monitoring.drift import DriftEngine, DriftResult
from kubecycle.monitoring.policy import RetrainDecision, decide_retrain
from kubecycle.monitoring.quality import DataQuality, ModelQuality
from kubecycle.monitoring.realized import RealizedPerformance, realized_performance
from kubecycle.monitoring.window import (
    TIMESTAMP_COLUMN,
    LabelledWindow,
    parse_window,
    read_window,
    window_text,
)
from kubecycle.reference import ReferenceStats, build_reference
from kubecycle.registry import (
    DATASET_DRIFT_TAG,
    MODEL_NAME_TAG,
    MODEL_VERSION_TAG,
    MONITORING_TAG,
    REFERENCE_ARTIFACT,
    REFERENCE_STATS_ARTIFACT,
    RETRAIN_RUN_TAG,
    RegisteredVersion,
    held_out_metric_tag,
    load_contract,
    resolve_version,
)

EXIT_HEALTHY = 0
EXIT_DRIFT = 3  # documented: drift detected; could not run = 1 (2 for a config error)
PREDICTION = "prediction"
DELEGATED = "delegated-to-pipeline"  # retraining done by the monitoring pipeline's branch

# Retraining hook: (config, the window's labelled rows or None) -> id of the training run.
Retrainer = Callable[[KubecycleConfig, LabelledWindow | None], str]


@dataclass
class MonitorOutcome:
    """The results of one monitoring pass: drift, quality, the decision and what was written."""

    model_name: str
    model_version: str
    drift: DriftResult
    data_quality: dict[str, Any]
    model_quality: dict[str, Any]
    decision: RetrainDecision
    not_checked: dict[str, str] = field(default_factory=dict)  # columns the model ignores
    realized: RealizedPerformance | None = None  # when the log's predictions have labels
    monitoring_run_id: str = ""
    retrain_run_id: str | None = None
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The process exit code: EXIT_DRIFT when the data set drifted, else EXIT_HEALTHY."""
        return EXIT_DRIFT if self.drift.dataset_drift else EXIT_HEALTHY

    def to_dict(self) -> dict[str, Any]:
        """The outcome as a JSON-ready dict (the summary), with its status and exit code."""
        return {"status": "drift" if self.drift.dataset_drift else "healthy",
                "exit_code": self.exit_code, "model_name": self.model_name,
                "model_version": self.model_version, "drift": self.drift.to_dict(),
                "data_quality": self.data_quality, "model_quality": self.model_quality,
                "decision": self.decision.to_dict(), "not_checked": self.not_checked,
                "realized": self.realized.to_dict() if self.realized else None,
                "monitoring_run_id": self.monitoring_run_id,
                "retrain_run_id": self.retrain_run_id, "paths": self.paths}


def load_reference(version: RegisteredVersion, contract: DataContract) -> ReferenceStats:
    """Reference statistics registered with the version (or computed from its sample)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return ReferenceStats.from_dict(mlflow.artifacts.load_dict(
            f"runs:/{version.run_id}/{REFERENCE_STATS_ARTIFACT}"))
    except (MlflowException, OSError):
        pass
    try:
        path = mlflow.artifacts.download_artifacts(run_id=version.run_id,
                                                   artifact_path=REFERENCE_ARTIFACT)
    except (MlflowException, OSError):
        raise MonitoringError(f"{version.name} v{version.version} has no reference data; "
                              "retrain it with `kubecycle run` to register one") from None
    return build_reference(pd.read_parquet(path), kinds=contract.drift_kinds())


def _check_columns(chunk: pd.DataFrame, features: list[str], known: set[str]) -> None:
    missing = [c for c in features if c not in chunk.columns]
    if missing:
        extra = [c for c in chunk.columns if c not in known]
        hint = f"; columns not in the contract: {extra}" if extra else ""
        raise DataValidationError(f"the window lacks the model's column(s) {missing}{hint}. "
                                  "Renamed columns must be mapped back before monitoring")


def _previous_windows(client, experiment_id: str, model_name: str, limit: int
                      ) -> tuple[list[bool], datetime | None]:
    runs = client.search_runs(
        [experiment_id], f"tags.`{MONITORING_TAG}` = 'true' and "
        f"tags.`{MODEL_NAME_TAG}` = '{model_name}'",
        order_by=["attributes.start_time DESC"], max_results=max(limit, 1) + 200)
    verdicts = [r.data.tags.get(DATASET_DRIFT_TAG) == "true" for r in runs][:limit]
    retrains = [r.info.start_time for r in runs if r.data.tags.get(RETRAIN_RUN_TAG)]
    last = datetime.fromtimestamp(max(retrains) / 1000, tz=UTC) if retrains else None
    return verdicts, last


class _Sample:
    """A uniform sample of at most `size` rows of a stream (bottom-k random keys)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.rng, self.frame = size, np.random.default_rng(seed), None

    def add(self, chunk: pd.DataFrame) -> None:
        keyed = chunk.assign(_key=self.rng.random(len(chunk)))
        merged = keyed if self.frame is None else pd.concat([self.frame, keyed])
        self.frame = merged.nsmallest(self.size, "_key")

    def result(self) -> pd.DataFrame:
        return self.frame.drop(columns="_key").reset_index(drop=True)


def _write_atomically(output_dir: Path, files: dict[str, Callable[[Path], None]]) -> dict[str, str]:
    """Write every file into a temporary folder, then move them in: never half-written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".monitor-"))
    try:
        for name, write in files.items():
            write(staging / name)
        paths = {}
        for name in files:
            os.replace(staging / name, output_dir / name)
            paths[name] = str(output_dir / name)
        return paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def monitor(cfg: KubecycleConfig, *, current: str | Path, output_dir: Path,
            model: str = "", since: timedelta | None = None, retrain: bool | None = None,
            push_url: str | None = None, retrainer: Retrainer | None = None,
            now: datetime | None = None) -> MonitorOutcome:
    """Compare the window with the model's reference and act on the verdict.

    The steps are: collect (one pass over the window), decide (the retraining policy), record
    (MLflow, files, retraining).

    The tracking URI must already be set (kubecycle.tracking.connect).
    """
    import mlflow

    from kubecycle.monitoring.prometheus import push_metrics

    now = now or datetime.now(UTC)
    version = resolve_version(model, cfg.mlflow.model_name)
    contract = load_contract(version)
    if contract is None:
        raise MonitoringError(f"{version.name} v{version.version} has no data contract; "
                              "retrain it with `kubecycle run`")
    fitted = mlflow.sklearn.load_model(f"models:/{version.name}/{version.version}")
    collected = _collect(cfg, current, since, now, version, contract, fitted)
    drift = collected.engine.result()
    realized = _realized(cfg, str(current), contract.task, now)
    client = mlflow.MlflowClient()
    experiment = mlflow.set_experiment(cfg.mlflow.experiment)
    decision = _decide(cfg, client, experiment.experiment_id, version.name,
                       drift.dataset_drift, retrain, now, realized.reason() if realized else "")
    window_quality = collected.model_quality.metrics()
    registered = {k: float(version.tags[held_out_metric_tag(k)]) for k in window_quality
                  if held_out_metric_tag(k) in version.tags}
    outcome = MonitorOutcome(version.name, version.version, drift, collected.quality.to_dict(),
                             {"window": window_quality, "registered_test": registered,
                              "labelled_rows": collected.model_quality.rows}, decision,
                             not_checked=dict(contract.dropped), realized=realized)
    if push_url:  # before anything is written: a refused push leaves no partial results
        push_metrics(push_url, version.name, version.version, drift, window_quality, realized)
    # retraining reads the window's labelled rows again, through the training pipeline
    source = str(current) if "://" in str(current) else str(Path(current).resolve())
    stored_labels = bool(realized and any(chunk.labelled for chunk in realized.chunks))
    labelled = (LabelledWindow(source, window_text(since), now.isoformat())
                if collected.model_quality.rows or stored_labels else None)
    _record(cfg, client, experiment.experiment_id, version, collected, outcome, retrainer,
            labelled, output_dir, now)
    return outcome


@dataclass
class _Collected:
    """What one pass over the window gathered."""

    engine: DriftEngine
    quality: DataQuality
    model_quality: ModelQuality
    sample: _Sample


def _collect(cfg: KubecycleConfig, current: str | Path, since: timedelta | None, now: datetime,
             version: RegisteredVersion, contract: DataContract, fitted: Any) -> _Collected:
    """Read the window chunk by chunk into the drift engine, quality checks and report sample.

    Data and model quality (with the labelled rows) and a bounded sample for the report are
    gathered too. Only the model's inputs are checked: the columns the feature plan dropped may
    be absent and are not tested for drift.
    """
    reference = load_reference(version, contract)
    target, features, inputs = contract.target, contract.features, contract.inputs
    engine = quality = None
    model_quality = ModelQuality(contract.task)
    sample = _Sample(cfg.monitoring.sample_rows)
    for chunk in read_window(current, since, now=now):
        if engine is None:
            _check_columns(chunk, inputs,
                           {*contract.columns, PREDICTION, TIMESTAMP_COLUMN})
            labelled = target is not None and target in chunk.columns
            columns = [*inputs, PREDICTION, *([target] if labelled else [])]
            engine = DriftEngine(ReferenceStats({c: reference.columns[c] for c in columns
                                                 if c in reference.columns}),
                                 cfg.monitoring.drift_share)
            quality = DataQuality(contract)
        if PREDICTION not in chunk.columns:
            chunk = chunk.assign(**{PREDICTION: fitted.predict(
                chunk.reindex(columns=features))})  # dropped columns: missing
        engine.add(chunk)
        quality.add(chunk)
        sample.add(chunk[[c for c in engine.windows if c in chunk.columns]])
        if target is not None and target in chunk.columns:
            model_quality.add(chunk[target], chunk[PREDICTION].to_numpy())
    if engine is None:
        raise DataValidationError(f"the window {current} has no rows"
                                  + (f" in the last {since}" if since else "")
                                  + "; check --current and --window")
    return _Collected(engine, quality, model_quality, sample)


def _realized(cfg: KubecycleConfig, current: str, task: str, now: datetime
              ) -> RealizedPerformance | None:
    """Realized performance of the log's predictions, when its label store holds labels."""
    from kubecycle.catalog import METRICS
    from kubecycle.monitoring.labels import read_labels
    from kubecycle.settings import label_store

    store = label_store(current)
    if task not in ("classification", "regression") or not store:
        return None
    labels = read_labels(store)
    if labels.empty:
        return None
    settings = cfg.monitoring
    metric = settings.performance_metric or ("f1" if task == "classification" else "rmse")
    return realized_performance(current, labels, task=task, metric=metric,
                                greater_is_better=METRICS[metric].greater_is_better,
                                chunk=parse_window(settings.performance_chunk),
                                min_labels=settings.min_labels, floor=settings.performance_floor,
                                id_columns=settings.id_columns, now=now)


def _decide(cfg: KubecycleConfig, client: Any, experiment_id: str, model_name: str,
            dataset_drift: bool, retrain: bool | None, now: datetime,
            underperformance: str = "") -> RetrainDecision:
    """The retraining policy over this window and the model's previous monitoring runs."""
    previous, last_retrain = _previous_windows(client, experiment_id, model_name,
                                               cfg.monitoring.consecutive_windows - 1)
    return decide_retrain(dataset_drift, previous, last_retrain, now,
                          cfg.monitoring.consecutive_windows,
                          timedelta(hours=cfg.monitoring.cooldown_hours),
                          cfg.monitoring.retrain if retrain is None else retrain,
                          underperformance)


def _record(cfg: KubecycleConfig, client: Any, experiment_id: str, version: RegisteredVersion,
            collected: _Collected, outcome: MonitorOutcome, retrainer: Retrainer | None,
            labelled: LabelledWindow | None, output_dir: Path, now: datetime) -> None:
    """Record the monitoring run in MLflow, retrain when decided, and write the files.

    The MLflow run holds metrics, report and summary; the files go to output_dir (written
    atomically).
    """
    from kubecycle.artifacts import write_json
    from kubecycle.monitoring.report import bounded, evidently_drift
    from kubecycle.monitoring.workspace import WorkspaceRun

    drift = outcome.drift
    kinds = {c: collected.engine.windows[c].reference.kind for c in collected.engine.windows}
    reference_sample = _reference_sample(version, list(kinds))
    with tempfile.TemporaryDirectory() as staging:
        html = Path(staging) / "drift_report.html"
        if reference_sample is not None:
            workspace = (WorkspaceRun(cfg.monitoring.workspace, f"{version.name} monitoring",
                                      now, {MODEL_NAME_TAG: version.name,
                                            MODEL_VERSION_TAG: version.version})
                         if cfg.monitoring.workspace else None)
            evidently_drift(bounded(reference_sample, cfg.monitoring.sample_rows),
                            collected.sample.result(), kinds, cfg.monitoring.drift_share, html,
                            workspace)
        run = client.create_run(experiment_id,
                                run_name=f"monitor-{version.name}-v{version.version}",
                                tags={MONITORING_TAG: "true", MODEL_NAME_TAG: version.name,
                                      MODEL_VERSION_TAG: version.version,
                                      DATASET_DRIFT_TAG: str(drift.dataset_drift).lower()})
        outcome.monitoring_run_id = run.info.run_id
        if outcome.decision.retrain:  # without a retrainer the caller retrains (the pipeline)
            try:
                outcome.retrain_run_id = (retrainer(cfg, labelled) if retrainer
                                          else DELEGATED)
            except Exception:
                client.set_terminated(run.info.run_id, "FAILED")
                raise
            client.set_tag(run.info.run_id, RETRAIN_RUN_TAG, outcome.retrain_run_id)
        client.log_metric(run.info.run_id, "drift_share", drift.share)
        client.log_metric(run.info.run_id, "drifted_columns", len(drift.drifted_columns))
        client.log_metric(run.info.run_id, "window_rows", drift.rows)
        for name, value in outcome.model_quality["window"].items():
            client.log_metric(run.info.run_id, f"window_{name}", value)
        if outcome.realized is not None:
            _log_realized(client, run.info.run_id, outcome.realized)
        for name, column in drift.columns.items():
            if column.score == column.score:
                client.log_metric(run.info.run_id, f"drift_score.{name}", column.score)
        files = {"summary.json": lambda p: write_json(p, outcome.to_dict())}
        if html.exists():
            client.log_artifact(run.info.run_id, str(html), "monitoring")
            files["drift_report.html"] = lambda p: shutil.copy(html, p)
        client.log_dict(run.info.run_id, outcome.to_dict(), "monitoring/summary.json")
        outcome.paths = _write_atomically(output_dir, files)
        client.set_terminated(run.info.run_id)


def _log_realized(client: Any, run_id: str, realized: RealizedPerformance) -> None:
    """Each chunk's metrics and coverage at the chunk's time (MLflow charts them over time)."""
    for chunk in realized.chunks:
        stamp = int(pd.Timestamp(chunk.start).timestamp() * 1000)
        client.log_metric(run_id, "label_coverage", chunk.coverage, timestamp=stamp)
        for name, value in chunk.metrics.items():
            client.log_metric(run_id, f"realized_{name}", value, timestamp=stamp)


def _reference_sample(version: RegisteredVersion, columns: list[str]) -> pd.DataFrame | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        path = mlflow.artifacts.download_artifacts(run_id=version.run_id,
                                                   artifact_path=REFERENCE_ARTIFACT)
    except (MlflowException, OSError):
        return None
    frame = pd.read_parquet(path)
    return frame[[c for c in columns if c in frame.columns]]
