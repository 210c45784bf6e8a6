"""Outlier and label-noise filters, fitted on the training rows and applied to them only.

The test rows are never filtered (the held-out score stays honest), and serving never sees a
filter: it is not part of the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.config import CleaningConfig, LabelNoiseConfig, OutlierConfig
from kubecycle.contract import DataContract
from kubecycle.errors import DataValidationError
from kubecycle.modelling import FeaturePlan, make_model, split_xy

NOISE_FAMILY = "random_forest"  # the model whose out-of-fold probabilities find label noise


@dataclass
class FilterReport:
    """What one filter flagged and dropped."""

    method: str
    action: str
    flagged: int = 0
    dropped: int = 0
    by_column: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (summary.json's cleaning section)."""
        return {"method": self.method, "action": self.action, "flagged": self.flagged,
                "dropped": self.dropped, "by_column": self.by_column}


@dataclass
class CleaningResult:
    """The training rows after the filters, and what each filter did."""

    frame: pd.DataFrame
    rows_before: int
    outliers: FilterReport
    label_noise: FilterReport

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: rows before and after, and each filter's counts."""
        return {"rows_before": self.rows_before, "rows_after": len(self.frame),
                "outliers": self.outliers.to_dict(), "label_noise": self.label_noise.to_dict()}


def _numeric_columns(frame: pd.DataFrame, contract: DataContract, wanted: list[str]) -> list[str]:
    numeric = [c for c in contract.inputs if contract.columns[c].kind == "numeric"]
    unknown = [c for c in wanted if c not in numeric]
    if unknown:
        raise DataValidationError(f"cleaning.outliers.columns {unknown} are not numeric input "
                                  f"columns; choose from {numeric}")
    return [c for c in (wanted or numeric) if c in frame.columns]


def outlier_flags(frame: pd.DataFrame, columns: list[str], settings: OutlierConfig, seed: int
                  ) -> tuple[np.ndarray, dict[str, int]]:
    """Which rows are outliers by the configured method, and how many per column.

    Args:
        frame: The training rows.
        columns: The numeric columns to look at.
        settings: cleaning.outliers.
        seed: The random seed (isolation forest).

    Returns:
        A boolean mask over the rows, and the flagged count per column (the per-column
        methods, iqr and zscore; the multivariate ones flag whole rows).
    """
    values = frame[columns].astype(float)
    if settings.method in ("iqr", "zscore"):
        if settings.method == "iqr":
            q1, q3 = values.quantile(0.25), values.quantile(0.75)
            spread = settings.factor * (q3 - q1)
            outside = values.lt(q1 - spread) | values.gt(q3 + spread)
        else:
            std = values.std(ddof=0).replace(0.0, np.nan)
            outside = ((values - values.mean()) / std).abs().gt(settings.threshold)
        return outside.any(axis=1).to_numpy(), {c: int(n) for c, n in outside.sum().items() if n}
    filled = values.fillna(values.median()).fillna(0.0)
    scaled = ((filled - filled.mean()) / filled.std(ddof=0).replace(0.0, 1.0)).to_numpy()
    if settings.method == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        detector = IsolationForest(contamination=settings.contamination, random_state=seed)
    else:
        from sklearn.neighbors import LocalOutlierFactor

        detector = LocalOutlierFactor(contamination=settings.contamination,
                                      n_neighbors=min(20, max(len(frame) - 1, 1)))
    return detector.fit_predict(scaled) == -1, {}


def label_noise_flags(frame: pd.DataFrame, plan: FeaturePlan, settings: LabelNoiseConfig,
                      seed: int) -> np.ndarray:
    """Rows whose label is likely wrong, by confident learning on out-of-fold probabilities.

    A class's threshold is the mean probability the model gives it on the rows labelled with
    it; a row is flagged when its own label's probability is under that class's threshold
    while another class reaches its threshold and is more probable than the label (Northcutt
    et al., "Confident learning", the off-diagonal of the confident joint).

    Args:
        frame: The training rows (with the target).
        plan: The feature plan (the model preprocesses as the real one does).
        settings: cleaning.label_noise.
        seed: The random seed (folds and model).

    Returns:
        A boolean mask over the rows.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from kubecycle.catalog import get_family

    x, y = split_xy(frame, plan.target)
    labels = y.astype(str).to_numpy()
    classes, counts = np.unique(labels, return_counts=True)
    folds = min(settings.folds, int(counts.min()))
    if folds < 2:
        return np.zeros(len(frame), dtype=bool)  # a class too rare to hold out
    model = make_model(plan, get_family("classification", NOISE_FAMILY), {"n_estimators": 100},
                       seed)
    proba = cross_val_predict(model, x, labels, method="predict_proba",
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    given = np.searchsorted(classes, labels)
    thresholds = np.array([proba[given == k, k].mean() for k in range(len(classes))])
    confident = proba >= thresholds
    confident[np.arange(len(labels)), given] = False
    other_best = np.where(confident, proba, -1.0).max(axis=1)
    own = proba[np.arange(len(labels)), given]
    return (own < thresholds[given]) & (other_best > own)


def filter_training_rows(train: pd.DataFrame, contract: DataContract, plan: FeaturePlan,
                         cleaning: CleaningConfig, seed: int) -> CleaningResult:
    """Run the configured filters on the training rows; drop what they flag if told to.

    Args:
        train: The training split.
        contract: The data contract with the model's inputs.
        plan: The feature plan.
        cleaning: The config's cleaning section.
        seed: The random seed.

    Returns:
        The rows to train on and each filter's counts.

    Raises:
        DataValidationError: the filters would drop more than cleaning.max_drop_share of the
            rows, or outliers.columns names a column that is not a numeric input.
    """
    outliers = FilterReport(cleaning.outliers.method, cleaning.outliers.action)
    noise = FilterReport(cleaning.label_noise.method, cleaning.label_noise.action)
    drop = np.zeros(len(train), dtype=bool)
    if cleaning.outliers.method != "none":
        columns = _numeric_columns(train, contract, cleaning.outliers.columns)
        if columns:
            flags, outliers.by_column = outlier_flags(train, columns, cleaning.outliers, seed)
            outliers.flagged = int(flags.sum())
            if cleaning.outliers.action == "drop":
                drop |= flags
                outliers.dropped = int(flags.sum())
    if cleaning.label_noise.method != "none" and plan.task == "classification":
        flags = label_noise_flags(train, plan, cleaning.label_noise, seed)
        noise.flagged = int(flags.sum())
        if cleaning.label_noise.action == "drop":
            noise.dropped = int((flags & ~drop).sum())
            drop |= flags
    share = drop.mean() if len(drop) else 0.0
    if share > cleaning.max_drop_share:
        raise DataValidationError(
            f"the cleaning filters would drop {drop.sum()} of {len(train)} training rows "
            f"({share:.0%} > cleaning.max_drop_share {cleaning.max_drop_share:.0%}); loosen "
            "the filters, use action: report, or raise cleaning.max_drop_share")
    kept = train[~drop].reset_index(drop=True) if drop.any() else train
    return CleaningResult(kept, len(train), outliers, noise)
