"""A pre-trained model instead of tuning and training: load it safely, check it fits the data.

The model that comes out is what the train stage makes: a fitted scikit-learn Pipeline whose
last step is the estimator and whose first steps turn the data's columns into its inputs, so
evaluation, explanation, registration, packaging and serving treat both alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.catalog import Task
from kubecycle.errors import PretrainedModelError, first_line

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
XGBOOST_SUFFIXES = (".json", ".ubj")
LIGHTGBM_SUFFIXES = (".txt", ".lgb")
FORMATS = ("skops (.skops)", "joblib/pickle (.joblib, .pkl; needs models.trust_pickle)",
           "XGBoost (.json, .ubj)", "LightGBM (.txt)", "MLflow scikit-learn model (models:/, runs:/)")
# classes of kubecycle itself that a model trained by kubecycle holds
OWN_TYPES = ("kubecycle.transformers.", "kubecycle.estimators.")
ESTIMATOR_KINDS = {"classification": "classifier", "regression": "regressor",
                   "clustering": "clusterer"}


@dataclass(frozen=True)
class Pretrained:
    """A loaded model, the format it came in and where from."""

    estimator: Any
    format: str
    source: str


def load_pretrained(source: str, *, trust_pickle: bool = False,
                    trusted_types: list[str] | None = None) -> Pretrained:
    """Load a fitted model from a file or an MLflow URI.

    Args:
        source: A .skops, .joblib/.pkl, XGBoost .json/.ubj or LightGBM .txt file, or an MLflow
            model URI (resolved against the current tracking/registry URI).
        trust_pickle: Allow pickle-based files (loading a pickle runs any code it names).
        trusted_types: Types a skops file may hold beyond skops' defaults and kubecycle's own.

    Raises:
        PretrainedModelError: the file is missing or unreadable, its format unknown, a pickle
            was not trusted, or a skops file holds types not trusted (they are named).
    """
    if source.startswith(MLFLOW_SCHEMES):
        return Pretrained(_from_mlflow(source, trust_pickle), "mlflow", source)
    path = Path(source)
    if not path.is_file():
        raise PretrainedModelError(f"models.pretrained: {source} not found; give an existing "
                                   "model file or an MLflow URI (models:/NAME/VERSION)")
    suffix = path.suffix.lower()
    loaders = {".skops": lambda: _from_skops(path, trusted_types or []),
               **dict.fromkeys(PICKLE_SUFFIXES, lambda: _from_pickle(path, trust_pickle)),
               **dict.fromkeys(XGBOOST_SUFFIXES, lambda: _from_xgboost(path)),
               **dict.fromkeys(LIGHTGBM_SUFFIXES, lambda: _from_lightgbm(path))}
    if suffix not in loaders:
        raise PretrainedModelError(f"models.pretrained: {path.name} is not a known model "
                                   f"format; use one of: {'; '.join(FORMATS)}")
    try:
        estimator, kind = loaders[suffix]()
    except PretrainedModelError:
        raise
    except Exception as exc:  # each library raises its own kinds on a damaged file
        raise PretrainedModelError(f"models.pretrained: {path} could not be read as a "
                                   f"{suffix} model: {first_line(exc) or type(exc).__name__}") from None
    return Pretrained(estimator, kind, source)


def _from_mlflow(uri: str, trust_pickle: bool) -> Any:
    """A scikit-learn model from MLflow; one saved as a pickle needs trust_pickle.

    A skops-saved model loads with the trusted types it was logged with (MLflow refuses others).
    """
    import mlflow.models
    import mlflow.sklearn

    try:
        flavors = mlflow.models.get_model_info(uri).flavors
        if "sklearn" not in flavors:
            raise PretrainedModelError(
                f"models.pretrained: MLflow model {uri} is not a scikit-learn model (flavors "
                f"{sorted(flavors)}); log it with mlflow.sklearn")
        serialization = flavors["sklearn"].get("serialization_format", "pickle")
        if serialization != "skops" and not trust_pickle:
            raise PretrainedModelError(
                f"models.pretrained: MLflow model {uri} is saved as a {serialization}, and "
                "loading one runs whatever code it names; set models.trust_pickle: true if you "
                "trust where it came from")
        return mlflow.sklearn.load_model(uri)
    except PretrainedModelError:
        raise
    except Exception as exc:
        raise PretrainedModelError(
            f"models.pretrained: MLflow model {uri} could not be loaded as a scikit-learn model "
            f"({first_line(exc) or type(exc).__name__}); check the name/version and the "
            "tracking URI") from None


def _from_skops(path: Path, trusted_types: list[str]) -> tuple[Any, str]:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [t for t in untrusted if t not in trusted_types and not t.startswith(OWN_TYPES)]
    if refused:
        raise PretrainedModelError(
            f"models.pretrained: {path.name} holds types that are not trusted: {refused}; "
            "list them under models.trusted_types if you trust where the file came from")
    return skops.io.load(path, trusted=list(untrusted)), "skops"


def _from_pickle(path: Path, trust_pickle: bool) -> tuple[Any, str]:
    if not trust_pickle:
        raise PretrainedModelError(
            f"models.pretrained: {path.name} is a pickle, and loading one runs whatever code it "
            "names; set models.trust_pickle: true if you trust where it came from, or save the "
            "model with skops")
    import joblib

    return joblib.load(path), "joblib"


def _from_xgboost(path: Path) -> tuple[Any, str]:
    import xgboost

    objective = json.loads(xgboost.Booster(model_file=str(path)).save_config())[
        "learner"]["objective"]["name"]
    if objective.startswith(("binary:", "multi:")):
        model = xgboost.XGBClassifier()
    elif objective.startswith(("reg:", "count:", "survival:")):
        model = xgboost.XGBRegressor()
    else:
        raise PretrainedModelError(f"models.pretrained: {path.name} has XGBoost objective "
                                   f"{objective!r}; only classifiers and regressors are served")
    model.load_model(str(path))
    return model, "xgboost"


def _from_lightgbm(path: Path) -> tuple[Any, str]:
    """A LightGBM model file as the scikit-learn estimator LightGBM's fit would have made.

    LightGBM has no loader for its scikit-learn classes; these are the attributes its fit sets
    and its predict, SHAP and onnxmltools read (lightgbm 4). The file holds no labels: a
    classifier predicts 0..k-1.
    """
    import lightgbm
    from lightgbm.sklearn import _LGBMLabelEncoder

    booster = lightgbm.Booster(model_file=str(path))
    dumped = booster.dump_model(num_iteration=0)
    objective = str(dumped.get("objective", "")).split()[0]
    if objective in ("binary", "multiclass", "multiclassova", "cross_entropy"):
        model: Any = lightgbm.LGBMClassifier(objective=objective)
        model._le = _LGBMLabelEncoder().fit(np.arange(max(int(dumped["num_class"]), 2)))
        model._classes, model._n_classes = model._le.classes_, len(model._le.classes_)
    elif objective in ("regression", "regression_l1", "huber", "fair", "poisson", "quantile",
                       "mape", "gamma", "tweedie"):
        model = lightgbm.LGBMRegressor(objective=objective)
    else:
        raise PretrainedModelError(f"models.pretrained: {path.name} has LightGBM objective "
                                   f"{objective!r}; only classifiers and regressors are served")
    model._Booster, model.fitted_, model._objective = booster, True, objective
    model._n_features = model._n_features_in = booster.num_feature()
    model._fitted_with_feature_names = not all(
        name == f"Column_{i}" for i, name in enumerate(booster.feature_name()))
    return model, "lightgbm"


def model_inputs(estimator: Any) -> list[str]:
    """The column names the model was fitted on, in order.

    Raises:
        PretrainedModelError: the model was fitted without column names (a bare array).
    """
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        raise PretrainedModelError(
            "models.pretrained: the model does not record the columns it was fitted on (fitted "
            "on a bare array); refit it on a pandas DataFrame so its inputs can be checked")
    return [str(name) for name in names]


def _estimator_kind(estimator: Any) -> str | None:
    from sklearn.base import is_classifier, is_clusterer, is_regressor

    for kind, check in (("classifier", is_classifier), ("regressor", is_regressor),
                        ("clusterer", is_clusterer)):
        if check(estimator):
            return kind
    return None


def check_fits(estimator: Any, x: pd.DataFrame, y: pd.Series | None, task: Task) -> list[str]:
    """Check the model takes exactly the data's columns and does the task; return its inputs.

    Raises:
        PretrainedModelError: one line naming the missing or extra columns, the task mismatch,
            or the labels a classifier does not know.
    """
    kind, wanted = _estimator_kind(estimator), ESTIMATOR_KINDS[task]
    if kind != wanted:
        raise PretrainedModelError(
            f"models.pretrained: the model is a {kind or 'model of unknown kind'}, the task is "
            f"{task} (it needs a {wanted}); set task, or use a {wanted}")
    inputs = model_inputs(estimator)
    missing = [c for c in inputs if c not in x.columns]
    if missing:
        raise PretrainedModelError(
            f"models.pretrained: the data lacks the model's input columns {missing}; the model "
            f"takes {inputs}")
    extra = [c for c in x.columns if c not in inputs]
    if extra:
        raise PretrainedModelError(
            f"models.pretrained: the model does not take the data's columns {extra}; add them "
            "to data.drop_columns, or use a model fitted on them")
    if kind == "classifier" and y is not None:
        known = {str(label) for label in estimator.classes_}
        unknown = sorted({str(label) for label in y.unique()} - known)
        if unknown:
            raise PretrainedModelError(
                f"models.pretrained: the target holds labels {unknown[:10]} the model does not "
                f"predict; it predicts {sorted(known)[:10]}")
    return inputs


def as_model_pipeline(estimator: Any, inputs: list[str], x: pd.DataFrame) -> Any:
    """The model as a kubecycle model Pipeline: preprocessing steps, then the estimator.

    A Pipeline of two or more steps is that already. A lone estimator gets a first step that
    passes its input columns through in its order (fitted on `x`; the estimator is not refit).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline) and len(estimator.steps) >= 2:
        return estimator
    if isinstance(estimator, Pipeline):
        estimator = estimator.steps[0][1]
    columns = ColumnTransformer([("inputs", "passthrough", inputs)],
                                verbose_feature_names_out=False).set_output(transform="pandas")
    columns.fit(x[inputs])  # a frame: the estimator checks the names it was fitted on
    return Pipeline([("inputs", columns), ("model", estimator)])


def describe(pretrained: Pretrained, metric: str) -> dict[str, Any]:
    """The selection record of a pre-trained model (what the train stage records for a family)."""
    family = f"pretrained {pretrained.format}"
    return {"family": family, "params": {"source": pretrained.source}, "metric": metric,
            "cv_metric": None, "cv_std": None,
            "ranking": [{"family": family, "source": pretrained.source,
                         "reason": "models.pretrained: tuning and training skipped"}]}
