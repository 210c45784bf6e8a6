"""Train/test split."""

from __future__ import annotations

import pandas as pd

from kubecycle.catalog import Task
from kubecycle.errors import DataValidationError


def split_frame(
    frame: pd.DataFrame, target: str | None, task: Task, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into train and test; stratified on the target for classification.

    Classes too small to stratify (fewer than 2 rows) are rejected with their names.
    """
    from sklearn.model_selection import train_test_split

    stratify = None
    if task == "classification" and target is not None:
        counts = frame[target].value_counts()
        rare = counts[counts < 2]
        if len(rare):
            raise DataValidationError(
                f"target {target!r} classes {rare.index.astype(str).tolist()} have fewer than 2 "
                "rows, too few to split; remove them or collect more data")
        stratify = frame[target]
    n_test = max(1, round(len(frame) * test_size))
    if task == "classification" and stratify is not None:
        n_test = max(n_test, stratify.nunique())
    if len(frame) - n_test < 2:
        raise DataValidationError(
            f"only {len(frame)} rows: too few to split with split.test_size={test_size}")
    train, test = train_test_split(
        frame, test_size=n_test, random_state=seed, stratify=stratify, shuffle=True)
    return train.reset_index(drop=True), test.reset_index(drop=True)
