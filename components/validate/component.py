"""kfp component for the validate-and-clean stage."""

from kfp.dsl import Artifact, Dataset, Input, Output

from kubecycle.components._kfp import stage_component


@stage_component
def validate_data(
    config: str,
    tracking_uri: str,
    run_id: str,
    raw: Input[Dataset],
    clean: Output[Dataset],
    contract: Output[Artifact],
) -> None:
    """Clean the rows, infer the data contract, and check the data against the champion's.

    The champion's contract is the one the register stage registered with its version.
    """
    import mlflow

    from kubecycle.artifacts import read_table, write_json, write_table
    from kubecycle.components.validate.core import clean as clean_rows
    from kubecycle.config import KubecycleConfig
    from kubecycle.errors import ConfigError, DataValidationError
    from kubecycle.registry import CHAMPION, TASK_TAG, load_contract, version_by_alias
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    result = clean_rows(read_table(raw.path), cfg.data.target, cfg.task, cfg.data.drop_columns)
    try:
        cfg.check_for_task(result.task)
    except ValueError as exc:
        raise ConfigError(f"inferred task {result.task}: {exc}") from None
    connect(tracking_uri)
    champion = version_by_alias(cfg.mlflow.model_name, CHAMPION)
    registered = load_contract(champion) if champion else None
    if registered is not None:
        violations = registered.violations(result.frame)
        if violations:
            raise DataValidationError(
                f"data breaks the contract of {cfg.mlflow.model_name} v{champion.version}: "
                + "; ".join(violations)
                + ". Fix the source, or register under a new mlflow.model_name")
    write_table(result.frame, clean.path)
    write_json(contract.path, result.contract.to_dict())
    counts = {
        "rows_clean": len(result.frame),
        "dropped_duplicates": result.dropped_duplicates,
        "dropped_missing_target": result.dropped_missing_target,
    }
    clean.metadata.update(counts)
    contract.metadata["task"] = result.task
    client = mlflow.MlflowClient()
    for key, value in counts.items():
        client.log_metric(run_id, f"data.{key}", value)
    client.set_tag(run_id, TASK_TAG, result.task)
