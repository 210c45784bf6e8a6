"""The inference log in-process: periodic flushes, the final flush on close (every row, to a
folder and to an object store) and its bound when the sink hangs or refuses."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from kubecycle.monitoring.window import read_window
from kubecycle.serving.inference_log import InferenceLog


class Dropped:
    """Stands in for the Prometheus counter: counts by reason."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.reason = ""

    def labels(self, reason: str) -> Dropped:
        self.reason = reason
        return self

    def inc(self, amount: float = 1) -> None:
        self.counts[self.reason] += int(amount)


def _rows(count: int) -> list[dict]:
    stamp = datetime.now(UTC)
    return [{"x": float(i), "prediction": "a", "timestamp": stamp} for i in range(count)]


def _logged(sink: str | Path) -> pd.DataFrame:
    return pd.concat(read_window(sink))


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_close_writes_every_buffered_row(tmp_path, where, request):
    sink = str(tmp_path / "log") if where == "folder" else \
        f"{request.getfixturevalue('s3_bucket')}/serving/log"
    dropped = Dropped()
    log = InferenceLog(sink, dropped, flush_seconds=3600)  # no periodic flush before close
    log.append(_rows(300))
    log.close()
    assert sorted(_logged(sink)["x"]) == [float(i) for i in range(300)]
    assert dropped.counts == {}
    log.close()  # closing twice writes nothing more
    assert len(_logged(sink)) == 300


def test_periodic_flushes_go_on_until_close(tmp_path):
    log = InferenceLog(str(tmp_path / "log"), Dropped(), flush_seconds=0.05)
    log.append(_rows(10))
    while not list((tmp_path / "log").glob("*.parquet")):
        threading.Event().wait(0.05)
    log.append(_rows(5))
    log.close()
    assert len(_logged(tmp_path / "log")) == 15


def test_close_of_an_unwritable_folder_counts_the_rows(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    dropped = Dropped()
    log = InferenceLog(str(blocker / "log"), dropped, flush_seconds=3600)
    log.append(_rows(7))
    log.close()
    assert dropped.counts == {"write_failed": 7}


def test_close_gives_up_on_a_hanging_sink_and_counts_the_rows(tmp_path):
    release = threading.Event()

    class Hanging(InferenceLog):
        def _write(self, frame, name: str) -> None:
            release.wait()  # a sink that never answers

    dropped = Dropped()
    log = Hanging(str(tmp_path / "log"), dropped, flush_seconds=3600, shutdown_seconds=0.2)
    log.append(_rows(12))
    try:
        log.close()  # returns although the write never ends
        assert dropped.counts == {"shutdown_timeout": 12}
    finally:
        release.set()


def test_close_waits_for_a_periodic_write_in_progress(tmp_path):
    started, release = threading.Event(), threading.Event()

    class Slow(InferenceLog):
        def _write(self, frame, name: str) -> None:
            started.set()
            release.wait()
            super()._write(frame, name)

    dropped = Dropped()
    log = Slow(str(tmp_path / "log"), dropped, flush_seconds=0.01)
    log.append(_rows(4))
    started.wait()  # the periodic flush holds these 4 rows
    log.append(_rows(6))
    threading.Timer(0.2, release.set).start()
    log.close()
    assert len(_logged(tmp_path / "log")) == 10 and dropped.counts == {}
