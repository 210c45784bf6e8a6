"""kfp component for the feature-planning stage."""

from kfp.dsl import Artifact, Input, Output

from kubecycle.components._kfp import stage_component


@stage_component
def plan_features(
    config: str, tracking_uri: str, run_id: str, contract: Input[Artifact], plan: Output[Artifact]
) -> None:
    """Write the feature plan (columns per encoder, dropped columns with reasons)."""
    import mlflow

    from kubecycle.artifacts import read_json, write_json
    from kubecycle.components.features.core import plan_features as make_plan
    from kubecycle.config import KubecycleConfig

    cfg = KubecycleConfig.from_json(config)
    feature_plan = make_plan(read_json(contract.path), cfg.features)
    write_json(plan.path, feature_plan.to_dict())
    plan.metadata.update({"inputs": len(feature_plan.inputs), "dropped": feature_plan.dropped})
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.MlflowClient().log_dict(run_id, feature_plan.to_dict(), "features/plan.json")
