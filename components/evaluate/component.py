"""kfp component for the evaluate stage."""

from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kubecycle.components._kfp import stage_component


@stage_component
def evaluate_model(
    tracking_uri: str,
    run_id: str,
    model: Input[Model],
    test: Input[Dataset],
    plan: Input[Artifact],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    evaluation: Output[Artifact],
    report: Output[HTML],
) -> None:
    """Held-out metrics (kfp Metrics), confusion matrix (ClassificationMetrics), plots, report.

    The HTML report (metrics, per-class metrics, the plots) shows in the KFP UI; MLflow gets it
    and every plot as a PNG.
    """
    import math
    import tempfile

    import joblib
    import mlflow

    from kubecycle.artifacts import read_json, read_table, write_json
    from kubecycle.components.evaluate.core import write_report
    from kubecycle.components.evaluate.plots import write_plots
    from kubecycle.evaluation import evaluate_model as evaluate
    from kubecycle.tracking import connect

    feature_plan = read_json(plan.path)
    fitted, rows = joblib.load(model.path), read_table(test.path)
    result = evaluate(fitted, rows, feature_plan["target"], feature_plan["task"])
    scratch = tempfile.mkdtemp(prefix="kubecycle-plots-")  # the task's pod or process ends
    plots = write_plots(fitted, rows, feature_plan["target"], feature_plan["task"], scratch)
    for name, value in result.metrics.items():
        if not math.isnan(value):
            metrics.log_metric(name, value)
    if result.confusion:
        confusion.log_confusion_matrix(result.labels, result.confusion)
    write_json(evaluation.path, result.to_dict())
    write_report(result, "kubecycle evaluation", report.path, plots)
    connect(tracking_uri)
    client = mlflow.MlflowClient()
    for name, value in result.metrics.items():
        if not math.isnan(value):
            client.log_metric(run_id, f"test_{name}", value)
    client.log_artifact(run_id, report.path, "reports/evaluation")
    for png in plots.values():
        client.log_artifact(run_id, str(png), "reports/evaluation/plots")
