"""kfp component for the package stage."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from kubecycle.components._kfp import stage_component


@stage_component
def package_model(
    config: str,
    tracking_uri: str,
    run_id: str,
    model: Input[Model],
    registration: Input[Artifact],
    contract: Input[Artifact],
    test: Input[Dataset],
    bento: Output[Artifact],
) -> None:
    """Build a bento for the registered version (serving an ONNX graph of the model when one
    reproduces its predictions on the registered held-out rows), export it (also to
    deploy.bento_store when set), and tag the version with it."""
    import os

    import joblib
    import mlflow
    import pandas as pd

    from kubecycle.artifacts import read_json, write_json
    from kubecycle.components.package.core import build_bento, export_archive
    from kubecycle.config import KubecycleConfig
    from kubecycle.registry import BENTO_TAG, BENTO_URI_TAG, held_out_rows
    from kubecycle.settings import BENTOML_HOME, bentoml_home
    from kubecycle.tracking import connect

    os.environ.setdefault(BENTOML_HOME.name, str(bentoml_home()))
    cfg = KubecycleConfig.from_json(config)
    registered = read_json(registration.path)
    data_contract = read_json(contract.path)
    os.makedirs(bento.path, exist_ok=True)
    result = build_bento(joblib.load(model.path), registered["model_name"],
                         registered["model_version"], data_contract, export_dir=bento.path,
                         test=held_out_rows(pd.read_parquet(test.path), cfg.split.seed))
    write_json(os.path.join(bento.path, "bento.json"), result.to_dict())
    bento.metadata.update({"bento_tag": result.bento_tag, "export": result.export_path,
                           "onnx": result.onnx.reason})
    tags = {BENTO_TAG: result.bento_tag, **result.onnx.to_tags()}
    store = cfg.deploy.bento_store
    if store:  # where the serving pods import from: `kubecycle deploy` pins this URI
        tags[BENTO_URI_TAG] = export_archive(
            result.bento_tag, store, os.path.basename(result.export_path))
        bento.metadata["bento_uri"] = tags[BENTO_URI_TAG]
    connect(tracking_uri)  # the registry too: never MLFLOW_REGISTRY_URI's
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(registered["model_name"], registered["model_version"],
                                     key, value)
    client.set_tag(run_id, BENTO_TAG, result.bento_tag)
