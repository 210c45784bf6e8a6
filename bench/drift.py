"""Benchmark: kubecycle's streaming drift engine against Evidently 0.7's DataDriftPreset.

    python bench/drift.py [--quick]

Seeded synthetic data in 20-column blocks (16 numeric: normal, lognormal, uniform, Poisson
counts; 4 categorical strings); in the current frame 5 columns per block drift. A child process
writes both frames to Parquet in row groups; each measured step then runs in its own 'spawn'
process, reporting time.perf_counter seconds and ru_maxrss: registration = build_reference on the
reference frame; kubecycle = the DriftEngine over read_window chunks of the current Parquet file
(reading included); Evidently = evidently_drift on both frames in memory (reading excluded).
Lazy imports are done before timing. The parent imports only the standard library, as a Linux
child's ru_maxrss starts from its parent's high-water mark (it survives exec). Cases: 100k x 20,
1M x 20, 100k x 500, 10M x 20 streamed (kubecycle only, 1M-row reference); --quick runs
100k x 20 and a 1M-row stream. Prints PASS/MISS against the issue's targets; always exits 0.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import pickle
import resource
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import numpy as np

CHUNK_ROWS = 200_000  # rows per Parquet row group when writing
SPEED_TARGET, SPEED_ROWS = 30.0, 1_000_000
STREAM_TARGET_MB, STREAM_ROWS = 1024.0, 10_000_000
CATEGORIES = {  # name: (levels, reference shares, drifted shares or None)
    "colour": (["red", "green", "blue"], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]),
    "size": (["S", "M", "L", "XL"], [0.1, 0.4, 0.3, 0.2], None),
    "region": (["north", "south", "east", "west", "central"], [0.2] * 5, None),
    "channel": (["web", "store"], [0.7, 0.3], None),
}
DRIFTED = ("normal0", "lognormal0", "uniform0", "count0", "colour")  # per block, by design


@dataclass(frozen=True)
class Case:
    label: str
    rows: int
    blocks: int  # 20-column blocks
    ref_rows: int
    evidently: bool  # False: streamed, kubecycle only

    @property
    def columns(self) -> int:
        return 20 * self.blocks


SMALL = Case("100k x 20", 100_000, 1, 100_000, True)
QUICK = [SMALL, Case("1M x 20 stream", 1_000_000, 1, 1_000_000, False)]
FULL = [SMALL, Case("1M x 20", SPEED_ROWS, 1, SPEED_ROWS, True),
        Case("100k x 500", 100_000, 25, 100_000, True),
        Case("10M x 20 stream", STREAM_ROWS, 1, 1_000_000, False)]


def block(rng: np.random.Generator, rows: int, b: int, drift: bool) -> dict[str, Any]:
    """One 20-column block; with drift, the DRIFTED columns move."""
    import numpy as np

    columns: dict[str, Any] = {}
    for i in range(4):
        s = 1.0 if drift and i == 0 else 0.0
        columns[f"b{b:02d}_normal{i}"] = rng.normal(i + 0.3 * s, 1 + 0.5 * i, rows)
        columns[f"b{b:02d}_lognormal{i}"] = rng.lognormal(0.3 * s, 0.5 + 0.25 * i, rows)
        columns[f"b{b:02d}_uniform{i}"] = rng.uniform(-i, 10 + 2 * s, rows)
        columns[f"b{b:02d}_count{i}"] = rng.poisson((1, 3, 8, 30)[i] * (1 + 0.5 * s), rows)
    for name, (levels, shares, drifted) in CATEGORIES.items():
        p = drifted if drift and drifted else shares
        columns[f"b{b:02d}_{name}"] = np.asarray(levels)[rng.choice(len(levels), rows, p=p)]
    return columns


def write(path: Path, rows: int, blocks: int, role: int) -> None:
    """rows x 20*blocks to Parquet, one row group per CHUNK_ROWS; role 1 (current) drifts."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
        size = min(CHUNK_ROWS, rows - start)
        columns: dict[str, Any] = {}
        for b in range(blocks):
            columns.update(block(np.random.default_rng([b, role, index]), size, b, role == 1))
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def measure(step: str, folder: Path, case: Case) -> dict[str, Any]:
    """One step, in this (child) process: seconds, peak MB and drifted columns."""
    import pandas as pd
    import scipy.spatial.distance  # the engine imports scipy lazily: keep that out of the timing
    import scipy.stats  # noqa: F401

    from kubecycle.contract import column_kind, drift_kind
    from kubecycle.monitoring.drift import DriftEngine
    from kubecycle.monitoring.report import evidently_drift
    from kubecycle.monitoring.window import read_window
    from kubecycle.reference import ReferenceStats, build_reference

    seconds, drifted = 0.0, []
    reference_path, current_path = folder / "reference.parquet", folder / "current.parquet"
    if step == "write":
        write(reference_path, case.ref_rows, case.blocks, 0)
        write(current_path, case.rows, case.blocks, 1)
    elif step == "register":
        frame = pd.read_parquet(reference_path)
        start = time.perf_counter()
        stats = build_reference(frame)
        seconds = time.perf_counter() - start
        (folder / "reference.pkl").write_bytes(pickle.dumps(stats.to_dict()))
    elif step == "kubecycle":
        stats = ReferenceStats.from_dict(pickle.loads((folder / "reference.pkl").read_bytes()))
        start = time.perf_counter()
        engine = DriftEngine(stats)
        for chunk in read_window(current_path):
            engine.add(chunk)
        result = engine.result()
        seconds = time.perf_counter() - start
        drifted = result.drifted_columns
    elif step == "evidently":
        import evidently.presets  # noqa: F401  (import cost stays out of the timing)

        reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
        kinds = {name: drift_kind(column_kind(reference[name])) for name in reference.columns}
        start = time.perf_counter()
        verdicts = evidently_drift(reference, current, kinds)
        seconds = time.perf_counter() - start
        drifted = [name for name, verdict in verdicts.items() if verdict.drifted]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": seconds, "mb": peak_mb, "drifted": sorted(drifted)}


