"""Names the config may use: model families, their default search spaces, and metrics.

Pure data (estimators are named by import path), so validating a config never imports
scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["classification", "regression", "clustering"]


@dataclass(frozen=True)
class FamilySpec:
    """A candidate model family: the estimator class, its fixed arguments and search space."""

    name: str
    task: Task
    estimator: str  # "module:Class"
    fixed: dict[str, Any] = field(default_factory=dict)
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    package: str | None = None  # the module it needs beyond scikit-learn, if any
    extra: str | None = None  # the optional install extra that brings that module
    min_rows: int = 0  # the default search tries it only from this many rows
    default: bool = True  # in the default search (subject to min_rows and its package)
    categorical_codes: bool = False  # categorical columns reach it as integer codes (embeddings)
    # the search's first trial: the library's defaults (clipped to the space), so a search
    # never ends below the family's out-of-the-box model
    start: dict[str, Any] = field(default_factory=dict)


def _f(lo: float, hi: float, log: bool = False) -> dict[str, Any]:
    return {"type": "float", "low": lo, "high": hi, "log": log}


def _i(lo: int, hi: int, log: bool = False) -> dict[str, Any]:
    return {"type": "int", "low": lo, "high": hi, "log": log}


def _c(*choices: Any) -> dict[str, Any]:
    return {"type": "categorical", "choices": list(choices)}


MLP_MIN_ROWS = 1000  # below this a neural network rarely beats the tree ensembles
TORCH_MIN_ROWS = 5000  # the PyTorch network earns its training time on larger tables

_LIGHTGBM_SPACE = {"n_estimators": _i(50, 500, log=True), "learning_rate": _f(0.01, 0.3, log=True),
                   "num_leaves": _i(7, 63, log=True), "min_child_samples": _i(5, 50, log=True),
                   "subsample": _f(0.6, 1.0),
                   "colsample_bytree": _f(0.5, 1.0), "reg_lambda": _f(1e-3, 10.0, log=True)}
_XGBOOST_SPACE = {"n_estimators": _i(50, 500, log=True), "learning_rate": _f(0.01, 0.3, log=True),
                  "max_depth": _i(2, 10), "min_child_weight": _f(0.5, 10.0, log=True),
                  "subsample": _f(0.6, 1.0), "colsample_bytree": _f(0.5, 1.0),
                  "reg_lambda": _f(1e-3, 10.0, log=True)}
_TORCH_SPACE = {"hidden_units": _c(64, 128, 256), "layers": _i(1, 3),
                "dropout": _f(0.0, 0.3), "learning_rate": _f(3e-4, 3e-2, log=True),
                "weight_decay": _f(1e-6, 1e-2, log=True), "embedding_dim": _c(4, 8, 16)}
_LIGHTGBM_START = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31,
                   "min_child_samples": 20, "subsample": 1.0, "colsample_bytree": 1.0,
                   "reg_lambda": 1e-3}
_XGBOOST_START = {"n_estimators": 100, "learning_rate": 0.3, "max_depth": 6,
                  "min_child_weight": 1.0, "subsample": 1.0, "colsample_bytree": 1.0,
                  "reg_lambda": 1.0}
_TORCH_START = {"hidden_units": 128, "layers": 2, "dropout": 0.1, "learning_rate": 1e-3,
                "weight_decay": 1e-5, "embedding_dim": 8}
_MLP_SPACE = {"hidden_layer_sizes": _c(64, 128, 256), "alpha": _f(1e-5, 1e-1, log=True),
              "learning_rate_init": _f(1e-4, 1e-2, log=True)}

def _supervised(name: str, classifier: str, regressor: str, fixed: dict[str, Any],
                space: dict[str, dict[str, Any]], **options: Any) -> list[FamilySpec]:
    """A family for classification and for regression: one estimator each, the rest shared."""
    return [FamilySpec(name, task, estimator, dict(fixed), dict(space), **options)
            for task, estimator in (("classification", classifier), ("regression", regressor))]


_FAMILIES = [
    FamilySpec("logistic_regression", "classification",
               "sklearn.linear_model:LogisticRegression", {"max_iter": 2000},
               {"C": _f(1e-3, 1e2, log=True)}, start={"C": 1.0}),
    FamilySpec("ridge", "regression", "sklearn.linear_model:Ridge", {},
               {"alpha": _f(1e-3, 1e3, log=True)}, start={"alpha": 1.0}),
    *_supervised("random_forest", "sklearn.ensemble:RandomForestClassifier",
                 "sklearn.ensemble:RandomForestRegressor", {"n_jobs": 1},
                 {"n_estimators": _i(50, 300), "max_depth": _i(2, 20),
                  "min_samples_leaf": _i(1, 10)},
                 start={"n_estimators": 100, "max_depth": 20, "min_samples_leaf": 1}),
    *_supervised("gradient_boosting", "sklearn.ensemble:HistGradientBoostingClassifier",
                 "sklearn.ensemble:HistGradientBoostingRegressor", {},
                 {"learning_rate": _f(0.01, 0.3, log=True), "max_depth": _i(2, 10),
                  "max_iter": _i(50, 300)},
                 start={"learning_rate": 0.1, "max_depth": 10, "max_iter": 100}),
    *_supervised("lightgbm", "lightgbm:LGBMClassifier", "lightgbm:LGBMRegressor",
                 {"n_jobs": 1, "verbose": -1, "subsample_freq": 1}, _LIGHTGBM_SPACE,
                 package="lightgbm", start=_LIGHTGBM_START),
    *_supervised("xgboost", "kubecycle.estimators:XGBLabelClassifier", "xgboost:XGBRegressor",
                 {"n_jobs": 1, "tree_method": "hist"}, _XGBOOST_SPACE, package="xgboost",
                 start=_XGBOOST_START),
    *_supervised("mlp", "sklearn.neural_network:MLPClassifier",
                 "sklearn.neural_network:MLPRegressor", {"max_iter": 300, "early_stopping": True},
                 _MLP_SPACE, min_rows=MLP_MIN_ROWS,
                 start={"hidden_layer_sizes": 128, "alpha": 1e-4, "learning_rate_init": 1e-3}),
    *_supervised("torch", "kubecycle.neural:TabularNetClassifier",
                 "kubecycle.neural:TabularNetRegressor", {"epochs": 100, "patience": 10},
                 _TORCH_SPACE, package="torch", extra="torch", min_rows=TORCH_MIN_ROWS,
                 categorical_codes=True, start=_TORCH_START),
    FamilySpec("kmeans", "clustering", "sklearn.cluster:KMeans", {"n_init": "auto"},
               {"n_clusters": _i(2, 10)}),
    FamilySpec("minibatch_kmeans", "clustering", "sklearn.cluster:MiniBatchKMeans",
               {"n_init": "auto"}, {"n_clusters": _i(2, 10)}, default=False),
    FamilySpec("gaussian_mixture", "clustering", "sklearn.mixture:GaussianMixture", {},
               {"n_components": _i(2, 10), "covariance_type": _c("full", "diag")}),
]

FAMILIES: dict[tuple[Task, str], FamilySpec] = {(f.task, f.name): f for f in _FAMILIES}

# The default search: every family of the task the default admits, in catalog order (whether
# it runs for a data set is decided by kubecycle.selection: rows, installed extras)
DEFAULT_FAMILIES: dict[Task, list[str]] = {
    task: [f.name for f in _FAMILIES if f.task == task and f.default]
    for task in ("classification", "regression", "clustering")}


def family_names(task: Task | None = None) -> list[str]:
    """Family names known for a task (or for any task)."""
    return sorted({name for (t, name) in FAMILIES if task is None or t == task})


def get_family(task: Task, name: str) -> FamilySpec:
    """The family spec, or KeyError naming what is available."""
    try:
        return FAMILIES[(task, name)]
    except KeyError:
        raise KeyError(
            f"unknown model family {name!r} for task {task}; choose from {family_names(task)}"
        ) from None


@dataclass(frozen=True)
class MetricSpec:
    """A metric: its task, whether larger is better, and the sklearn scorer used in CV."""

    name: str
    task: Task
    greater_is_better: bool
    scorer: str | None  # sklearn scorer name; None = computed by kubecycle


_METRICS = [
    MetricSpec("accuracy", "classification", True, "accuracy"),
    MetricSpec("balanced_accuracy", "classification", True, "balanced_accuracy"),
    MetricSpec("f1", "classification", True, "f1_macro"),
    MetricSpec("precision", "classification", True, "precision_macro"),
    MetricSpec("recall", "classification", True, "recall_macro"),
    MetricSpec("roc_auc", "classification", True, "roc_auc_ovr"),
    MetricSpec("rmse", "regression", False, "neg_root_mean_squared_error"),
    MetricSpec("mae", "regression", False, "neg_mean_absolute_error"),
    MetricSpec("r2", "regression", True, "r2"),
    MetricSpec("silhouette", "clustering", True, None),
]

METRICS: dict[str, MetricSpec] = {m.name: m for m in _METRICS}
DEFAULT_METRIC: dict[Task, str] = {
    "classification": "f1",
    "regression": "rmse",
    "clustering": "silhouette",
}
