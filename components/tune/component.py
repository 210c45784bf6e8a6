"""kfp components for the tune stage: list the candidates, then tune one family per task."""


from kfp.dsl import Artifact, Dataset, Input, Output

from kubecycle.components._kfp import stage_component


@stage_component
def candidate_families(config: str, run_id: str, contract: Input[Artifact],
                       choices: Output[Artifact]) -> list[dict]:
    """One loop item per model family to tune for the (configured or inferred) task.

    Every candidate, tuned or skipped, goes to `choices` with the reason (task, data size,
    missing extra). Each item carries the parent run id too: kfp.local replaces every
    task-output parameter inside a ParallelFor body with the loop item, so the run id must
    travel in it.
    """
    from kubecycle.artifacts import read_json, write_json
    from kubecycle.config import KubecycleConfig
    from kubecycle.selection import selected_families

    cfg = KubecycleConfig.from_json(config)
    data = read_json(contract.path)
    candidates = cfg.family_choices(data["task"], int(data["rows"]))
    write_json(choices.path, [choice.to_dict() for choice in candidates])
    return [{"family": family, "run_id": run_id} for family in selected_families(candidates)]


@stage_component
def tune_family(
    config: str,
    tracking_uri: str,
    run_id: str,
    family: str,
    train: Input[Dataset],
    plan: Input[Artifact],
    result: Output[Artifact],
) -> None:
    """Cross-validated search of one family; every trial is a nested MLflow run."""
    import mlflow

    from kubecycle.artifacts import read_json, read_table, write_json
    from kubecycle.components.tune.core import search_family
    from kubecycle.config import KubecycleConfig
    from kubecycle.modelling import FeaturePlan
    from kubecycle.registry import ERROR_TAG, FAMILY_TAG, STAGE_TAG
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    connect(tracking_uri)
    client = mlflow.MlflowClient()
    experiment_id = client.get_run(run_id).info.experiment_id
    feature_plan = FeaturePlan.from_dict(read_json(plan.path))
    metric = cfg.resolved_metric(feature_plan.task)

    def log_trial(number, params, value, error):
        trial = client.create_run(
            experiment_id, run_name=f"{family}-trial-{number}",
            tags={"mlflow.parentRunId": run_id, FAMILY_TAG: family, STAGE_TAG: "tune"})
        for key, item in params.items():
            client.log_param(trial.info.run_id, key, item)
        if value is not None:
            client.log_metric(trial.info.run_id, f"cv_{metric}", value)
        else:
            client.set_tag(trial.info.run_id, ERROR_TAG, error[:500])
        client.set_terminated(trial.info.run_id, "FINISHED" if error is None else "FAILED")

    outcome = search_family(cfg, feature_plan, family, read_table(train.path), on_trial=log_trial)
    write_json(result.path, outcome.to_dict())
    result.metadata.update({"family": family, "cv_metric": outcome.cv_metric})
    if outcome.cv_metric is not None:
        client.log_metric(run_id, f"cv_{metric}.{family}", outcome.cv_metric)
