"""Data quality of the window against the data contract, and model quality when labels are present.

Both accumulate chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.contract import DataContract


@dataclass
class DataQuality:
    """Missing share, unseen categories and out-of-range values of the model's input columns.

    The target column is checked too.
    """

    contract: DataContract
    rows: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)

    def add(self, chunk: pd.DataFrame) -> None:
        """Count a chunk's missing, unseen and out-of-range values per checked column."""
        self.rows += len(chunk)
        target = [self.contract.target] if self.contract.target else []
        for name in [*self.contract.inputs, *target]:
            if name not in chunk.columns:
                continue
            spec = self.contract.columns[name]
            column = chunk[name]
            self.missing[name] = self.missing.get(name, 0) + int(column.isna().sum())
            present = column.dropna()
            if spec.kind == "categorical" and spec.categories is not None:
                new = present.astype(str)[~present.astype(str).isin(spec.categories)]
                if len(new):
                    seen = self.unseen.setdefault(name, {})
                    for value, count in new.value_counts().head(20).items():
                        seen[str(value)] = seen.get(str(value), 0) + int(count)
            elif spec.kind == "numeric" and spec.min is not None:
                values = pd.to_numeric(present, errors="coerce")
                outside = int(((values < spec.min) | (values > spec.max)).sum())
                self.out_of_range[name] = self.out_of_range.get(name, 0) + outside

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready shares of the rows seen (unseen categories as counts)."""
        share = (lambda n: round(n / self.rows, 6)) if self.rows else (lambda n: 0.0)
        return {"rows": self.rows,
                "missing_share": {k: share(v) for k, v in self.missing.items()},
                "unseen_categories": self.unseen,
                "out_of_range_share": {k: share(v) for k, v in self.out_of_range.items() if v}}


@dataclass
class ModelQuality:
    """Accuracy and macro F1 (classification) or RMSE and MAE (regression) of the window.

    They are computed from bounded counters.
    """

    task: str
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    squared: float = 0.0
    absolute: float = 0.0
    rows: int = 0

    def add(self, truth: pd.Series, predicted: np.ndarray) -> None:
        """Count a chunk's labelled rows: (label, prediction) pairs or summed errors."""
        keep = truth.notna().to_numpy()
        truth, predicted = truth[keep], np.asarray(predicted)[keep]
        self.rows += len(truth)
        if self.task == "classification":
            frame = pd.DataFrame({"t": truth.astype(str).to_numpy(),
                                  "p": pd.Series(predicted).astype(str).to_numpy()})
            for (t, p), count in frame.value_counts().items():
                self.pairs[(t, p)] = self.pairs.get((t, p), 0) + int(count)
        else:
            error = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float) - predicted
            self.squared += float(np.nansum(error**2))
            self.absolute += float(np.nansum(np.abs(error)))

    def metrics(self) -> dict[str, float]:
        """The window's metrics by name (empty when no labelled row was seen)."""
        if not self.rows:
            return {}
        if self.task != "classification":
            return {"rmse": (self.squared / self.rows) ** 0.5, "mae": self.absolute / self.rows}
        labels = sorted({t for t, _ in self.pairs} | {p for _, p in self.pairs})
        correct = sum(c for (t, p), c in self.pairs.items() if t == p)
        f1s = []
        for label in labels:
            tp = self.pairs.get((label, label), 0)
            fp = sum(c for (t, p), c in self.pairs.items() if p == label and t != label)
            fn = sum(c for (t, p), c in self.pairs.items() if t == label and p != label)
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        return {"accuracy": correct / self.rows, "f1": float(np.mean(f1s))}
