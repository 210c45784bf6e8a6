"""Read a data source (file, URL or SQL query) into a pandas DataFrame.

For retraining, the labelled rows of a monitored window are added to it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from kubecycle.config import SqlSource
from kubecycle.errors import DataSourceError, DataValidationError, first_line
from kubecycle.monitoring.window import TIMESTAMP_COLUMN, LabelledWindow, read_window

HTTP_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class IngestResult:
    """The table read from a data source, with the source's name and its shape."""

    frame: pd.DataFrame
    source: str
    rows: int
    columns: int


def _format_of(name: str) -> str:
    suffix = Path(urlparse(name).path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt", ".tsv", ""):
        return "csv"
    raise DataSourceError(
        f"data.source {name}: unsupported file type {suffix!r}; use .csv or .parquet")


def _parse(payload: bytes | str | Path, fmt: str, name: str) -> pd.DataFrame:
    buffer = io.BytesIO(payload) if isinstance(payload, bytes) else payload
    try:
        if fmt == "parquet":
            return pd.read_parquet(buffer)
        sep = "\t" if name.lower().endswith(".tsv") else ","
        return pd.read_csv(buffer, sep=sep)
    except pd.errors.EmptyDataError:
        raise DataSourceError(
            f"data.source {name} is empty; give a file with a header row and data") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataSourceError(
            f"data.source {name} could not be read as {fmt}: {first_line(exc)}; "
            "check the file format") from None


def _read_http(url: str) -> bytes:
    import requests

    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise DataSourceError(
            f"data.source {url} is unreachable ({type(exc).__name__}); check the URL") from None
    if response.status_code != 200:
        raise DataSourceError(f"data.source {url} answered HTTP {response.status_code}; check the URL")
    return response.content


def _read_sql(source: SqlSource) -> pd.DataFrame:
    import sqlalchemy

    redacted = sqlalchemy.engine.make_url(source.url).render_as_string(hide_password=True)
    try:
        engine = sqlalchemy.create_engine(source.url)
    except (sqlalchemy.exc.ArgumentError, ImportError) as exc:
        raise DataSourceError(f"data.source.sql.url {redacted} is not usable: {exc}") from None
    try:
        with engine.connect() as connection:
            return pd.read_sql_query(sqlalchemy.text(source.query), connection)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = first_line(getattr(exc, "orig", None) or exc)
        raise DataSourceError(f"SQL source {redacted} failed: {reason}; check data.source.sql") from None
    finally:
        engine.dispose()


def ingest(source: str | SqlSource) -> IngestResult:
    """Read the source into a DataFrame.

    Args:
        source: a local .csv/.parquet path, an http(s) URL to one, or a SqlSource.

    Returns:
        The table and its shape. Raises DataSourceError with the source named.
    """
    if isinstance(source, SqlSource):
        frame, name = _read_sql(source), "sql query"
    elif urlparse(source).scheme in ("http", "https"):
        frame, name = _parse(_read_http(source), _format_of(source), source), source
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataSourceError(f"data.source {path} not found; check the path in the config")
        frame, name = _parse(path, _format_of(str(path)), str(path)), str(path)
    if frame.shape[1] == 0 or frame.empty:
        raise DataSourceError(f"data.source {name} has no rows; give a non-empty table")
    frame.columns = [str(c) for c in frame.columns]
    return IngestResult(frame=frame, source=name, rows=len(frame), columns=frame.shape[1])


def labelled_rows(columns: list[str], target: str | None, labelled: LabelledWindow,
                  id_columns: list[str] | None = None) -> pd.DataFrame:
    """The labelled rows of a window: the training data's columns (and `timestamp` if logged).

    Labelled rows are those whose target is set, in the window itself or by a label from its
    label store (kubecycle.settings.label_store: `/feedback` and `kubecycle feedback` put them
    there, joined by request id or `id_columns`); labels received after the window's end wait.
    The window is read in chunks.

    Raises:
        DataValidationError: no target is configured, or the window lacks a column the
            training data has.
    """
    from kubecycle.monitoring.labels import LABEL, RECEIVED, LabelJoiner, read_labels
    from kubecycle.settings import label_store

    if target is None:
        raise DataValidationError("labelled rows need data.target; a clustering config has none")
    store = label_store(labelled.source)
    labels = read_labels(store) if store else pd.DataFrame()
    end = labelled.end()
    if len(labels) and end is not None:
        labels = labels[pd.to_datetime(labels[RECEIVED], utc=True) <= end]
    joiner = LabelJoiner(labels, id_columns or []) if len(labels) else None
    parts = []
    for chunk in read_window(labelled.source, labelled.since(), now=end):
        missing = [c for c in columns if c not in chunk.columns and c != target]
        if missing:
            raise DataValidationError(
                f"the labelled rows at {labelled.source} lack the column(s) {missing} of "
                "data.source; log the model's inputs and the target there")
        truth = chunk[target] if target in chunk.columns else pd.Series(None, index=chunk.index,
                                                                         dtype=object)
        if joiner is not None:
            truth = truth.where(truth.notna(), joiner.labels_for(chunk)[LABEL])
        kept = [*columns, *([TIMESTAMP_COLUMN] if TIMESTAMP_COLUMN in chunk.columns else [])]
        parts.append(chunk.assign(**{target: truth}).loc[truth.notna(), kept])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def hold_out_newest(rows: pd.DataFrame, share: float, seed: int
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split labelled rows into those that train and the newest `share`, held out for the gate.

    Newest by `timestamp` when the rows have one, else a seeded sample.
    """
    count = round(len(rows) * share)
    if count == 0:
        return rows, rows.iloc[:0]
    if TIMESTAMP_COLUMN in rows.columns:
        order = pd.to_datetime(rows[TIMESTAMP_COLUMN], utc=True).sort_values(kind="stable").index
        recent = rows.loc[order[-count:]]
    else:
        recent = rows.sample(count, random_state=seed)
    return rows.drop(index=recent.index), recent


def with_labelled_rows(frame: pd.DataFrame, target: str | None, labelled: LabelledWindow,
                       id_columns: list[str] | None = None) -> tuple[pd.DataFrame, int]:
    """Extend the training rows by the labelled rows of a window (see labelled_rows).

    Returns:
        The extended table and how many rows were added.
    """
    rows = labelled_rows(list(frame.columns), target, labelled, id_columns)
    if rows.empty:
        return frame, 0
    return pd.concat([frame, rows[list(frame.columns)]], ignore_index=True), len(rows)
