"""What several stages share to build and score a model.

It holds the feature plan, the model Pipeline (preprocessing then an estimator from the
catalog), X/y splitting, scorers and a search's result.

Stages never import each other (features plans, tune searches, train refits, evaluate, explain
and register score): what two of them need lives here. scikit-learn is imported inside the
functions, so importing this module stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from kubecycle.catalog import METRICS, FamilySpec, Task


@dataclass
class FeaturePlan:
    """Which raw columns go through which encoder, and which are dropped and why."""

    task: Task
    target: str | None
    numeric: list[str] = field(default_factory=list)
    onehot: list[str] = field(default_factory=list)
    ordinal: list[str] = field(default_factory=list)
    datetime: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    select_k_best: int | None = None
    combined: list[str] = field(default_factory=list)  # numeric columns multiplied together
    squares: bool = False  # their squares too, not only the pairwise products

    @property
    def inputs(self) -> list[str]:
        """The raw columns the model reads: numeric, one-hot, ordinal and datetime ones."""
        return self.numeric + self.onehot + self.ordinal + self.datetime

    def to_dict(self) -> dict[str, Any]:
        """The plan as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePlan:
        """Read a plan from the dict to_dict wrote (plans of older versions included)."""
        return cls(**data)


@dataclass
class TuneResult:
    """The outcome of one family's search; score is 'greater is better' (sklearn scorer)."""

    family: str
    metric: str
    best_params: dict[str, Any] = field(default_factory=dict)
    score: float | None = None  # best mean CV scorer value (greater is better)
    cv_metric: float | None = None  # the same in the metric's own units (e.g. RMSE > 0)
    cv_std: float | None = None
    trials: int = 0
    failed_trials: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


def split_xy(frame: pd.DataFrame, target: str | None) -> tuple[pd.DataFrame, pd.Series | None]:
    """Split a frame into features and target.

    Args:
        frame: Rows with the feature columns and, unless clustering, the target column.
        target: The target column, or None (clustering).

    Returns:
        The feature columns and the target (None when there is no target).
    """
    if target is None:
        return frame, None
    return frame.drop(columns=[target]), frame[target]


def build_preprocessor(plan: FeaturePlan, categorical_codes: bool = False):
    """The preprocessing Pipeline (ColumnTransformer, optional SelectKBest) for a plan.

    Args:
        plan: Which columns go through which encoder.
        categorical_codes: Every categorical column as its integer code (unknown and missing
            -1, not scaled) instead of one-hot or scaled ordinal, for estimators that embed
            them (family torch).

    Returns:
        An unfitted scikit-learn Pipeline taking the raw columns.
    """
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_selection import SelectKBest, f_classif, f_regression
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    # Registered models pickle these classes by this module path, so the module stays where it
    # is; it is a leaf (numpy, pandas, scikit-learn) and the one stage module the core uses.
    from kubecycle.transformers import (
        MISSING_TEXT,
        DatetimeExpander,
        TextColumns,
    )

    def as_text():  # any dtype to objects; NaN and None both mean missing
        return [TextColumns(), *(
            SimpleImputer(missing_values=missing, strategy="constant", fill_value=MISSING_TEXT,
                          keep_empty_features=True) for missing in (np.nan, None))]

    parts = []
    numeric = [name for name in plan.numeric if name not in plan.combined]
    if numeric:
        parts.append(("numeric", make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
            numeric))
    onehot, ordinal = ([], [*plan.onehot, *plan.ordinal]) if categorical_codes else (
        plan.onehot, plan.ordinal)
    if onehot:
        parts.append(("onehot", make_pipeline(
            *as_text(), OneHotEncoder(handle_unknown="ignore", sparse_output=False)), onehot))
    if ordinal:
        scaled = [] if categorical_codes else [StandardScaler()]
        parts.append(("ordinal", make_pipeline(
            *as_text(), OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                       encoded_missing_value=-1, dtype=np.float64),
            *scaled), ordinal))
    if plan.datetime:
        parts.append(("datetime", make_pipeline(
            DatetimeExpander(), SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler()), plan.datetime))
    if plan.combined:
        parts.append(("created", _products(plan), plan.combined))
    columns = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)
    steps = [("columns", columns)]
    if plan.select_k_best is not None:
        score = f_classif if plan.task == "classification" else f_regression
        # k above the number of encoded features keeps them all (scikit-learn warns)
        steps.append(("select", SelectKBest(score, k=plan.select_k_best)))
    return Pipeline(steps)