def _child(conn: Connection, step: str, folder: Path, case: Case) -> None:
    try:
        conn.send(measure(step, folder, case))
    except BaseException:
        conn.send({"error": traceback.format_exc(limit=3)})
    conn.close()


def run(step: str, folder: Path, case: Case) -> dict[str, Any] | None:
    """Run a step in a fresh spawned process; None (and the reason on stderr) if it failed."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(send, step, folder, case))
    process.start()
    send.close()
    try:
        result: dict[str, Any] = receive.recv()
    except EOFError:
        result = {"error": "child process died"}
    process.join()
    if "error" in result or process.exitcode:
        print(f"  {case.label} {step} failed (exit {process.exitcode}): {result.get('error')}",
              file=sys.stderr)
        return None
    return result


def verdict_note(kc: list[str], ev: list[str] | None, case: Case) -> str:
    expected = sorted(f"b{b:02d}_{name}" for b in range(case.blocks) for name in DRIFTED)
    design = "= design" if kc == expected else f"design differs: {sorted(set(kc) ^ set(expected))}"
    if ev is None:
        return f"n/a ({design})"
    if kc == ev:
        return f"identical ({design})"
    return (f"DIFFER kubecycle-only {sorted(set(kc) - set(ev))}, "
            f"evidently-only {sorted(set(ev) - set(kc))} ({design})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k x 20 and a 1M-row stream only")
    cases = QUICK if parser.parse_args().quick else FULL
    print(f"{'case':<16}{'register s':>11}{'reg MB':>8}{'kc s':>8}{'kc MB':>8}{'ev s':>9}{'ev MB':>8}"
          f"{'ev/kc':>8}{'ev/(reg+kc)':>12}  kc drifted, verdicts")
    results: list[tuple[Case, dict[str, Any], dict[str, Any] | None]] = []
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="kc-drift-") as tmp:
            folder = Path(tmp)
            register = run("register", folder, case) if run("write", folder, case) else None
            kc = run("kubecycle", folder, case) if register else None
            ev = run("evidently", folder, case) if register and case.evidently else None
        if register is None or kc is None:
            print(f"{case.label:<16}  kubecycle failed (see stderr)")
            continue
        results.append((case, kc, ev))
        ev_cols = ev["drifted"] if ev else None
        ev_s = f"{ev['seconds']:9.2f}{ev['mb']:8.0f}" if ev else f"{'-':>9}{'-':>8}"
        total = register["seconds"] + kc["seconds"]
        ratio = (f"{ev['seconds'] / kc['seconds']:7.1f}x{ev['seconds'] / total:11.1f}x" if ev
                 else f"{'-':>8}{'-':>12}")
        print(f"{case.label:<16}{register['seconds']:11.2f}{register['mb']:8.0f}{kc['seconds']:8.2f}"
              f"{kc['mb']:8.0f}{ev_s}{ratio}  {len(kc['drifted'])}/{case.columns} "
              f"{verdict_note(kc['drifted'], ev_cols, case)}", flush=True)
    print("\nTargets (kc = the DriftEngine over the current window; registration is one-time):")
    speed = [(kc, ev) for case, kc, ev in results if case.rows == SPEED_ROWS and case.columns == 20 and ev]
    if speed:
        kc, ev = speed[0]
        ratio, same = ev["seconds"] / kc["seconds"], kc["drifted"] == ev["drifted"]
        mark = "PASS" if ratio >= SPEED_TARGET and same else "MISS"
        print(f"  {mark}  at least {SPEED_TARGET:.0f}x faster than Evidently at 1M x 20 with identical "
              f"verdicts: {ratio:.1f}x, verdicts {'identical' if same else 'DIFFER'}")
    else:
        print(f"  N/A   at least {SPEED_TARGET:.0f}x faster than Evidently at 1M x 20: not run (or failed)")
    stream = [kc["mb"] for case, kc, _ in results if case.rows == STREAM_ROWS and not case.evidently]
    if stream:
        mark = "PASS" if stream[0] < STREAM_TARGET_MB else "MISS"
        print(f"  {mark}  10M rows x 20 columns streamed under 1 GB peak: {stream[0]:.0f} MB")
    else:
        streamed = ", ".join(f"{c.label} {kc['mb']:.0f} MB" for c, kc, _ in results if not c.evidently)
        print(f"  N/A   10M rows x 20 columns streamed under 1 GB peak: not run ({streamed or 'none'})")


if __name__ == "__main__":
    main()
