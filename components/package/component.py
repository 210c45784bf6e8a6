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
    """Build a bento for the registered version, export it, and tag the version with it.

    The bento serves an ONNX graph of the model when one reproduces its predictions on the
    registered held-out rows; it is also exported to deploy.bento_store when set.
    """
    import os

    import joblib
    import pandas as pd

    from kubecycle.artifacts import read_json, write_json
    from kubecycle.components.package.core import package_registered
    from kubecycle.config import KubecycleConfig
    from kubecycle.contract import DataContract
    from kubecycle.settings import BENTOML_HOME, bentoml_home
    from kubecycle.tracking import connect

    os.environ.setdefault(BENTOML_HOME.name, str(bentoml_home()))
    cfg = KubecycleConfig.from_json(config)
    os.makedirs(bento.path, exist_ok=True)
    connect(tracking_uri)  # the registry too: never MLFLOW_REGISTRY_URI's
    result = package_registered(
        joblib.load(model.path), read_json(registration.path),
        DataContract.from_dict(read_json(contract.path)), pd.read_parquet(test.path),
        seed=cfg.split.seed, export_dir=bento.path, bento_store=cfg.deploy.bento_store,
        run_id=run_id)
    write_json(os.path.join(bento.path, "bento.json"), result.to_dict())
    bento.metadata.update({"bento_tag": result.bento_tag, "export": result.export_path,
                           "onnx": result.onnx.reason})
    if result.bento_uri:
        bento.metadata["bento_uri"] = result.bento_uri
