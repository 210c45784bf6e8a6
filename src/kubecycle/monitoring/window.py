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

from kubecycle.errors import DataValidationError
from kubecycle.tables import PARQUET_SUFFIXES, table_chunks, table_files

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


def read_window(source: str | Path, since: timedelta | None = None,
                rows: int = CHUNK_ROWS, now: datetime | None = None) -> Iterator[pd.DataFrame]:
    """Yield the window in chunks of at most `rows` rows.

    With `since`, only rows whose `timestamp` column lies within that span before `now` are
    yielded.
    """
    cutoff = (now or datetime.now(UTC)) - since if since else None
    for file in table_files(source, "--current", PARQUET_SUFFIXES):
        for chunk in table_chunks(file, rows, "--current"):
            if cutoff is not None:
                if TIMESTAMP_COLUMN not in chunk.columns:
                    raise DataValidationError(
                        f"--window needs a {TIMESTAMP_COLUMN!r} column; {file.name} has none")
                stamps = pd.to_datetime(chunk[TIMESTAMP_COLUMN], utc=True, errors="coerce")
                chunk = chunk[stamps >= cutoff]
            if len(chunk):
                yield chunk
