"""Plan features from the data contract and build the preprocessing part of the model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kubecycle.catalog import Task
from kubecycle.config import FeatureConfig
from kubecycle.errors import DataValidationError

MIN_ID_UNIQUE = 20  # a column needs at least this many distinct values to look like an ID


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

    @property
    def inputs(self) -> list[str]:
        return self.numeric + self.onehot + self.ordinal + self.datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeaturePlan:
        return cls(**data)


def _is_id_like(spec: dict[str, Any], rows: int, ratio: float) -> bool:
    if spec["kind"] not in ("categorical",) and not spec["dtype"].startswith(("int", "uint")):
        return False
    return spec["unique"] >= MIN_ID_UNIQUE and spec["unique"] >= ratio * rows


def plan_features(contract: dict[str, Any], settings: FeatureConfig) -> FeaturePlan:
    """Route each contract column to an encoder by kind; drop constant and ID-like columns.

    Raises DataValidationError when no usable feature is left.
    """
    target = contract.get("target")
    plan = FeaturePlan(task=contract["task"], target=target, select_k_best=settings.select_k_best)
    rows = contract["rows"]
    for name, spec in contract["columns"].items():
        if name == target:
            continue
        if spec["unique"] <= 1:
            plan.dropped[name] = "constant"
        elif _is_id_like(spec, rows, settings.id_unique_ratio):
            plan.dropped[name] = f"ID-like ({spec['unique']} distinct values in {rows} rows)"
        elif spec["kind"] == "numeric":
            plan.numeric.append(name)
        elif spec["kind"] == "datetime":
            plan.datetime.append(name)
        elif spec["kind"] == "boolean" or spec["unique"] <= settings.max_onehot_categories:
            plan.onehot.append(name)
        else:
            plan.ordinal.append(name)
    if not plan.inputs:
        raise DataValidationError(
            f"no usable feature columns: every column was dropped ({plan.dropped}); "
            "check features.id_unique_ratio or the data")
    if plan.task == "clustering" and plan.select_k_best is not None:
        plan.dropped["<selection>"] = "select_k_best needs a target; ignored for clustering"
        plan.select_k_best = None
    return plan


def build_preprocessor(plan: FeaturePlan):
    """The preprocessing Pipeline (ColumnTransformer, optional SelectKBest) for a plan."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_selection import SelectKBest, f_classif, f_regression
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from kubecycle.components.features.transformers import (
        MISSING_TEXT,
        DatetimeExpander,
        TextColumns,
    )

    def as_text():  # any dtype to objects; NaN and None both mean missing
        return [TextColumns(), *(
            SimpleImputer(missing_values=missing, strategy="constant", fill_value=MISSING_TEXT,
                          keep_empty_features=True) for missing in (np.nan, None))]

    parts = []
    if plan.numeric:
        parts.append(("numeric", make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
            plan.numeric))
    if plan.onehot:
        parts.append(("onehot", make_pipeline(
            *as_text(), OneHotEncoder(handle_unknown="ignore", sparse_output=False)), plan.onehot))
    if plan.ordinal:
        parts.append(("ordinal", make_pipeline(
            *as_text(),
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                           encoded_missing_value=-1, dtype=np.float64),
            StandardScaler()), plan.ordinal))
    if plan.datetime:
        parts.append(("datetime", make_pipeline(
            DatetimeExpander(), SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler()), plan.datetime))
    columns = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)
    steps = [("columns", columns)]
    if plan.select_k_best is not None:
        score = f_classif if plan.task == "classification" else f_regression
        # k above the number of encoded features keeps them all (scikit-learn warns)
        steps.append(("select", SelectKBest(score, k=plan.select_k_best)))
    return Pipeline(steps)

