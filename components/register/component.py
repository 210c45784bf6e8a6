"""kfp component for the register stage."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from kubecycle.components._kfp import stage_component


@stage_component
def register_model(
    config: str,
    tracking_uri: str,
    run_id: str,
    model: Input[Model],
    train: Input[Dataset],
    test: Input[Dataset],
    recent: Input[Dataset],
    contract: Input[Artifact],
    evaluation: Input[Artifact],
    registration: Output[Artifact],
) -> None:
    """Register a model version with its data contract; alias `champion` only if it passes the gate.

    The gate compares challenger and champion on the test rows and, after a retraining with
    labelled rows, on the newest of them held out by ingest (`recent`, promotion.policy).

    The contract holds the model's inputs as the feature plan decided them.
    """
    import joblib

    from kubecycle.artifacts import read_json, read_table, write_json
    from kubecycle.components.register.core import register_version
    from kubecycle.config import KubecycleConfig
    from kubecycle.contract import DataContract
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    data_contract = DataContract.from_dict(read_json(contract.path))
    task = data_contract.task
    connect(tracking_uri)
    result = register_version(
        joblib.load(model.path), run_id=run_id, model_name=cfg.mlflow.model_name, task=task,
        metric=cfg.resolved_metric(task), test_metrics=read_json(evaluation.path)["metrics"],
        train=read_table(train.path), test=read_table(test.path), target=cfg.data.target,
        contract=data_contract, min_score=cfg.promotion.min_score,
        min_improvement=cfg.promotion.min_improvement, seed=cfg.split.seed,
        recent=read_table(recent.path), policy=cfg.promotion.policy,
        min_recent_rows=cfg.promotion.min_recent_rows)
    write_json(registration.path, result.to_dict())
    registration.metadata.update({"model_version": result.version, "status": result.decision.status})
