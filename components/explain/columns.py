"""Explanations in the data's own column names: which raw column each encoded feature is from.

The model sees encoded features (`numeric__x1`, `onehot__colour_red`, `datetime__signup_month`);
a person knows the columns `x1`, `colour`, `signup`. SHAP values are additive, so a column's
contribution is the sum of its encoded features' contributions.
"""

from __future__ import annotations

import numpy as np


def _owner(feature: str, columns: list[str]) -> str | None:
    """The raw column an encoder's output feature is named after (the longest that fits)."""
    fitting = [c for c in columns if feature == c or feature.startswith(f"{c}_")]
    if fitting:
        return max(fitting, key=len)
    return columns[0] if len(columns) == 1 else None


def source_columns(preprocess) -> list[str]:
    """For every encoded feature the estimator sees, the raw column it comes from.

    Args:
        preprocess: The fitted preprocessing part of a kubecycle model (a Pipeline holding a
            ColumnTransformer, optionally followed by a feature selector).

    Returns:
        One raw column name per encoded feature, in order; an encoded feature that cannot be
        traced back keeps its encoded name.
    """
    from sklearn.compose import ColumnTransformer

    names = [str(n) for n in preprocess.get_feature_names_out()]
    steps = list(_leaf_steps(preprocess))
    position = next((i for i, step in enumerate(steps) if isinstance(step, ColumnTransformer)), None)
    if position is None:
        return names
    columns = steps[position]
    encoded = [str(n) for n in columns.get_feature_names_out()]
    owners = list(encoded)
    for name, _, selected in columns.transformers_:
        piece = columns.output_indices_[name]
        raw = [str(c) for c in selected] if isinstance(selected, list | tuple | np.ndarray) else []
        for index in range(piece.start, piece.stop):
            feature = encoded[index].removeprefix(f"{name}__")
            owners[index] = _owner(feature, raw) or feature  # a product keeps its own name
    for step in steps[position + 1:]:
        if hasattr(step, "get_support"):
            owners = [owner for owner, kept in zip(owners, step.get_support(), strict=True) if kept]
    return owners if len(owners) == len(names) else names


def _leaf_steps(preprocess):
    """The preprocessing's steps, nested Pipelines flattened, in order."""
    from sklearn.pipeline import Pipeline

    if isinstance(preprocess, Pipeline):
        for _, step in preprocess.steps:
            yield from _leaf_steps(step)
    else:
        yield preprocess


def by_column(values: np.ndarray, owners: list[str]) -> tuple[np.ndarray, list[str]]:
    """Sum contributions over each raw column's encoded features (axis 1).

    Args:
        values: Contributions, shape (rows, features) or (rows, features, classes).
        owners: The raw column of each feature (source_columns).

    Returns:
        The summed contributions, shape (rows, columns[, classes]), and the columns in order
        of first appearance.
    """
    columns = list(dict.fromkeys(owners))
    index = {column: i for i, column in enumerate(columns)}
    shape = (values.shape[0], len(columns), *values.shape[2:])
    summed = np.zeros(shape, dtype=float)
    for feature, owner in enumerate(owners):
        summed[:, index[owner]] += values[:, feature]
    return summed, columns
