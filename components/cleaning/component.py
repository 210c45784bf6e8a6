"""kfp component for the training-rows cleaning stage."""

from kfp.dsl import Artifact, Dataset, Input, Output

from kubecycle.components._kfp import stage_component


@stage_component
def clean_training_rows(
    config: str,
    tracking_uri: str,
    run_id: str,
    train: Input[Dataset],
    contract: Input[Artifact],
    plan: Input[Artifact],
    cleaned: Output[Dataset],
    report: Output[Artifact],
) -> None:
    """Flag (and, with action drop, remove) outliers and likely mislabelled training rows.

    The counts go to the report artifact (summary.json's `cleaning`) and MLflow.
    """
    from kubecycle.artifacts import read_json, read_table, write_json, write_table
    from kubecycle.components.cleaning.core import filter_training_rows
    from kubecycle.config import KubecycleConfig
    from kubecycle.contract import DataContract
    from kubecycle.modelling import FeaturePlan
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    result = filter_training_rows(read_table(train.path),
                                  DataContract.from_dict(read_json(contract.path)),
                                  FeaturePlan.from_dict(read_json(plan.path)), cfg.cleaning,
                                  cfg.split.seed)
    write_table(result.frame, cleaned.path)
    write_json(report.path, result.to_dict())
    cleaned.metadata["rows"] = len(result.frame)
    report.metadata.update({"outliers_flagged": result.outliers.flagged,
                            "label_noise_flagged": result.label_noise.flagged})
    if cfg.cleaning.outliers.method == "none" and cfg.cleaning.label_noise.method == "none":
        return
    import mlflow

    connect(tracking_uri)
    client = mlflow.MlflowClient()
    for name, counts in (("outliers", result.outliers), ("label_noise", result.label_noise)):
        client.log_metric(run_id, f"cleaning.{name}_flagged", counts.flagged)
        client.log_metric(run_id, f"cleaning.{name}_dropped", counts.dropped)
    client.log_dict(run_id, result.to_dict(), "cleaning/cleaning.json")
