"""Benchmark: `kubecycle predict` against scoring with mlflow.pyfunc, same model, same rows.

    python bench/scoring.py [--quick] [--rows N]

A child process runs an `mlflow server` (as the cluster's scoring job talks to one over HTTP).
Another makes seeded data (16 numeric columns, 4 categorical, a class label), trains a 50-tree
random forest through kubecycle's feature plan on 20k rows, registers it and writes N rows
(default 1M; --quick 200k) x 20 columns to Parquet in row groups.
Each measured step then runs in its own 'spawn' process, reporting time.perf_counter seconds and
ru_maxrss: kubecycle = score_batch (reading, per-row checks, ONNX Runtime or the Pipeline,
writing the output and rejects), once with scoring.runtime auto and once with sklearn; pyfunc =
mlflow.pyfunc.load_model(...).predict over the same Parquet row groups, its predictions written
to Parquet (reading and writing included, no checks). The model is packaged first, as the
training pipeline does, so kubecycle runs the ONNX graph recorded with the version. The
children see no PyTorch, like the components image. Imports are done before timing. The
parent imports only the standard library (a Linux child's ru_maxrss starts from its parent's
high-water mark). Prints rows/s, peak MB, the ratios to pyfunc and PASS/MISS against the peak
memory target (1M x 20 under 500 MB); always exits 0.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROW_GROUP = 100_000
TRAIN_ROWS = 20_000
MODEL = "bench-scoring"
PEAK_TARGET_MB, PEAK_ROWS = 500.0, 1_000_000
LEVELS = {"colour": ["red", "green", "blue"], "size": ["S", "M", "L", "XL"],
          "region": ["north", "south", "east", "west", "central"], "channel": ["web", "store"]}


def _frame(rows: int, seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {f"x{i:02d}": rng.normal(i % 4, 1 + i % 3, rows) for i in range(16)}
    for name, levels in LEVELS.items():
        data[name] = rng.choice(levels, rows)
    frame = pd.DataFrame(data)
    score = frame["x00"] - 0.5 * frame["x01"] + (frame["colour"] == "red") + rng.normal(0, 1, rows)
    frame["label"] = np.where(score > 1.2, "high", np.where(score < -0.5, "low", "mid"))
    return frame


def _prepare(work: str, rows: int, uri: str) -> None:
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from kubecycle.components.features.core import plan_columns
    from kubecycle.components.register.core import register_version
    from kubecycle.components.split.core import split_frame
    from kubecycle.components.track.core import start_parent_run
    from kubecycle.components.train.core import fit_final, select_best
    from kubecycle.components.validate.core import clean
    from kubecycle.config import parse_config
    from kubecycle.evaluation import evaluate_model
    from kubecycle.modelling import TuneResult
    from kubecycle.serving.bento import package_version
    from kubecycle.tracking import connect

    os.chdir(work)
    os.environ["BENTOML_HOME"] = f"{work}/bentoml"
    connect(uri)
    cfg = parse_config({"data": {"source": "x.csv", "target": "label"},
                        "mlflow": {"model_name": MODEL}})
    cleaned = clean(_frame(TRAIN_ROWS, 0), "label")
    train, test = split_frame(cleaned.frame, "label", "classification", 0.2, 0)
    plan = plan_columns(cleaned.contract, cfg.features)
    family = TuneResult("random_forest", "f1", {"n_estimators": 50, "max_depth": 12}, 0, 0)
    model = fit_final(plan, select_best([family]), train, 0)
    metrics = evaluate_model(model, test, "label", "classification").metrics
    contract = cleaned.contract.with_inputs(plan.dropped)
    registered = register_version(
        model, run_id=start_parent_run(cfg, uri), model_name=MODEL, task="classification",
        metric="f1", test_metrics=metrics, train=train, test=test, target="label",
        contract=contract, seed=0, min_score=None, min_improvement=0.0)
    package_version(model, MODEL, registered.version, contract, test=test)
    writer = None
    for start in range(0, rows, ROW_GROUP):
        table = pa.Table.from_pandas(_frame(min(ROW_GROUP, rows - start), start + 1)
                                     .drop(columns="label"), preserve_index=False)
        writer = writer or pq.ParquetWriter(f"{work}/input.parquet", table.schema)
        writer.write_table(table)
    writer.close()


def _kubecycle(work: str, runtime: str, uri: str) -> dict[str, Any]:
    import os

    from kubecycle.components.score.core import score_batch
    from kubecycle.config import parse_config
    from kubecycle.tracking import connect

    os.chdir(work)
    connect(uri)
    cfg = parse_config({"data": {"source": "x.csv"}, "mlflow": {"model_name": MODEL},
                        "scoring": {"runtime": runtime}})
    started = time.perf_counter()
    result = score_batch(cfg, f"{work}/input.parquet", f"{work}/out-{runtime}.parquet")
    return {"seconds": time.perf_counter() - started, "rows": result.scored,
            "runtime": result.runtime}


def _pyfunc(work: str, uri: str) -> dict[str, Any]:
    import os

    import mlflow
    import pandas as pd
    import pyarrow.parquet as pq

    os.chdir(work)
    mlflow.set_tracking_uri(uri)
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    writer, rows = None, 0
    for batch in pq.ParquetFile(f"{work}/input.parquet").iter_batches(batch_size=ROW_GROUP):
        import pyarrow as pa

        frame = batch.to_pandas()
        table = pa.Table.from_pandas(pd.DataFrame({"prediction": model.predict(frame)}))
        writer = writer or pq.ParquetWriter(f"{work}/out-pyfunc.parquet", table.schema)
        writer.write_table(table)
        rows += len(frame)
    writer.close()
    return {"seconds": time.perf_counter() - started, "rows": rows, "runtime": "pyfunc"}


class _NoTorch:
    """An import finder that answers `import torch` as if PyTorch were not installed.

    The components image that scores on a cluster has no PyTorch, but this venv has (the tests
    use it) and skops' import pulls it in (200 MB) through scikit-learn's array-API shims.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _server(send: Any, stop: Any, work: str) -> None:
    from kubecycle.tracking import local_server

    with local_server(Path(work) / "home") as url:
        send.send(url)
        stop.recv()


