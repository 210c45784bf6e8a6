"""Model inputs for the ONNX graph of a kubecycle Pipeline: one [n, 1] tensor per raw column.

Copied into every bento (the service imports it) with the transformers module. Numeric
columns are float64 with NaN for a missing value; text columns are strings with missing
values spelled as the Pipeline's imputer fill value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kubecycle.components.features.transformers import MISSING_TEXT  # the text imputers' fill

NUMERIC_KINDS = ("numeric",)


def is_numeric(spec: Mapping[str, Any]) -> bool:
    return spec["kind"] in NUMERIC_KINDS


def _text(value: Any) -> str:
    return MISSING_TEXT if value is None or value != value else str(value)  # NaN != NaN


def build_feed(rows: Sequence[Mapping[str, Any]], fields: Mapping[str, Mapping[str, Any]]
               ) -> dict[str, np.ndarray]:
    """Input tensors for records given as mappings of raw column name to value."""
    feed = {}
    for name, spec in fields.items():
        values = [row.get(name) for row in rows]
        if is_numeric(spec):
            feed[name] = np.array([np.nan if v is None else v for v in values],
                                  dtype=np.float64).reshape(-1, 1)
        else:
            feed[name] = np.array([_text(v) for v in values], dtype=object).reshape(-1, 1)
    return feed


def build_feed_from_frame(frame, fields: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Input tensors for a pandas DataFrame holding the raw columns."""
    feed = {}
    for name, spec in fields.items():
        column = frame[name]
        if is_numeric(spec):
            feed[name] = column.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
        else:
            feed[name] = np.array([_text(v) for v in column.tolist()], dtype=object).reshape(-1, 1)
    return feed
