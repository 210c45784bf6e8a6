"""kfp component for the EDA stage."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from kubecycle.components._kfp import stage_component


@stage_component
def explore_data(
    config: str,
    tracking_uri: str,
    run_id: str,
    clean: Input[Dataset],
    contract: Input[Artifact],
    cleaning: Input[Artifact],
    report: Output[HTML],
) -> None:
    """Write the EDA report (with the training-row cleaning counts) as HTML and log it to MLflow."""
    import mlflow

    from kubecycle.artifacts import read_json, read_table
    from kubecycle.components.explore.core import build_eda_report
    from kubecycle.contract import DataContract
    from kubecycle.tracking import connect

    result = build_eda_report(read_table(clean.path),
                              DataContract.from_dict(read_json(contract.path)), report.path,
                              cleaning=read_json(cleaning.path))
    report.metadata["rows_profiled"] = result.rows_profiled
    connect(tracking_uri)
    mlflow.MlflowClient().log_artifact(run_id, report.path, "reports/eda")
