"""A CSV or Parquet table written chunk by chunk and published in one step, or not at all.

Chunks go to a hidden temporary file; `commit` renames it into place (local disk) or uploads
it in one request (object stores publish an object only once it is complete), `abort` removes
it. A reader never sees a half-written table.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pandas as pd

from kubecycle.errors import DataSourceError, first_line

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def table_format(destination: str, option: str) -> str:
    """The table format, "parquet" or "csv", from the destination's suffix.

    Raises:
        DataSourceError: another suffix (the option named).
    """
    suffix = Path(destination.rstrip("/")).suffix.lower()
    if suffix not in FORMATS:
        raise DataSourceError(f"{option} {destination}: name a .csv or .parquet file")
    return FORMATS[suffix]


def beside(destination: str, label: str) -> str:
    """A sibling of the destination with the label before its suffix: out.parquet -> out.rejects.parquet."""
    head, dot, suffix = destination.rpartition(".")
    return f"{head}.{label}.{suffix}" if dot else f"{destination}.{label}"


class AtomicTable:
    """One table written in chunks, published whole by `commit`."""

    def __init__(self, destination: str, option: str) -> None:
        self.destination = destination
        self.option = option
        self.format = table_format(destination, option)
        self.remote = "://" in destination
        if self.remote:
            self._folder = Path(tempfile.mkdtemp(prefix="kubecycle-table-"))
            self.temporary = self._folder / Path(destination).name
        else:
            target = Path(destination)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.temporary = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
        self.rows = 0
        self._columns: list[str] | None = None
        self._parquet = None  # pyarrow.parquet.ParquetWriter, opened by the first rows
        self._schema = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append rows (the columns of the first call fix the table's columns)."""
        if self._columns is None:
            self._columns = list(frame.columns)
        if frame.empty:
            return
        if self.format == "csv":
            frame.to_csv(self.temporary, mode="a", header=self.rows == 0, index=False)
        else:
            self._write_parquet(frame)
        self.rows += len(frame)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            schema = pa.Schema.from_pandas(frame, preserve_index=False)
            self._schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type)
                                      else f for f in schema])  # all missing so far: text
            self._parquet = pq.ParquetWriter(self.temporary, self._schema)
        try:
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataSourceError(f"{self.option} {self.destination}: a column changed type "
                                  f"between input chunks or files ({first_line(exc)}); give "
                                  "every input file the same column types") from None
        self._parquet.write_table(table)

    def _finish_file(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            return
        if self.rows == 0:  # no rows at all: the columns only
            empty = pd.DataFrame(columns=self._columns or [])
            if self.format == "csv":
                empty.to_csv(self.temporary, index=False)
            else:
                empty.astype(str).to_parquet(self.temporary, index=False)

    def commit(self) -> str:
        """Publish the table at its destination; return the destination."""
        self._finish_file()
        if not self.remote:
            os.replace(self.temporary, self.destination)
            return self.destination
        from pyarrow import fs

        try:
            target, path = fs.FileSystem.from_uri(self.destination)
            fs.copy_files(str(self.temporary), path, destination_filesystem=target)
        except (OSError, ValueError) as exc:
            raise DataSourceError(f"{self.option} {self.destination} could not be written: "
                                  f"{first_line(exc)}; check the URI and the credentials"
                                  ) from None
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)
        return self.destination

    def abort(self) -> None:
        """Remove what was written; the destination is left as it was."""
        if self._parquet is not None:
            self._parquet.close()
        if self.remote:
            shutil.rmtree(self._folder, ignore_errors=True)
        else:
            self.temporary.unlink(missing_ok=True)
