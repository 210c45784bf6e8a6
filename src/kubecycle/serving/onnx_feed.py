"""Model inputs for the ONNX graph of a kubecycle Pipeline: [n, 1] tensors per raw column.

Copied into every bento (the service imports it) with the transformers module. Numeric
columns are float64 with NaN for a missing value; text columns are strings with missing
values spelled as the Pipeline's imputer fill value; a datetime column becomes one float64
tensor per part the Pipeline's DatetimeExpander extracts (year, month, ...), computed here
because ONNX cannot parse dates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kubecycle.encoding import DATETIME_PARTS, MISSING_TEXT  # what the Pipeline itself uses

NUMERIC_KINDS = ("numeric",)
DATETIME_INPUT_SEPARATOR = "::"
# pandas, hence the DatetimeExpander, turns instants outside these bounds into missing values
EARLIEST, LATEST = datetime(1677, 9, 22), datetime(2262, 4, 11)
MISSING_PARTS = (np.nan,) * len(DATETIME_PARTS)


def is_numeric(spec: Mapping[str, Any]) -> bool:
    """Whether a serving field is fed to the graph as float64 numbers."""
    return spec["kind"] in NUMERIC_KINDS


def is_datetime(spec: Mapping[str, Any]) -> bool:
    """Whether a serving field is a datetime column, fed to the graph as one tensor per part."""
    return spec["kind"] == "datetime"


def datetime_inputs(name: str) -> list[str]:
    """The graph input names that carry the parts of datetime column `name`."""
    return [f"{name}{DATETIME_INPUT_SEPARATOR}{part}" for part in DATETIME_PARTS]


def _text(value: Any) -> str:
    return MISSING_TEXT if value is None or value != value else str(value)  # NaN != NaN


def _parts(value: Any) -> tuple[float, ...]:
    """What DatetimeExpander makes of one value: naive UTC year, month, day, weekday, hour."""
    if value is None:
        return MISSING_PARTS
    if not isinstance(value, datetime):  # text: parse it exactly as the Pipeline does
        from kubecycle.transformers import DatetimeExpander  # scikit-learn: only when needed

        return tuple(DatetimeExpander().fit([[value]]).transform([[value]])[0])
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # an offset pushing year 1 or 9999 out of range
            return MISSING_PARTS
    if not EARLIEST <= value <= LATEST:
        return MISSING_PARTS
    return (value.year, value.month, value.day, value.weekday(), value.hour)


def _datetime_feed(name: str, parts: np.ndarray) -> dict[str, np.ndarray]:
    return {input_name: parts[:, [index]] for index, input_name in enumerate(datetime_inputs(name))}


def build_feed(rows: Sequence[Mapping[str, Any]], fields: Mapping[str, Mapping[str, Any]]
               ) -> dict[str, np.ndarray]:
    """Input tensors for records given as mappings of raw column name to value."""
    feed = {}
    for name, spec in fields.items():
        values = [row.get(name) for row in rows]
        if is_numeric(spec):
            feed[name] = np.array([np.nan if v is None else v for v in values],
                                  dtype=np.float64).reshape(-1, 1)
        elif is_datetime(spec):
            parts = np.array([_parts(v) for v in values], dtype=np.float64)
            feed.update(_datetime_feed(name, parts.reshape(len(values), len(DATETIME_PARTS))))
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
        elif is_datetime(spec):
            from kubecycle.transformers import DatetimeExpander  # scikit-learn: only when needed

            single = frame[[name]]
            feed.update(_datetime_feed(name, DatetimeExpander().fit(single).transform(single)))
        else:
            feed[name] = np.array([_text(v) for v in column.tolist()], dtype=object).reshape(-1, 1)
    return feed


def labels_as_classes(labels: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """The graph's predicted labels in the model's class type.

    skl2onnx emits boolean classes as 0 and 1.
    """
    if len(classes) and all(isinstance(c, bool | np.bool_) for c in classes):
        return np.asarray(labels).astype(bool)
    return labels
