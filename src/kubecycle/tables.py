"""Tables on disk or behind a URI, read in chunks: CSV and Parquet files, and folders of them.

A source is a local path or a URI that Arrow's filesystems open (s3://bucket/prefix, gs://...,
file://...). Memory stays bounded by the chunk size whatever the size of the source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kubecycle.errors import DataSourceError, first_line

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")
TABLE_SUFFIXES = PARQUET_SUFFIXES + CSV_SUFFIXES


@dataclass(frozen=True)
class TableFile:
    """One file of a source: its Arrow filesystem (None: local disk) and path."""

    filesystem: Any
    path: str

    @property
    def name(self) -> str:
        """The path as a user wrote it (with the URI scheme for remote files)."""
        return f"{self.filesystem.type_name}://{self.path}" if self.filesystem else self.path

    @property
    def is_parquet(self) -> bool:
        """Whether it is read as Parquet (else as CSV)."""
        return self.path.lower().endswith(PARQUET_SUFFIXES)


def _wanted(relative: str, suffixes: Sequence[str]) -> bool:
    """A table file not hidden: no part of its path under the source starts with . or _."""
    parts = relative.replace("\\", "/").strip("/").split("/")
    return (parts[-1].lower().endswith(tuple(suffixes))
            and not any(part.startswith((".", "_")) for part in parts))


def _local_files(source: Path, option: str, suffixes: Sequence[str]) -> list[TableFile]:
    if source.is_dir():
        files = sorted(p for p in source.rglob("*")
                       if p.is_file() and _wanted(str(p.relative_to(source)), suffixes))
        if not files:
            raise DataSourceError(f"{option} {source} holds no {'/'.join(suffixes)} files")
        return [TableFile(None, str(p)) for p in files]
    if not source.is_file():
        raise DataSourceError(f"{option} {source} not found; give a CSV/Parquet file or a folder")
    return [TableFile(None, str(source))]


def table_files(source: str | Path, option: str, suffixes: Sequence[str] = TABLE_SUFFIXES
                ) -> list[TableFile]:
    """Every file of a source: the file itself, or a folder's files with these suffixes (sorted).

    Hidden files and folders and those starting with an underscore (_SUCCESS, _temporary,
    the label store's _labels) are skipped.

    Args:
        source: A path or URI.
        option: How the user named the source (`--input`, say), for the error messages.
        suffixes: The file types a folder is searched for.

    Raises:
        DataSourceError: not found, an empty folder, or a remote listing failed.
    """
    if "://" not in str(source):
        return _local_files(Path(source), option, suffixes)
    from pyarrow import fs

    try:
        filesystem, base = fs.FileSystem.from_uri(str(source))
        info = filesystem.get_file_info(base)
        if info.type == fs.FileType.Directory:
            found = filesystem.get_file_info(fs.FileSelector(base, recursive=True))
            files = sorted(i.path for i in found if i.type == fs.FileType.File
                           and _wanted(i.path[len(base.rstrip("/")):], suffixes))
            if not files:
                raise DataSourceError(f"{option} {source} holds no {'/'.join(suffixes)} files")
            return [TableFile(filesystem, path) for path in files]
    except (OSError, ValueError) as exc:
        raise DataSourceError(f"{option} {source} could not be listed: "
                              f"{first_line(exc)}; check the URI and the credentials") from None
    if info.type != fs.FileType.File:
        raise DataSourceError(f"{option} {source} not found; give a CSV/Parquet file or a folder")
    return [TableFile(filesystem, base)]


def table_chunks(file: TableFile, rows: int, option: str, csv_as_text: bool = False,
                 columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """Yield a file's rows in chunks of at most `rows`.

    Args:
        file: The file.
        rows: The chunk size.
        option: How the user named the source, for the error messages.
        csv_as_text: Read every CSV column as text (missing cells as NaN), so that each chunk
            has the same types and a bad value is the caller's to judge, row by row.
        columns: Read only these columns, those the file has (None: all); a Parquet file's
            other columns are not even fetched.

    Raises:
        DataSourceError: the file could not be read (named, with the reader's reason).
    """
    try:
        if file.is_parquet:
            import pyarrow.parquet as pq

            source = file.filesystem.open_input_file(file.path) if file.filesystem else file.path
            # pre_buffer=False: Arrow otherwise keeps every read row group buffered (memory
            # would grow with the file)
            parquet = pq.ParquetFile(source, pre_buffer=False)
            present = None if columns is None else [
                c for c in columns if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=rows, columns=present):
                yield batch.to_pandas()
        else:
            source = (file.filesystem.open_input_stream(file.path)
                      if file.filesystem else file.path)
            wanted = None if columns is None else set(columns).__contains__
            yield from pd.read_csv(source, chunksize=rows, dtype=str if csv_as_text else None,
                                   usecols=wanted)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"{option} {file.name} could not be read: {first_line(exc)}"
                              ) from None


def parquet_rows(files: Sequence[TableFile]) -> int | None:
    """The rows of the files when every one is Parquet (read from the footers), else None."""
    if not files or not all(f.is_parquet for f in files):
        return None
    import pyarrow.parquet as pq

    total = 0
    for file in files:
        source = file.filesystem.open_input_file(file.path) if file.filesystem else file.path
        total += pq.ParquetFile(source).metadata.num_rows
    return total
