"""Reading the current window in chunks, optionally limited to the last N hours.

The window is a CSV or Parquet file, or a folder of Parquet files (the serving inference log),
on local disk or behind a URI that Arrow's filesystems read (s3://bucket/prefix, gs://...,
file://...).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from kubecycle.errors import DataSourceError, DataValidationError, first_line

CHUNK_ROWS = 200_000
TIMESTAMP_COLUMN = "timestamp"


@dataclass(frozen=True)
class LabelledWindow:
    """Where a window's labelled rows are, as the training pipeline's parameters name them.

    They are the same three strings locally, in the monitoring pipeline and through the KFP API.
    """

    source: str  # a file, a folder or an object-store prefix (the inference log, say)
    window: str = ""  # how far back: "24h", "30m", "7d"; "" = every row
    until: str = ""  # the window's end, an ISO 8601 instant; "" = when the rows are read

    def since(self) -> timedelta | None:
        """The window's span (None: no limit)."""
        return parse_window(self.window)

    def end(self) -> datetime | None:
        """The window's end (None: now)."""
        if not self.until:
            return None
        try:
            end = datetime.fromisoformat(self.until)
        except ValueError:
            raise DataValidationError(f"labelled_until {self.until!r} is not an ISO 8601 "
                                      "instant; use e.g. 2026-01-31T12:00:00+00:00") from None
        return end if end.tzinfo else end.replace(tzinfo=UTC)


def window_text(since: timedelta | None) -> str:
    """A span as parse_window reads it back ("" for no limit)."""
    return "" if since is None else f"{since.total_seconds() / 60:g}m"


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


def _local_files(source: Path) -> list[Path]:
    if source.is_dir():
        files = sorted(p for p in source.rglob("*.parquet") if not p.name.startswith("."))
        if not files:
            raise DataSourceError(f"--current {source} holds no .parquet files")
        return files
    if not source.is_file():
        raise DataSourceError(f"--current {source} not found; give a CSV/Parquet file or a folder")
    return [source]


def _files(source: str | Path):
    """(filesystem or None for local disk, path) of every file of the window."""
    if "://" not in str(source):
        return [(None, path) for path in _local_files(Path(source))]
    from pyarrow import fs

    try:
        filesystem, base = fs.FileSystem.from_uri(str(source))
        info = filesystem.get_file_info(base)
        if info.type == fs.FileType.Directory:
            found = filesystem.get_file_info(fs.FileSelector(base, recursive=True))
            files = sorted(i.path for i in found if i.type == fs.FileType.File
                           and i.base_name.endswith(".parquet") and not i.base_name.startswith("."))
            if not files:
                raise DataSourceError(f"--current {source} holds no .parquet files")
            return [(filesystem, path) for path in files]
    except (OSError, ValueError) as exc:
        raise DataSourceError(f"--current {source} could not be listed: "
                              f"{first_line(exc)}; check the URI and the credentials") from None
    if info.type != fs.FileType.File:
        raise DataSourceError(f"--current {source} not found; give a CSV/Parquet file or a folder")
    return [(filesystem, base)]


def _chunks_of(filesystem, path: str | Path, rows: int) -> Iterator[pd.DataFrame]:
    name = f"{filesystem.type_name}://{path}" if filesystem is not None else str(path)
    try:
        if str(path).lower().endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            source = filesystem.open_input_file(str(path)) if filesystem is not None else path
            # pre_buffer=False: Arrow otherwise keeps every read row group buffered (memory
            # would grow with the window)
            for batch in pq.ParquetFile(source, pre_buffer=False).iter_batches(batch_size=rows):
                yield batch.to_pandas()
        else:
            source = filesystem.open_input_stream(str(path)) if filesystem is not None else path
            yield from pd.read_csv(source, chunksize=rows)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"--current {name} could not be read: {first_line(exc)}") from None


def read_window(source: str | Path, since: timedelta | None = None,
                rows: int = CHUNK_ROWS, now: datetime | None = None) -> Iterator[pd.DataFrame]:
    """Yield the window in chunks of at most `rows` rows.

    With `since`, only rows whose `timestamp` column lies within that span before `now` are
    yielded.
    """
    cutoff = (now or datetime.now(UTC)) - since if since else None
    for filesystem, path in _files(source):
        for chunk in _chunks_of(filesystem, path, rows):
            if cutoff is not None:
                if TIMESTAMP_COLUMN not in chunk.columns:
                    raise DataValidationError(
                        f"--window needs a {TIMESTAMP_COLUMN!r} column; {path} has none")
                stamps = pd.to_datetime(chunk[TIMESTAMP_COLUMN], utc=True, errors="coerce")
                chunk = chunk[stamps >= cutoff]
            if len(chunk):
                yield chunk
