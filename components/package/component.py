"""kfp component for the package stage."""

from kfp.dsl import Artifact, Input, Model, Output

from kubecycle.components._kfp import stage_component


@stage_component
def package_model(
    tracking_uri: str,
    run_id: str,
    model: Input[Model],
    registration: Input[Artifact],
    contract: Input[Artifact],
    bento: Output[Artifact],
) -> None:
    """Build a bento for the registered version, export it, and tag the version with it."""
    import os

    import joblib
    import mlflow

    from kubecycle.artifacts import read_json, write_json
    from kubecycle.components.package.core import build_bento
    from kubecycle.settings import bentoml_home

    os.environ.setdefault("BENTOML_HOME", str(bentoml_home()))
    registered = read_json(registration.path)
    data_contract = read_json(contract.path)
    os.makedirs(bento.path, exist_ok=True)
    result = build_bento(joblib.load(model.path), registered["model_name"],
                         registered["model_version"], data_contract, export_dir=bento.path)
    write_json(os.path.join(bento.path, "bento.json"), result.__dict__)
    bento.metadata.update({"bento_tag": result.bento_tag, "export": result.export_path})
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    client.set_model_version_tag(registered["model_name"], registered["model_version"],
                                 "kubecycle.bento_tag", result.bento_tag)
    client.set_tag(run_id, "kubecycle.bento_tag", result.bento_tag)
