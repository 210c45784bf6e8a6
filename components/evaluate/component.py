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
    """Held-out metrics (kfp Metrics), confusion matrix (ClassificationMetrics), HTML report."""
    import math

    import joblib
    import mlflow

    from kubecycle.artifacts import read_json, read_table, write_json
    from kubecycle.components.evaluate.core import write_report
    from kubecycle.evaluation import evaluate_model as evaluate
    from kubecycle.tracking import connect

    feature_plan = read_json(plan.path)
    result = evaluate(joblib.load(model.path), read_table(test.path), feature_plan["target"],
                      feature_plan["task"])
    for name, value in result.metrics.items():
        if not math.isnan(value):
            metrics.log_metric(name, value)
    if result.confusion:
        confusion.log_confusion_matrix(result.labels, result.confusion)
    write_json(evaluation.path, result.to_dict())
    write_report(result, "kubecycle evaluation", report.path)
    connect(tracking_uri)
    client = mlflow.MlflowClient()
    for name, value in result.metrics.items():
        if not math.isnan(value):
            client.log_metric(run_id, f"test_{name}", value)
    client.log_artifact(run_id, report.path, "reports/evaluation")
