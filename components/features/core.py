"""Plan features from the data contract.

The plan and the preprocessing it builds are in kubecycle.modelling, shared with the stages
that fit models.
"""

from __future__ import annotations

from kubecycle.config import FeatureConfig
from kubecycle.contract import ColumnSpec, DataContract
from kubecycle.errors import DataValidationError
from kubecycle.modelling import FeaturePlan

MIN_ID_UNIQUE = 20  # a column needs at least this many distinct values to look like an ID


def _is_id_like(spec: ColumnSpec, rows: int, ratio: float) -> bool:
    if spec.kind != "categorical" and not spec.integral:
        return False
    return spec.unique >= MIN_ID_UNIQUE and spec.unique >= ratio * rows


def _plan_products(plan: FeaturePlan, settings: FeatureConfig) -> None:
    """Choose the numeric columns whose products features.create adds (errors name the key)."""
    create = settings.create
    if create.products == "none":
        return
    unknown = [name for name in create.columns if name not in plan.numeric]
    if unknown:
        raise DataValidationError(
            f"features.create.columns: {unknown} are not numeric input columns; choose from "
            f"{plan.numeric}")
    if len(create.columns) > create.max_columns:
        raise DataValidationError(
            f"features.create.columns: {len(create.columns)} columns, more than "
            f"features.create.max_columns ({create.max_columns}); list fewer or raise the cap")
    combined = create.columns or plan.numeric[:create.max_columns]
    if create.products == "interactions" and len(combined) < 2:
        return  # one column has no pairs
    plan.combined = list(combined)
    plan.squares = create.products == "polynomial"


def plan_columns(contract: DataContract, settings: FeatureConfig) -> FeaturePlan:
    """Route each feature column to an encoder by kind; drop constant and ID-like columns.

    Args:
        contract: The data contract validate inferred.
        settings: The config's features section.

    Returns:
        The feature plan (`contract.with_inputs(plan.dropped)` records it on the contract).

    Raises:
        DataValidationError: no usable feature is left.
    """
    plan = FeaturePlan(task=contract.task, target=contract.target,
                       select_k_best=settings.select_k_best)
    rows = contract.rows
    for name in contract.features:
        spec = contract.columns[name]
        if spec.unique <= 1:
            plan.dropped[name] = "constant"
        elif _is_id_like(spec, rows, settings.id_unique_ratio):
            plan.dropped[name] = f"ID-like ({spec.unique} distinct values in {rows} rows)"
        elif spec.kind == "numeric":
            plan.numeric.append(name)
        elif spec.kind == "datetime":
            plan.datetime.append(name)
        elif spec.kind == "boolean" or spec.unique <= settings.max_onehot_categories:
            plan.onehot.append(name)
        else:
            plan.ordinal.append(name)
    if not plan.inputs:
        raise DataValidationError(
            f"no usable feature columns: every column was dropped ({plan.dropped}); "
            "check features.id_unique_ratio or the data")
    _plan_products(plan, settings)
    if plan.task == "clustering" and plan.select_k_best is not None:
        plan.dropped["<selection>"] = "select_k_best needs a target; ignored for clustering"
        plan.select_k_best = None
    return plan
