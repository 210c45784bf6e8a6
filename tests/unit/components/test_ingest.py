import http.server
import threading
from datetime import UTC, datetime, timedelta
from functools import partial

import pandas as pd
import pytest
import sqlalchemy

from kubecycle.components.ingest.core import ingest, with_labelled_rows
from kubecycle.components.validate.core import clean
from kubecycle.config import SqlSource
from kubecycle.errors import DataSourceError, DataValidationError
from kubecycle.monitoring.window import LabelledWindow


def test_csv_and_parquet(tmp_path, penguins):
    penguins.to_parquet(tmp_path / "p.parquet")
    penguins.to_csv(tmp_path / "p.csv", index=False)
    csv = ingest(str(tmp_path / "p.csv"))
    parquet = ingest(str(tmp_path / "p.parquet"))
    assert (csv.rows, csv.columns) == penguins.shape
    pd.testing.assert_frame_equal(parquet.frame, penguins)


@pytest.fixture
def http_folder(tmp_path):
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_url(http_folder, penguins):
    folder, base = http_folder
    penguins.to_csv(folder / "p.csv", index=False)
    penguins.to_parquet(folder / "p.parquet")
    assert ingest(f"{base}/p.csv").rows == len(penguins)
    assert ingest(f"{base}/p.parquet").rows == len(penguins)
    with pytest.raises(DataSourceError, match="HTTP 404"):
        ingest(f"{base}/missing.csv")


def test_sql_against_real_postgres(postgres_url, penguins):
    engine = sqlalchemy.create_engine(postgres_url)
    penguins.to_sql("penguins", engine, if_exists="replace", index=False)
    engine.dispose()
    result = ingest(SqlSource(url=postgres_url, query="select * from penguins where year > 2007"))
    assert result.rows == int((penguins.year > 2007).sum())
    assert list(result.frame.columns) == list(penguins.columns)
    with pytest.raises(DataSourceError, match="no_such_table"):
        ingest(SqlSource(url=postgres_url, query="select * from no_such_table"))


def test_sql_dates_and_numerics_get_their_kinds(postgres_url):
    """PostgreSQL DATE columns arrive as date objects, NUMERIC as decimals (pandas coerces
    those) or objects: validation gives them datetime and numeric kinds, not categorical."""
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(
            "create table orders (placed date, amount numeric(10, 2), label text)"))
        connection.execute(sqlalchemy.text(
            "insert into orders select date '2024-01-01' + i, i * 1.25, "
            "case when i % 2 = 0 then 'a' else 'b' end from generate_series(1, 40) i"))
        connection.execute(sqlalchemy.text("insert into orders values (null, null, 'a')"))
    engine.dispose()
    frame = ingest(SqlSource(url=postgres_url, query="select * from orders")).frame
    contract = clean(frame, "label").contract
    kinds = {name: spec.kind for name, spec in contract.columns.items()}
    assert kinds == {"placed": "datetime", "amount": "numeric", "label": "categorical"}


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing.csv", "not found"),
        (b"", "empty.csv", "is empty"),
        (b"a,b\n", "header_only.csv", "has no rows"),
        (b"PAR1garbage", "broken.parquet", "could not be read as parquet"),
        (b"a,b\n1,2,3,4\n\"unclosed", "bad.csv", "could not be read as csv"),
        (b"a,b\n1,2\n", "data.xlsx", "unsupported file type"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataSourceError, match=message) as caught:
        ingest(str(path))
    assert name in str(caught.value)


def test_labelled_rows_of_a_window_join_the_training_rows(penguins, tmp_path):
    """Retraining's one data path: the window's rows with a target, within its span."""
    log = tmp_path / "log"
    log.mkdir()
    end = datetime(2026, 11, 25, 12, tzinfo=UTC)
    old = penguins.head(30).assign(timestamp=end - timedelta(days=3), prediction="Adelie")
    new = penguins.tail(40).assign(timestamp=end - timedelta(hours=2), prediction="Gentoo")
    new.loc[new.index[:10], "species"] = None  # not labelled yet
    old.to_parquet(log / "part-0.parquet")
    new.to_parquet(log / "part-1.parquet")
    window = LabelledWindow(str(log), "24h", end.isoformat())
    extended, added = with_labelled_rows(penguins, "species", window)
    assert added == 30 and len(extended) == len(penguins) + 30
    assert list(extended.columns) == list(penguins.columns)  # timestamp, prediction left out
    _, everything = with_labelled_rows(penguins, "species", LabelledWindow(str(log)))
    assert everything == 60


def test_labels_from_the_label_store_make_logged_rows_labelled(penguins, tmp_path):
    """Labels sent after the predictions (by request id or id columns) label the logged rows;
    those received after the window's end wait for the next retraining."""
    import json

    log = tmp_path / "log"
    log.mkdir()
    end = datetime(2026, 11, 25, 12, tzinfo=UTC)
    served = penguins.head(50).drop(columns="species").assign(
        timestamp=end - timedelta(hours=5), prediction="Adelie",
        request_id=[f"r{i}" for i in range(50)], customer=[f"C{i}" for i in range(50)])
    served.to_parquet(log / "part-0.parquet")
    (tmp_path / "log" / "_labels").mkdir()
    species = penguins.head(50)["species"].tolist()
    pd.DataFrame({"request_id": [f"r{i}" for i in range(20)] + [None] * 5 + ["r30"],
                  "customer": [None] * 20 + [f"C{i}" for i in range(20, 25)] + [None],
                  "label": [json.dumps(v) for v in [*species[:25], species[30]]],
                  "received_at": [end - timedelta(hours=1)] * 25 + [end + timedelta(hours=1)]}
                 ).to_parquet(tmp_path / "log" / "_labels" / "part.parquet")
    extended, added = with_labelled_rows(penguins, "species", LabelledWindow(
        str(log), "24h", end.isoformat()), ["customer"])
    assert added == 25  # r30's label came after the end
    assert extended.tail(25)["species"].tolist() == species[:25]
    assert list(extended.columns) == list(penguins.columns)


@pytest.mark.parametrize(("window", "target", "message"), [
    (lambda log: LabelledWindow(str(log)), None, "need data.target"),
    (lambda log: LabelledWindow(str(log), "", "yesterday"), "species", "labelled_until"),
    (lambda log: LabelledWindow(str(log), "soon"), "species", "not a duration"),
])
def test_bad_labelled_windows_are_named(penguins, tmp_path, window, target, message):
    penguins.to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(DataValidationError, match=message):
        with_labelled_rows(penguins, target, window(tmp_path))


def test_a_window_without_the_training_columns_is_refused(penguins, tmp_path):
    penguins.drop(columns="island").to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(DataValidationError, match=r"lack the column\(s\) \['island'\]"):
        with_labelled_rows(penguins, "species", LabelledWindow(str(tmp_path)))


def test_the_newest_labelled_rows_are_held_out_for_the_gate(penguins):
    from kubecycle.components.ingest.core import hold_out_newest

    stamps = pd.date_range("2026-11-01", periods=100, freq="h", tz="UTC")
    rows = penguins.head(100).assign(timestamp=stamps[::-1])  # newest first
    training, recent = hold_out_newest(rows, 0.3, 0)
    assert len(recent) == 30 and len(training) == 70
    assert recent["timestamp"].min() > training["timestamp"].max()
    no_time = penguins.head(10)
    kept, held = hold_out_newest(no_time, 0.3, 0)
    assert len(held) == 3 and set(kept.index).isdisjoint(held.index)
    assert hold_out_newest(no_time, 0.0, 0)[1].empty
