"""Reading the current window in chunks: a CSV or Parquet file, or a folder of Parquet
files (the serving inference log), optionally limited to the last N hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from kubecycle.errors import DataSourceError, DataValidationError

CHUNK_ROWS = 200_000
TIMESTAMP_COLUMN = "timestamp"


def parse_window(text: str | None) -> timedelta | None:
    """'24h', '30m', '7d' -> timedelta; None -> no limit."""
    if not text:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or value <= 0:
        raise DataValidationError(f"--window {text!r} is not a duration; use e.g. 30m, 24h or 7d")
    return timedelta(**{units[unit]: value})


def _files(source: Path) -> list[Path]:
    if source.is_dir():
        files = sorted(p for p in source.rglob("*.parquet") if not p.name.startswith("."))
        if not files:
            raise DataSourceError(f"--current {source} holds no .parquet files")
        return files
    if not source.is_file():
        raise DataSourceError(f"--current {source} not found; give a CSV/Parquet file or a folder")
    return [source]


def _chunks_of(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            # pre_buffer=False: Arrow otherwise keeps every read row group buffered (memory
            # would grow with the window)
            for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=rows):
                yield batch.to_pandas()
        else:
            yield from pd.read_csv(path, chunksize=rows)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"--current {path} could not be read: {str(exc).splitlines()[0]}") from None


def read_window(source: str | Path, since: timedelta | None = None,
                rows: int = CHUNK_ROWS, now: datetime | None = None) -> Iterator[pd.DataFrame]:
    """Yield the window in chunks of at most `rows` rows; with `since`, only rows whose
    `timestamp` column lies within that span before `now`."""
    cutoff = (now or datetime.now(UTC)) - since if since else None
    for path in _files(Path(source)):
        for chunk in _chunks_of(path, rows):
            if cutoff is not None:
                if TIMESTAMP_COLUMN not in chunk.columns:
                    raise DataValidationError(
                        f"--window needs a {TIMESTAMP_COLUMN!r} column; {path} has none")
                stamps = pd.to_datetime(chunk[TIMESTAMP_COLUMN], utc=True, errors="coerce")
                chunk = chunk[stamps >= cutoff]
            if len(chunk):
                yield chunk
