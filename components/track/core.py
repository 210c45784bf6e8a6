"""Start the MLflow parent run of a pipeline run."""

from __future__ import annotations

from kubecycle.config import KubecycleConfig
from kubecycle.registry import MODEL_NAME_TAG, PARENT_RUN_TAG
from kubecycle.tracking import connect


def _flatten(prefix: str, value: object, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = str(value)[:500]


def start_parent_run(cfg: KubecycleConfig, tracking_uri: str, run_name: str = "") -> str:
    """Create the experiment if needed and a parent run with the config as params.

    Returns:
        The MLflow run id.
    """
    import mlflow

    connect(tracking_uri)
    experiment = mlflow.set_experiment(cfg.mlflow.experiment)
    params: dict[str, str] = {}
    _flatten("", cfg.model_dump(mode="json"), params)
    if not isinstance(cfg.data.source, str):  # never log a database URL (may hold a password)
        params.pop("data.source.url", None)
    client = mlflow.MlflowClient()
    run = client.create_run(
        experiment.experiment_id,
        run_name=run_name or None,
        tags={PARENT_RUN_TAG: "true", MODEL_NAME_TAG: cfg.mlflow.model_name},
    )
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.log_text(run.info.run_id, cfg.model_dump_json(indent=2), "config/config.json")
    return run.info.run_id


def finish_parent_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    """Mark the parent run finished (or FAILED)."""
    import mlflow

    connect(tracking_uri)
    mlflow.MlflowClient().set_terminated(run_id, status=status)


def _explanation_summary(importance: dict) -> dict:
    """The explain stage's method, top columns per class and LIME's agreement with SHAP."""
    lime = importance.get("lime")
    return {"method": importance["method"],
            # by value: the artifact's JSON keeps its keys sorted, not ranked
            "top_by_class": {label: sorted(scores, key=scores.__getitem__, reverse=True)[:5]
                             for label, scores in importance.get("by_class", {}).items()},
            "lime_agreement": lime["agreement"] if lime else None,
            "lime_disagreements": lime["disagreements"] if lime else {}}


def build_summary(*, tracking_uri: str, run_id: str, selection: dict, cleaning: dict,
                  evaluation: dict, importance: dict, registration: dict, bento: dict,
                  reports: dict[str, str]) -> dict:
    """The run's outcome: gate status and reason, model version, chosen family, metrics."""
    return {
        "status": registration["status"],
        "reason": registration["reason"],
        "model_name": registration["model_name"],
        "model_version": registration["model_version"],
        "model_uri": registration["model_uri"],
        "champion_version_before": registration["champion_version"],
        "run_id": run_id,
        "tracking_uri": tracking_uri,
        "task": evaluation["task"],
        "metric": selection["metric"],
        "model": {"family": selection["family"], "params": selection["params"],
                  f"cv_{selection['metric']}": selection["cv_metric"],
                  "cv_std": selection["cv_std"], "ranking": selection["ranking"]},
        "cleaning": cleaning,
        "metrics": {"test": evaluation["metrics"]},
        "confusion_matrix": {"labels": evaluation["labels"], "matrix": evaluation["confusion"]},
        "top_features": importance["top_features"],
        "explanation": _explanation_summary(importance),
        "bento_tag": bento["bento_tag"],
        "bento_export": bento["export_path"],
        "serving_runtime": bento["onnx"]["runtime"],
        "serving_runtime_reason": bento["onnx"]["reason"],
        "reports": reports,
    }
