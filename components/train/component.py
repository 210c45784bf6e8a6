"""kfp component for the select-and-train stage."""


from kfp.dsl import Artifact, Dataset, Input, Model, Output

from kubecycle.components._kfp import stage_component


@stage_component
def train_model(
    config: str,
    tracking_uri: str,
    run_id: str,
    train: Input[Dataset],
    plan: Input[Artifact],
    family_choices: Input[Artifact],
    tune_results: Input[list[Artifact]],
    model: Output[Model],
    selection: Output[Artifact],
) -> None:
    """Pick the best family by CV score and refit it on the whole training set.

    The selection ranks the tuned families and lists the skipped ones, each with its reason.
    """
    import joblib
    import mlflow

    from kubecycle.artifacts import read_json, read_table, write_json
    from kubecycle.components.train.core import fit_final, select_best
    from kubecycle.config import KubecycleConfig
    from kubecycle.modelling import FeaturePlan, TuneResult
    from kubecycle.registry import FAMILY_TAG
    from kubecycle.selection import FamilyChoice
    from kubecycle.tracking import connect

    cfg = KubecycleConfig.from_json(config)
    results = [TuneResult(**read_json(item.path)) for item in tune_results]
    chosen = select_best(results, [FamilyChoice(**item) for item in read_json(family_choices.path)])
    fitted = fit_final(FeaturePlan.from_dict(read_json(plan.path)), chosen,
                       read_table(train.path), cfg.split.seed)
    joblib.dump(fitted, model.path)
    write_json(selection.path, chosen.to_dict())
    model.metadata.update({"family": chosen.family, f"cv_{chosen.metric}": chosen.cv_metric})
    connect(tracking_uri)
    client = mlflow.MlflowClient()
    client.set_tag(run_id, FAMILY_TAG, chosen.family)
    client.log_metric(run_id, f"cv_{chosen.metric}", chosen.cv_metric)
    for key, value in chosen.params.items():
        client.log_param(run_id, f"model.{key}", value)
    client.log_dict(run_id, chosen.to_dict(), "model_selection/selection.json")