def _child(send: Any, step: str, work: str, rows: int, uri: str) -> None:
    import sys

    sys.meta_path.insert(0, _NoTorch())  # as in the components image
    try:
        if step == "prepare":
            _prepare(work, rows, uri)
            result: dict[str, Any] = {}
        elif step == "pyfunc":
            result = _pyfunc(work, uri)
        else:
            result = _kubecycle(work, step, uri)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        send.send(result)
    except BaseException:
        send.send({"error": traceback.format_exc()})


def _run(step: str, work: str, rows: int, uri: str) -> dict[str, Any]:
    context = mp.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, step, work, rows, uri))
    process.start()
    result = receive.recv()
    process.join()
    if "error" in result:
        raise SystemExit(f"{step} failed:\n{result['error']}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k rows")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else PEAK_ROWS)
    context = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="kubecycle-bench-scoring-") as work:
        receive, send = context.Pipe(duplex=False)
        stop_receive, stop_send = context.Pipe(duplex=False)
        server = context.Process(target=_server, args=(send, stop_receive, work))
        server.start()
        try:
            uri = receive.recv()
            _run("prepare", work, rows, uri)
            results = {step: _run(step, work, rows, uri) for step in ("pyfunc", "auto", "sklearn")}
        finally:
            stop_send.send(True)
            server.join()
    base = results["pyfunc"]["rows"] / results["pyfunc"]["seconds"]
    print(f"{rows:,} rows x 20 columns, 50-tree random forest, 2 cores\n")
    print(f"{'scorer':<26} {'runtime':>8} {'seconds':>8} {'rows/s':>10} {'peak MB':>8} {'x pyfunc':>9}")
    for step, label in (("auto", "kubecycle predict"), ("sklearn", "kubecycle predict sklearn"),
                        ("pyfunc", "mlflow.pyfunc")):
        r = results[step]
        rate = r["rows"] / r["seconds"]
        print(f"{label:<26} {r['runtime']:>8} {r['seconds']:>8.1f} {rate:>10,.0f} "
              f"{r['peak_mb']:>8.0f} {rate / base:>9.2f}")
    peak = results["auto"]["peak_mb"]
    if rows >= PEAK_ROWS:
        verdict = "PASS" if peak < PEAK_TARGET_MB else "MISS"
        print(f"\n{verdict} peak {peak:.0f} MB for {rows:,} x 20 (target < {PEAK_TARGET_MB:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
