"""kfp component for the explain stage."""

from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

from kubecycle.components._kfp import stage_component


@stage_component
def explain_model(
    config: str,
    tracking_uri: str,
    run_id: str,
    model: Input[Model],
    test: Input[Dataset],
    plan: Input[Artifact],
    importance: Output[Artifact],
    report: Output[HTML],
) -> None:
    """SHAP importance per column and class, LIME beside it (JSON), plots and an HTML report."""
    from pathlib import Path

    import joblib
    import mlflow

    from kubecycle.artifacts import read_json, read_table, write_json
    from kubecycle.components.explain.core import (
        explain_rows,
        write_class_plots,
        write_report,
        write_summary_plot,
    )
    from kubecycle.config import KubecycleConfig
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    feature_plan = read_json(plan.path)
    explanation, values = explain_rows(joblib.load(model.path), read_table(test.path),
                                       feature_plan["target"], feature_plan["task"], cfg.split.seed,
                                       cfg.explain)
    png = Path(report.path).with_suffix(".png")
    write_summary_plot(values, png)
    class_plots = write_class_plots(values, png)
    write_report(explanation, png, report.path, class_plots)
    write_json(importance.path, explanation.to_dict())
    connect(tracking_uri)
    client = mlflow.MlflowClient()
    client.log_artifact(run_id, report.path, "reports/shap")
    for path in (png, *class_plots.values()):
        client.log_artifact(run_id, str(path), "reports/shap")
    if explanation.lime:
        client.log_metric(run_id, "explain.shap_lime_agreement", explanation.lime["agreement"])
    client.log_dict(run_id, explanation.to_dict(), "reports/shap/importance.json")
