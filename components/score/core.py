"""Batch scoring: files in, predictions out, in chunks, with the rows the contract rejects apart.

The output holds per accepted row the input's id columns (`scoring.id_columns`, default every
input column), the prediction, one probability column per class for a classifier, the model
name and version. Rejected rows go to `<output>.rejects.<suffix>` with the reason per row. Both
tables are published whole at the end or not at all; more rejects than
`scoring.max_reject_share` fail the run (the rejects are still written, for the diagnosis).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.config import KubecycleConfig
from kubecycle.errors import DataValidationError, KubecycleError
from kubecycle.registry import resolve_version
from kubecycle.scoring.checks import check_chunk, required_columns
from kubecycle.scoring.output import AtomicTable, beside, table_format
from kubecycle.scoring.predictor import BatchPredictor, load_predictor
from kubecycle.tables import parquet_rows, table_chunks, table_files

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"
MODEL_COLUMNS = ("model_name", "model_version")
INPUT_OPTION, OUTPUT_OPTION = "--input", "--output"

Progress = Callable[[int, int | None], None]  # rows read so far, rows in all (None: unknown)


class ScoringStopped(KubecycleError):
    """SIGTERM arrived: the run stopped at a chunk boundary and published nothing."""

    exit_code = 143


@dataclass(frozen=True)
class ScoringResult:
    """What a batch run scored, with which model and runtime, and where it wrote."""

    model_name: str
    model_version: str
    runtime: str
    runtime_reason: str
    rows: int
    scored: int
    rejected: int
    output: str
    rejects: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the kfp component's summary)."""
        return asdict(self)


def _output_columns(predictor: BatchPredictor) -> list[str]:
    return [PREDICTION_COLUMN, *(f"{PROBABILITY_PREFIX}{c}" for c in predictor.classes),
            *MODEL_COLUMNS]


def _kept_columns(cfg: KubecycleConfig, columns: list[str], predictor: BatchPredictor,
                  source: str) -> list[str]:
    """The input columns copied to the output; fail on missing id columns or name clashes."""
    ids = cfg.scoring.id_columns
    missing = [c for c in ids if c not in columns]
    if missing:
        raise DataValidationError(f"{source} lacks the id columns {missing} "
                                  "(scoring.id_columns); fix the config or the input")
    kept = ids or columns
    clashes = sorted(set(kept) & set(_output_columns(predictor)))
    if clashes:
        raise DataValidationError(f"{source} has columns {clashes} that the output adds; "
                                  "set scoring.id_columns to the input columns to keep")
    return list(kept)


def _scored(chunk: pd.DataFrame, accepted: pd.Series, features: pd.DataFrame,
            kept: list[str], predictor: BatchPredictor) -> pd.DataFrame:
    out = chunk.loc[accepted, kept].reset_index(drop=True)
    if features.empty:
        return out.assign(**{c: pd.Series(dtype=object) for c in _output_columns(predictor)})
    predictions, proba = predictor.score(features)
    out[PREDICTION_COLUMN] = predictions
    if predictor.classes:
        proba = np.asarray(proba, dtype=float)
    for index, label in enumerate(predictor.classes):
        out[f"{PROBABILITY_PREFIX}{label}"] = proba[:, index]
    out[MODEL_COLUMNS[0]] = predictor.model_name
    out[MODEL_COLUMNS[1]] = predictor.model_version
    return out


@contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """An event set by SIGTERM (in the main thread only), checked between chunks."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def score_batch(cfg: KubecycleConfig, source: str, destination: str, model: str = "",
                on_progress: Progress | None = None) -> ScoringResult:
    """Score every row of a file, a folder of files or a URI with a registered version.

    The MLflow tracking URI must already be set.

    Args:
        cfg: The config (scoring settings, the model name).
        source: CSV or Parquet file, a folder of them, or an s3:// / gs:// URI.
        destination: The output .csv or .parquet file (path or URI).
        model: NAME@ALIAS or NAME/VERSION; default: the config's model @champion.
        on_progress: Called after each chunk with the rows read and the total (if known).

    Returns:
        The counts, the model and runtime, and the tables written.

    Raises:
        DataValidationError: a required or id column is missing, the input has no rows, or
            more rows than scoring.max_reject_share break the contract.
        ScoringStopped: SIGTERM; nothing was published.
    """
    started = time.perf_counter()
    files = table_files(source, INPUT_OPTION)
    table_format(destination, OUTPUT_OPTION)  # a bad name fails before the model loads
    predictor = load_predictor(resolve_version(model, cfg.mlflow.model_name),
                               cfg.scoring.runtime)
    total = parquet_rows(files)
    output = AtomicTable(destination, OUTPUT_OPTION)
    rejects = AtomicTable(beside(destination, "rejects"), OUTPUT_OPTION)
    rows = 0
    try:
        with _stop_on_sigterm() as stop:
            for file in files:
                kept = None
                for chunk in table_chunks(file, cfg.scoring.chunk_rows, INPUT_OPTION,
                                          csv_as_text=True):
                    if kept is None:
                        required_columns(predictor.fields, list(chunk.columns), file.name)
                        kept = _kept_columns(cfg, list(chunk.columns), predictor, file.name)
                    checked = check_chunk(chunk, predictor.fields)
                    output.write(_scored(chunk, checked.accepted, checked.features, kept,
                                         predictor))
                    rejects.write(checked.rejected.reset_index(drop=True))
                    rows += len(chunk)
                    if on_progress:
                        on_progress(rows, total)
                    if stop.is_set():
                        raise ScoringStopped(f"stopped by SIGTERM after {rows} rows; nothing "
                                             f"was written to {destination}; run it again")
        if rows == 0:
            raise DataValidationError(f"{INPUT_OPTION} {source} holds no rows")
        share = rejects.rows / rows
        if share > cfg.scoring.max_reject_share:
            written = rejects.commit()
            raise DataValidationError(
                f"{rejects.rows} of {rows} rows ({share:.1%}) break the model's data contract, "
                f"more than scoring.max_reject_share {cfg.scoring.max_reject_share:.1%}; "
                f"nothing was written to {destination}; the rows and reasons are in {written}")
        published = output.commit()
        rejected_to = rejects.commit()
    except BaseException:
        output.abort()
        rejects.abort()
        raise
    return ScoringResult(predictor.model_name, predictor.model_version, predictor.runtime,
                         predictor.runtime_reason, rows, output.rows, rejects.rows, published,
                         rejected_to, round(time.perf_counter() - started, 3))

