"""kfp component for the feature-planning stage."""

from kfp.dsl import Artifact, Input, Output

from kubecycle.components._kfp import stage_component


@stage_component
def plan_features(
    config: str,
    tracking_uri: str,
    run_id: str,
    contract: Input[Artifact],
    plan: Output[Artifact],
    model_contract: Output[Artifact],
) -> None:
    """Write the feature plan and the data contract with the model's inputs.

    The plan lists the columns per encoder and the dropped columns with reasons; the contract
    keeps the model's inputs as the plan decided them (what register, package and monitoring
    read).
    """
    import mlflow

    from kubecycle.artifacts import read_json, write_json
    from kubecycle.components.features.core import plan_columns
    from kubecycle.config import KubecycleConfig
    from kubecycle.contract import DataContract
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    data_contract = DataContract.from_dict(read_json(contract.path))
    feature_plan = plan_columns(data_contract, cfg.features)
    write_json(plan.path, feature_plan.to_dict())
    write_json(model_contract.path, data_contract.with_inputs(feature_plan.dropped).to_dict())
    plan.metadata.update({"inputs": len(feature_plan.inputs), "dropped": feature_plan.dropped})
    connect(tracking_uri)
    mlflow.MlflowClient().log_dict(run_id, feature_plan.to_dict(), "features/plan.json")
