"""The label store: labels that arrive after the predictions, joined to the inference log.

Labels are Parquet parts in a folder or under a URI (beside the inference log, see
kubecycle.settings.label_store), written by the service's `/feedback` and by `kubecycle
feedback`. A label names its prediction by request id or by id columns; the label itself is
JSON text, so every part has one schema whatever the task. The newest label of a prediction
counts, so re-sending labels is idempotent.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from kubecycle.errors import DataSourceError, DataValidationError
from kubecycle.scoring.output import AtomicTable
from kubecycle.tables import PARQUET_SUFFIXES, table_chunks, table_files

LABEL, REQUEST_ID, RECEIVED = "label", "request_id", "received_at"
CHUNK_ROWS = 200_000
EXAMPLES = 5  # unknown ids named in a report


@dataclass(frozen=True)
class FeedbackResult:
    """What `kubecycle feedback` read, stored and could join to logged predictions."""

    read: int
    joined: int
    unknown: int
    keys: list[str]
    store: str
    unknown_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


def label_keys(columns: list[str]) -> list[str]:
    """The columns naming a label's prediction: everything but the label and its arrival time."""
    return [c for c in columns if c not in (LABEL, RECEIVED)]


def read_labels(store: str) -> pd.DataFrame:
    """Every prediction's newest label, decoded (empty when the store has none yet)."""
    try:
        files = table_files(store, "label store", PARQUET_SUFFIXES)
    except DataSourceError:
        return pd.DataFrame(columns=[REQUEST_ID, LABEL, RECEIVED])
    frame = pd.concat([chunk for file in files for chunk in table_chunks(file, CHUNK_ROWS,
                                                                          "label store")],
                      ignore_index=True)
    keys = label_keys(list(frame.columns))
    for key in keys:  # ids as text: the service keeps them as sent, files as read
        frame[key] = frame[key].where(frame[key].isna(), frame[key].astype(str))
    frame = frame.sort_values(RECEIVED, kind="stable").drop_duplicates(keys, keep="last")
    return frame.assign(**{LABEL: frame[LABEL].map(json.loads)}).reset_index(drop=True)


class LabelJoiner:
    """Labels by request id and by id columns, looked up for chunks of the log."""

    def __init__(self, labels: pd.DataFrame, id_columns: list[str]) -> None:
        by_request = labels[labels[REQUEST_ID].notna()] if REQUEST_ID in labels else labels.iloc[:0]
        self.by_request = by_request.set_index(REQUEST_ID)[[LABEL, RECEIVED]]
        rest = labels[labels[REQUEST_ID].isna()] if REQUEST_ID in labels else labels
        self.id_columns = [c for c in id_columns if c in rest.columns]
        self.by_ids = (rest.dropna(subset=self.id_columns)
                       .set_index(self.id_columns)[[LABEL, RECEIVED]]
                       if self.id_columns else None)

    def labels_for(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """Label and arrival time per row of the chunk (NaN where none)."""
        found = pd.DataFrame(index=chunk.index, columns=[LABEL, RECEIVED], dtype=object)
        if REQUEST_ID in chunk.columns and len(self.by_request):
            found = self.by_request.reindex(chunk[REQUEST_ID].astype(str)).set_axis(chunk.index)
        if self.by_ids is not None and all(c in chunk.columns for c in self.id_columns):
            keys = pd.MultiIndex.from_frame(chunk[self.id_columns].astype(str)) \
                if len(self.id_columns) > 1 else chunk[self.id_columns[0]].astype(str)
            by_ids = self.by_ids.reindex(keys).set_axis(chunk.index)
            found = found.fillna(by_ids)
        return found


def _unlogged(inference_log: str, keys: list[str], wanted: set[tuple[str, ...]]
              ) -> set[tuple[str, ...]]:
    """The wanted key values (as text) that no logged prediction has.

    Reads only the key columns, and stops once every wanted key was seen: memory follows the
    labels, not the log.
    """
    pending = set(wanted)
    for file in table_files(inference_log, "--inference-log", PARQUET_SUFFIXES):
        for chunk in table_chunks(file, CHUNK_ROWS, "--inference-log", columns=keys):
            missing = [k for k in keys if k not in chunk.columns]
            if missing:
                raise DataValidationError(f"the inference log {file.name} has no column "
                                          f"{missing}; join labels on request_id or on "
                                          "logged input columns (monitoring.id_columns)")
            pending.difference_update(zip(*(chunk[k].astype(str) for k in keys), strict=True))
            if not pending:
                return pending
    return pending


def _native(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def record_labels(source: str, inference_log: str, store: str, id_columns: list[str],
                  label_column: str) -> FeedbackResult:
    """Store the labels of a file, a folder or a URI, and report how many join predictions.

    Every label is stored (its prediction may not be logged yet); those whose request id or
    id columns match no logged prediction are counted and named.

    Args:
        source: CSV or Parquet labels: `request_id` or the id columns, and the label column.
        inference_log: The inference log the labels refer to.
        store: The label store.
        id_columns: Columns that name a prediction when the labels have no request_id.
        label_column: The column holding the label.

    Raises:
        DataValidationError: the label column or the id columns are missing.
    """
    frame = pd.concat([chunk for file in table_files(source, "--labels")
                       for chunk in table_chunks(file, CHUNK_ROWS, "--labels")], ignore_index=True)
    keys = [REQUEST_ID] if REQUEST_ID in frame.columns else list(id_columns)
    missing = [c for c in [label_column, *keys] if c not in frame.columns]
    if not keys or missing:
        raise DataValidationError(f"--labels {source} lacks the columns {missing or [REQUEST_ID]}; "
                                  f"give {REQUEST_ID} (or monitoring.id_columns) and "
                                  f"{label_column!r}")
    frame = frame[frame[label_column].notna()]
    rows = pd.DataFrame({**{k: frame[k].astype(str) for k in keys},
                         LABEL: [json.dumps(_native(v)) for v in frame[label_column]],
                         RECEIVED: datetime.now(UTC)})
    labelled = list(zip(*(rows[k] for k in keys), strict=True))
    unlogged = _unlogged(inference_log, keys, set(labelled))  # before storing: it may refuse
    table = AtomicTable(f"{store.rstrip('/')}/part-{datetime.now(UTC):%Y%m%dT%H%M%S}-"
                        f"{uuid.uuid4().hex[:8]}.parquet", "--label-store")
    table.write(rows)
    table.commit()
    unknown = [key for key in labelled if key in unlogged]
    return FeedbackResult(len(rows), len(rows) - len(unknown), len(unknown), keys, store,
                          [":".join(key) for key in unknown[:EXAMPLES]])
