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
    """SHAP global importance (JSON), summary plot (PNG) and an HTML report."""
    from pathlib import Path

    import joblib
    import mlflow

    from kubecycle.artifacts import read_json, read_table, write_json
    from kubecycle.components.explain.core import explain_rows, write_report, write_summary_plot
    from kubecycle.config import KubecycleConfig
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    feature_plan = read_json(plan.path)
    explanation, values = explain_rows(joblib.load(model.path), read_table(test.path),
                                  feature_plan["target"], feature_plan["task"], cfg.split.seed)
    png = Path(report.path).with_suffix(".png")
    write_summary_plot(values, png)
    write_report(explanation, png, report.path)
    write_json(importance.path, explanation.to_dict())
    connect(tracking_uri)
    client = mlflow.MlflowClient()
    client.log_artifact(run_id, report.path, "reports/shap")
    client.log_artifact(run_id, str(png), "reports/shap")
    client.log_dict(run_id, explanation.to_dict(), "reports/shap/importance.json")
