"""Log the model Pipeline to MLflow, register a version and apply the promotion gate."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kubecycle.catalog import METRICS, Task
from kubecycle.components.register.gate import (
    GateDecision,
    RecentScores,
    decide,
    decide_with_recent,
)
from kubecycle.contract import DataContract
from kubecycle.errors import TrackingError
from kubecycle.evaluation import score
from kubecycle.modelling import split_xy
from kubecycle.reference import build_reference
from kubecycle.registry import (
    CHALLENGER,
    CHAMPION,
    CONTRACT_ARTIFACT,
    GATE_BASIS_TAG,
    GATE_REASON_TAG,
    GATE_TAG,
    METRIC_TAG,
    MODEL_PACKAGES,
    RECENT_ROWS_TAG,
    REFERENCE_STATS_ARTIFACT,
    RUN_ID_TAG,
    TASK_TAG,
    TEST_ARTIFACT,
    held_out_metric_tag,
    held_out_rows,
    model_code,
    pinned,
    recent_metric_tag,
    version_by_alias,
)

REFERENCE_ROWS = 5_000
EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class Registration:
    """A registered model version and the gate's decision on making it the champion."""

    model_name: str
    version: str
    model_uri: str
    decision: GateDecision
    champion_version: str | None

    def to_dict(self) -> dict[str, Any]:
        """The registration as a JSON-ready dict, with the gate decision's fields merged in."""
        return {"model_name": self.model_name, "model_version": self.version,
                "model_uri": self.model_uri, "champion_version": self.champion_version,
                **self.decision.to_dict()}


def reference_sample(train: pd.DataFrame, model, target: str | None, seed: int) -> pd.DataFrame:
    """Rows monitoring compares against: features, target and the model's prediction."""
    sample = train.sample(min(len(train), REFERENCE_ROWS), random_state=seed)
    x, _ = split_xy(sample, target)
    return sample.assign(prediction=model.predict(x)).reset_index(drop=True)


def _champion_score(model_name: str, test: pd.DataFrame, target: str | None, task: Task,
                    metric: str, recent: pd.DataFrame | None = None
                    ) -> tuple[str | None, float | None, str, float | None]:
    """The champion's score on the challenger's test rows, else its recorded test score.

    Also its score on the newest labelled rows when they are given (None if it fails there).
    """
    import mlflow

    champion = version_by_alias(model_name, CHAMPION)
    if champion is None:
        return None, None, "no champion", None
    try:
        model = mlflow.sklearn.load_model(f"models:/{model_name}@{CHAMPION}")
        on_recent = score(model, recent, target, task, metric) if recent is not None else None
        return (champion.version, score(model, test, target, task, metric), "same test rows",
                on_recent)
    except Exception as exc:  # an incompatible champion is compared on its recorded score
        recorded = champion.tags.get(held_out_metric_tag(metric))
        note = f"recorded score (rescoring failed: {type(exc).__name__})"
        return champion.version, float(recorded) if recorded else None, note, None


def _trusted_types(model) -> list[str]:
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


def _log_companions(contract: DataContract, reference: pd.DataFrame, test: pd.DataFrame,
                    seed: int, decision: GateDecision, basis: str) -> None:
    """Log what comes with a version into the active run.

    The data contract, the reference sample and its drift statistics, the held-out rows, and
    the gate's decision.
    """
    import mlflow

    mlflow.log_dict(contract.to_dict(), CONTRACT_ARTIFACT)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reference.parquet"
        reference.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), "reference")
        held_out = Path(folder) / Path(TEST_ARTIFACT).name
        held_out_rows(test, seed).to_parquet(held_out, index=False)
        mlflow.log_artifact(str(held_out), str(Path(TEST_ARTIFACT).parent))
    stats = build_reference(reference, kinds=contract.drift_kinds())
    mlflow.log_dict(stats.to_dict(), REFERENCE_STATS_ARTIFACT)
    mlflow.log_dict(decision.to_dict(), "gate/decision.json")
    mlflow.set_tags({GATE_TAG: decision.status, GATE_REASON_TAG: decision.reason[:5000],
                     GATE_BASIS_TAG: basis})


def _tag_version(client: Any, model_name: str, version: str, tags: dict[str, str],
                 promote: bool) -> None:
    """Tag the version and give it its alias; on any failure delete it (never half-registered)."""
    try:
        for key, value in tags.items():
            client.set_model_version_tag(model_name, version, key, value)
        client.set_registered_model_alias(model_name, CHAMPION if promote else CHALLENGER,
                                          version)
    except Exception:
        client.delete_model_version(model_name, version)
        raise


def register_version(
    model,
    *,
    run_id: str,
    model_name: str,
    task: Task,
    metric: str,
    test_metrics: dict[str, float],
    train: pd.DataFrame,
    test: pd.DataFrame,
    target: str | None,
    contract: DataContract,
    min_score: float | None,
    min_improvement: float,
    seed: int,
    recent: pd.DataFrame | None = None,
    policy: str = "test",
    min_recent_rows: int = 1,
) -> Registration:
    """Log, register and gate one model version under the parent run.

    The champion is rescored on this run's test rows so both face the same data, and both on
    the newest labelled rows held out of training (`recent`, retraining only) when there are
    at least min_recent_rows; `policy` (promotion.policy) says which decides. If any step
    after registration fails, the new version is deleted (never half-registered).
    """
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    if recent is not None and (target is None or len(recent) < min_recent_rows):
        recent = None  # too few to judge by: the test split decides
    champion_version, champion_score, basis, champion_recent = _champion_score(
        model_name, test, target, task, metric, recent)
    greater = METRICS[metric].greater_is_better
    decision = decide(metric, test_metrics[metric], champion_score, greater, min_score,
                      min_improvement)
    if recent is not None:
        scores = RecentScores(len(recent), score(model, recent, target, task, metric),
                              champion_recent)
        decision = decide_with_recent(decision, metric, scores, greater, policy, min_score,
                                      min_improvement)
    x_train, _ = split_xy(train, target)
    example = x_train.head(EXAMPLE_ROWS)
    signature = infer_signature(example, model.predict(example))
    with mlflow.start_run(run_id=run_id, nested=False) as active, model_code() as code:
        info = mlflow.sklearn.log_model(
            sk_model=model, name="model", signature=signature, input_example=example,
            registered_model_name=model_name, skops_trusted_types=_trusted_types(model),
            pip_requirements=pinned(MODEL_PACKAGES),  # not inferred: that reloads the model
            code_paths=code, metadata={"task": task, "metric": metric, "target": target})
        _log_companions(contract, reference_sample(train, model, target, seed), test, seed,
                        decision, basis)
        run_uuid = active.info.run_id
    version = str(info.registered_model_version)
    if version in ("None", ""):
        raise TrackingError(f"MLflow did not register {model_name}; check the registry backend")
    tags = {TASK_TAG: task, METRIC_TAG: metric, RUN_ID_TAG: run_uuid,
            GATE_TAG: decision.status, GATE_REASON_TAG: decision.reason[:5000],
            **{held_out_metric_tag(k): f"{v:.6g}" for k, v in test_metrics.items()}}
    if decision.recent_rows:
        tags[RECENT_ROWS_TAG] = str(decision.recent_rows)
        tags[recent_metric_tag(metric)] = f"{decision.recent_challenger_score:.6g}"
    _tag_version(MlflowClient(), model_name, version, tags, decision.promote)
    return Registration(model_name, version, f"models:/{model_name}/{version}", decision,
                        champion_version)
