"""The MLflow model registry: its vocabulary, the champion and what was registered with it.

The vocabulary covers aliases, artifacts, tags and bento names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Literal

from kubecycle.contract import DataContract
from kubecycle.errors import RegistryError

if TYPE_CHECKING:
    import pandas as pd

CHAMPION = "champion"
CHALLENGER = "challenger"
CONTRACT_ARTIFACT = "contract/contract.json"
REFERENCE_ARTIFACT = "reference/reference.parquet"
REFERENCE_STATS_ARTIFACT = "reference/stats.json"  # precomputed once, read by monitoring
TEST_ARTIFACT = "evaluation/test.parquet"  # held-out rows; packaging verifies ONNX graphs on them
SERVING_ARTIFACTS = "serving"  # the verified ONNX graph and the service's info of a version
ONNX_FILE = "model.onnx"  # the verified graph, in a bento and in SERVING_ARTIFACTS
INFO_FILE = "kubecycle_bento.json"  # the service's info (fields, classes), likewise
TEST_ROWS = 10_000  # at most this many held-out rows are kept with a version
BENTO_TAG = "kubecycle.bento_tag"  # the bento built for a version (on the version and the run)
BENTO_URI_TAG = "kubecycle.bento_uri"  # the exported archive a cluster imports (deploy pins it)
# What the bento serves with, and why (summary.json says the same as serving_runtime).
SERVING_RUNTIME_TAG = "kubecycle.serving_runtime"
SERVING_RUNTIME_REASON_TAG = "kubecycle.serving_runtime_reason"
ServingRuntime = Literal["onnx", "sklearn"]
# Tags on runs and versions
PARENT_RUN_TAG = "kubecycle.parent"  # the training pipeline's parent run
MONITORING_TAG = "kubecycle.monitoring"  # a monitoring run
TASK_TAG = "kubecycle.task"
METRIC_TAG = "kubecycle.metric"
RUN_ID_TAG = "kubecycle.run_id"  # on a version: the run that logged it
FAMILY_TAG = "kubecycle.family"
STAGE_TAG = "kubecycle.stage"
ERROR_TAG = "kubecycle.error"
GATE_TAG = "kubecycle.gate"  # promoted | rejected
GATE_REASON_TAG = "kubecycle.gate_reason"
GATE_BASIS_TAG = "kubecycle.gate_basis"
MODEL_NAME_TAG = "kubecycle.model_name"
MODEL_VERSION_TAG = "kubecycle.model_version"
DATASET_DRIFT_TAG = "kubecycle.dataset_drift"
RETRAIN_RUN_TAG = "kubecycle.retrain_run_id"
# what loading a registered Pipeline needs (saved with skops; kubecycle's own transformers are
# copied into bentos, not pip-installable)
MODEL_PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "skops")


def bento_name(model_name: str) -> str:
    """A valid BentoML name (lowercase letters, digits, '-', '_', '.') for a model name.

    Args:
        model_name: The MLflow registered model name.

    Returns:
        The name its bentos (and the serving pods' KUBECYCLE_BENTO_NAME) carry.
    """
    return re.sub(r"[^a-z0-9_.-]", "-", model_name.lower()).strip("-.") or "kubecycle-model"


RECENT_ROWS_TAG = "kubecycle.recent_rows"  # newest labelled rows the gate scored (retraining)


def recent_metric_tag(metric: str) -> str:
    """The version tag holding its score on the newest labelled rows the gate held out."""
    return f"kubecycle.recent.{metric}"


def held_out_metric_tag(metric: str) -> str:
    """The version tag holding the held-out score of a metric."""
    return f"kubecycle.test_{metric}"


def bento_archive(model_name: str, version: str) -> str:
    """The file name of a version's exported bento archive.

    `kubecycle deploy` derives <deploy.bento_store>/<this> when no URI is recorded on the
    version.
    """
    return f"{bento_name(model_name)}-{version}.bento"


def held_out_rows(test: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The held-out rows registered with a version (and checked at packaging).

    They are a seeded sample of at most TEST_ROWS rows of the test split.
    """
    return test.sample(min(len(test), TEST_ROWS), random_state=seed)


@contextmanager
def model_code() -> Iterator[list[str]]:
    """The code a registered model needs besides its libraries, as MLflow's `code_paths`.

    kubecycle's transformers and estimators, at their import path, so that
    `mlflow.pyfunc.load_model` works where kubecycle is not installed; where it is, the package
    found first serves the rest.

    Yields:
        The paths to log (a temporary copy, removed afterwards).
    """
    import shutil
    import tempfile
    from pathlib import Path

    import kubecycle

    source = Path(kubecycle.__file__).parent
    with tempfile.TemporaryDirectory() as folder:
        package = Path(folder) / "kubecycle"
        package.mkdir()
        (package / "__init__.py").write_text(_MODEL_CODE_INIT)
        for module in MODEL_MODULES:
            shutil.copy(source / module, package / module)
        yield [str(package)]


# what a pickled model may import
MODEL_MODULES = ("encoding.py", "transformers.py", "estimators.py", "neural.py")
_MODEL_CODE_INIT = '''"""kubecycle's transformers and estimators, shipped with a model (MLflow code_paths).

Where kubecycle is installed too, its other modules are found beside these.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
'''


def pinned(packages: Iterable[str]) -> list[str]:
    """The packages as pip requirements pinned to the installed versions: `name==version`."""
    return [f"{name}=={metadata.version(name)}" for name in packages]


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered model version: its model name, version number, training run and tags."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str]


def version_by_alias(model_name: str, alias: str) -> RegisteredVersion | None:
    """The version holding alias, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        mv = MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
    return RegisteredVersion(model_name, str(mv.version), mv.run_id, dict(mv.tags))


def load_contract(version: RegisteredVersion) -> DataContract | None:
    """The data contract logged with a version's training run, or None if absent."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path=CONTRACT_ARTIFACT)
    except (MlflowException, OSError):
        return None
    with open(path) as handle:
        return DataContract.from_dict(json.load(handle))


def load_test_rows(version: RegisteredVersion):
    """The held-out test rows registered with a version (a DataFrame), or None if absent."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    try:
        path = mlflow.artifacts.download_artifacts(run_id=version.run_id,
                                                   artifact_path=TEST_ARTIFACT)
    except (MlflowException, OSError):
        return None
    return pd.read_parquet(path)


def resolve_version(reference: str, default_name: str) -> RegisteredVersion:
    """'name@alias', 'name/version', or '' (the config's model @champion)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    reference = reference or f"{default_name}@{CHAMPION}"
    if "@" in reference:
        name, alias = reference.split("@", 1)
        found = version_by_alias(name, alias)
        if found is None:
            raise RegistryError(f"no model version {reference} is registered; train one with "
                                "`kubecycle run` or check --model")
        return found
    name, _, version = reference.partition("/")
    try:
        mv = MlflowClient().get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"model version {reference} not found; check --model") from None
    return RegisteredVersion(name, str(mv.version), mv.run_id, dict(mv.tags))
