"""The inference log of a serving worker: every answered record, as Parquet files monitoring reads.

Records are buffered and written in batches, off the request path. This module is copied
into every bento.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger("kubecycle.inference_log")


class InferenceLog:
    """A bounded buffer flushed to Parquet files by a background thread.

    The files go into a local folder or under a URI Arrow writes to (s3://bucket/prefix,
    gs://...); rows that do not fit, or whose write fails, are dropped and counted (the service
    keeps answering). `close` writes what is left when the server stops, within a deadline.
    """

    def __init__(self, sink: str, dropped_counter: Any, buffer: int = 100_000,
                 flush_seconds: float = 5.0, shutdown_seconds: float = 10.0) -> None:
        """Start the periodic flushes.

        Args:
            sink: A folder, or a URI Arrow writes to (s3://bucket/prefix).
            dropped_counter: A counter with a `reason` label (Prometheus, via bentoml.metrics).
            buffer: Rows held at most; more are dropped (buffer_full).
            flush_seconds: Seconds between flushes.
            shutdown_seconds: Seconds the final flush (`close`) may take.
        """
        self.sink, self.dropped = sink, dropped_counter
        self.buffer, self.flush_seconds, self.shutdown_seconds = buffer, flush_seconds, shutdown_seconds
        self.rows: queue.Queue = queue.Queue(maxsize=buffer)
        self._lock = threading.Lock()  # one write at a time: the final flush waits for the last
        self._stopped = threading.Event()
        self._writing = 0  # rows of the write in progress
        threading.Thread(target=self._run, name="inference-log", daemon=True).start()

    def append(self, records: list[dict[str, Any]]) -> None:
        """Buffer records; those that do not fit are dropped and counted (buffer_full)."""
        for record in records:
            try:
                self.rows.put_nowait(record)
            except queue.Full:
                self.dropped.labels(reason="buffer_full").inc()

    def _run(self) -> None:
        while not self._stopped.wait(self.flush_seconds):
            self.flush()

    def _drain(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < self.buffer:
            try:
                batch.append(self.rows.get_nowait())
            except queue.Empty:
                break
        return batch

    def flush(self) -> int:
        """Write the buffered rows as one Parquet file.

        A failed write drops and counts them (write_failed).

        Returns:
            How many rows left the buffer (written or dropped); 0 when it was empty.
        """
        with self._lock:
            batch = self._drain()
            if not batch:
                return 0
            import pandas as pd

            name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
            self._writing = len(batch)
            try:
                self._write(pd.DataFrame.from_records(batch), name)
            except Exception as exc:  # any failure of the sink costs these rows, never the thread
                self.dropped.labels(reason="write_failed").inc(len(batch))
                logger.warning("inference log: %d rows dropped, writing to %s failed: %s: %s",
                               len(batch), self.sink, type(exc).__name__, exc)
            finally:
                self._writing = 0
            return len(batch)

    def _flush_all(self) -> None:
        while self.flush():
            pass

    def close(self, timeout: float | None = None) -> None:
        """Stop the periodic flushes and write every buffered row, giving up after `timeout` seconds.

        A sink that hangs must not hold up the shutdown; rows not written by then are dropped
        and counted (shutdown_timeout). Closing twice does nothing.

        Args:
            timeout: Seconds the final flush may take, waiting for a write in progress
                included; default: the `shutdown_seconds` given at construction.
        """
        if self._stopped.is_set():
            return
        timeout = self.shutdown_seconds if timeout is None else timeout
        self._stopped.set()
        final = threading.Thread(target=self._flush_all, name="inference-log-final", daemon=True)
        final.start()
        final.join(timeout)
        if final.is_alive():
            lost = self._writing + self.rows.qsize()
            self.dropped.labels(reason="shutdown_timeout").inc(lost)
            logger.error("inference log: %d rows dropped, not written to %s within %.1f s of "
                         "shutdown", lost, self.sink, timeout)

    def _write(self, frame: Any, name: str) -> None:
        if "://" not in self.sink:  # local: write aside, then rename (readers never see half)
            folder = Path(self.sink)
            folder.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(folder / f".{name}", index=False)
            os.replace(folder / f".{name}", folder / name)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyarrow import fs

        filesystem, base = fs.FileSystem.from_uri(self.sink)  # an object appears whole
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       f"{base.rstrip('/')}/{name}", filesystem=filesystem)