def _products(plan: FeaturePlan):
    """The combined numeric columns and their pairwise products (and squares), all scaled."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                         StandardScaler(),
                         PolynomialFeatures(degree=2, interaction_only=not plan.squares,
                                            include_bias=False),
                         StandardScaler())


BOOSTER_LIBRARIES = ("xgboost", "lightgbm")


def estimator_libraries(estimator) -> set[str]:
    """The top-level packages the estimator's class and its base classes come from."""
    return {cls.__module__.split(".")[0] for cls in type(estimator).__mro__}


def is_booster(estimator) -> bool:
    """Whether the estimator is an XGBoost or LightGBM model (trees on float32 features)."""
    return not estimator_libraries(estimator).isdisjoint(BOOSTER_LIBRARIES)


def make_estimator(spec: FamilySpec, params: dict[str, Any], seed: int):
    """Instantiate a family's estimator with its fixed arguments, params and a seed.

    Args:
        spec: The catalog's family (estimator import path and fixed arguments).
        params: Hyperparameters; they override the fixed arguments.
        seed: random_state, if the estimator takes one and params do not set it.

    Returns:
        The unfitted estimator.
    """
    module, _, name = spec.estimator.partition(":")
    cls = getattr(importlib.import_module(module), name)
    arguments = {**spec.fixed, **params}
    if "random_state" in cls().get_params():
        arguments.setdefault("random_state", seed)
    return cls(**arguments)


def make_model(plan: FeaturePlan, spec: FamilySpec, params: dict[str, Any], seed: int):
    """The full model Pipeline: preprocessing then estimator (serving sees raw columns).

    Args:
        plan: The feature plan the preprocessing follows.
        spec: The catalog's family of the estimator.
        params: The estimator's hyperparameters.
        seed: The estimator's random_state.

    Returns:
        The unfitted scikit-learn Pipeline (steps "preprocess" and "model").
    """
    from sklearn.pipeline import Pipeline

    return Pipeline([("preprocess", build_preprocessor(plan, spec.categorical_codes)),
                     ("model", make_estimator(spec, params, seed))])


def silhouette_scorer(estimator, X, y=None) -> float:
    """Silhouette of the clusters a fitted clustering Pipeline assigns to X (-1 if one).

    Args:
        estimator: A fitted Pipeline whose last step assigns clusters.
        X: The rows to cluster.
        y: Ignored (the scorer signature scikit-learn calls).

    Returns:
        The silhouette on the encoded rows (sampled to 5000), or -1.0 for a single cluster.
    """
    from sklearn.metrics import silhouette_score

    labels = estimator.predict(X)
    if len(set(labels)) < 2:
        return -1.0
    encoded = estimator[:-1].transform(X)
    sample = min(len(labels), 5000)
    return float(silhouette_score(encoded, labels, sample_size=sample, random_state=0))


def scorer_for(metric: str) -> str | Callable:
    """The scikit-learn scoring argument of a catalog metric.

    Args:
        metric: A metric name of the catalog.

    Returns:
        The scorer's name, or silhouette_scorer for clustering.
    """
    spec = METRICS[metric]
    return spec.scorer if spec.scorer is not None else silhouette_scorer


def to_metric_units(metric: str, score: float) -> float:
    """A scorer's value in the metric's own units: sklearn's neg_* scorers report -error.

    Args:
        metric: A metric name of the catalog.
        score: The scorer's value (greater is better).

    Returns:
        The error for neg_* scorers, else the score unchanged.
    """
    scorer = METRICS[metric].scorer
    return -score if scorer is not None and scorer.startswith("neg_") else score
