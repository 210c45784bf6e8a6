"""kfp component for the pre-trained model stage (in place of tune and train)."""


from kfp.dsl import Artifact, Dataset, Input, Model, Output

from kubecycle.components._kfp import stage_component


@stage_component
def load_pretrained_model(
    config: str,
    tracking_uri: str,
    run_id: str,
    train: Input[Dataset],
    plan: Input[Artifact],
    model: Output[Model],
    selection: Output[Artifact],
) -> None:
    """Load models.pretrained, check it against the training rows, and hand it on as the model.

    The selection records the model's source and format where the train stage records the
    chosen family.
    """
    import joblib
    import mlflow

    from kubecycle.artifacts import read_json, read_table, write_json
    from kubecycle.components.pretrained.core import (
        as_model_pipeline,
        check_fits,
        describe,
        load_pretrained,
    )
    from kubecycle.config import KubecycleConfig
    from kubecycle.modelling import FeaturePlan, split_xy
    from kubecycle.registry import FAMILY_TAG
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    feature_plan = FeaturePlan.from_dict(read_json(plan.path))
    connect(tracking_uri)  # an MLflow URI resolves against the run's tracking server
    pretrained = load_pretrained(cfg.models.pretrained, trust_pickle=cfg.models.trust_pickle,
                                 trusted_types=cfg.models.trusted_types)
    x, y = split_xy(read_table(train.path), feature_plan.target)
    inputs = check_fits(pretrained.estimator, x, y, feature_plan.task)
    joblib.dump(as_model_pipeline(pretrained.estimator, inputs, x), model.path)
    chosen = describe(pretrained, cfg.resolved_metric(feature_plan.task))
    write_json(selection.path, chosen)
    model.metadata.update({"family": chosen["family"], "source": pretrained.source})
    client = mlflow.MlflowClient()
    client.set_tag(run_id, FAMILY_TAG, chosen["family"])
    client.log_param(run_id, "model.source", pretrained.source)
    client.log_dict(run_id, chosen, "model_selection/selection.json")
