"""Benchmark: kubecycle's kfp.local pipeline against the same stages as a plain script.

    python bench/pipeline.py [--rows 10000 1000000] [--quick]

Per size, seeded synthetic data (16 numeric and 4 categorical columns with missing values, a
noisy binary label) goes through (a) the project's core functions in this process, tables
moving between stages as Parquet, no kfp, no MLflow, and (b) `run_local` (kfp.local, a local
MLflow server, registration and BentoML packaging) in a fresh KUBECYCLE_HOME, both with the
same config. The shipped demo is timed once. Heavy modules are imported once up front, so
neither timing includes this process's imports; the imports of kubecycle's task processes
count, as they are part of its orchestration overhead. Prints PASS/MISS against the issue's
targets and always exits 0 (a report, not a test).
"""

from __future__ import annotations

import argparse
import builtins
import importlib
import logging
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from kubecycle.artifacts import read_table, write_table
from kubecycle.components.evaluate.core import write_report as write_evaluation_report
from kubecycle.components.explain.core import explain_rows, write_report, write_summary_plot
from kubecycle.components.explore.core import build_eda_report
from kubecycle.components.features.core import plan_columns
from kubecycle.components.ingest.core import ingest
from kubecycle.components.split.core import split_frame
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.tune.core import search_family
from kubecycle.components.validate.core import clean
from kubecycle.config import KubecycleConfig, load_config, parse_config
from kubecycle.evaluation import evaluate_model
from kubecycle.examples import DEMO_CONFIG
from kubecycle.selection import selected_families

RATIO_TARGET, RATIO_ROWS, DEMO_TARGET_SECONDS = 1.25, 1_000_000, 60.0
TARGET = "label"
LEVELS = {"color": ["red", "green", "blue"], "size": ["S", "M", "L", "XL"],
          "region": ["north", "south", "east", "west", "central"], "channel": ["web", "store"]}
WARM_UP = ("sklearn.ensemble", "sklearn.linear_model", "sklearn.model_selection", "sklearn.metrics",
           "optuna", "shap", "evidently", "evidently.presets", "matplotlib", "kfp.local",
           "kubecycle.pipelines.run", "kubecycle.pipelines.training")


def make_data(rows: int, path: Path, seed: int = 0) -> Path:
    """rows x 20 features (16 numeric, 4 categorical, about 2% missing in 6) plus the label."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, 16))
    frame = pd.DataFrame(numeric, columns=[f"x{i:02d}" for i in range(16)])
    codes = {name: rng.integers(0, len(levels), rows) for name, levels in LEVELS.items()}
    for name, levels in LEVELS.items():
        frame[name] = np.asarray(levels, dtype=object)[codes[name]]
    logit = (numeric[:, :5] @ np.array([1.5, -1.2, 0.8, 0.6, -0.4]) + 0.5 * numeric[:, 5] ** 2
             + 0.7 * (codes["region"] == 1) - 0.5 * codes["size"] + rng.normal(0.0, 1.0, rows))
    for name in ("x00", "x03", "x07", "x11", "color", "region"):
        frame[name] = frame[name].mask(rng.random(rows) < 0.02)
    frame[TARGET] = np.where(logit > np.median(logit), "yes", "no")
    return write_table(frame, path)


def bench_config(source: Path, rows: int) -> KubecycleConfig:
    return parse_config({
        "data": {"source": str(source), "target": TARGET},
        "task": "classification",
        "tuning": {"strategy": "random", "trials": 2, "cv_folds": 3, "parallelism": 2,
                   "sample_rows": 20_000},
        "mlflow": {"experiment": "kubecycle-bench", "model_name": f"bench-{rows}-rows"},
    })


def run_plain(cfg: KubecycleConfig, work: Path) -> None:
    """Every stage in-process with the core functions; tables pass through Parquet files."""
    work.mkdir(parents=True, exist_ok=True)
    target, seed = cfg.data.target, cfg.split.seed
    assert isinstance(cfg.data.source, str)
    write_table(ingest(cfg.data.source).frame, work / "raw.parquet")
    cleaned = clean(read_table(work / "raw.parquet"), target, cfg.task, cfg.data.drop_columns)
    write_table(cleaned.frame, work / "clean.parquet")
    build_eda_report(read_table(work / "clean.parquet"), cleaned.contract, work / "eda.html")
    train, test = split_frame(read_table(work / "clean.parquet"), target, cleaned.task,
                              cfg.split.test_size, seed)
    write_table(train, work / "train.parquet")
    write_table(test, work / "test.parquet")
    plan = plan_columns(cleaned.contract, cfg.features)
    choices = cfg.family_choices(cleaned.task, cleaned.contract.rows)
    results = [search_family(cfg, plan, family, read_table(work / "train.parquet"))
               for family in selected_families(choices)]
    model = fit_final(plan, select_best(results, choices), read_table(work / "train.parquet"), seed)
    joblib.dump(model, work / "model.joblib")
    evaluation = evaluate_model(model, read_table(work / "test.parquet"), target, cleaned.task)
    write_evaluation_report(evaluation, "plain evaluation", work / "evaluation.html")
    explanation, values = explain_rows(model, read_table(work / "test.parquet"), target,
                                        cleaned.task, seed)
    write_summary_plot(values, work / "shap.png")
    write_report(explanation, work / "shap.png", work / "shap.html")


def run_kubecycle(cfg: KubecycleConfig, home: Path) -> None:
    """run_local in a fresh KUBECYCLE_HOME (and BentoML store: run_local only setdefaults it).
    kfp.local swaps builtins.print and the root log handlers per task, not thread-safely under
    ParallelFor, so the swaps can outlive the run; they are put back here."""
    from kubecycle.pipelines.run import run_local

    os.environ["KUBECYCLE_HOME"], os.environ["BENTOML_HOME"] = str(home), str(home / "bentoml")
    logger = logging.getLogger()
    saved = builtins.print, logger.handlers[:], logger.level
    try:
        run_local(cfg, output_dir=home / "output")
    finally:
        builtins.print, logger.handlers[:] = saved[0], saved[1]
        logger.setLevel(saved[2])


def timed(label: str, action: Callable[[], None]) -> float | None:
    """Seconds the action took, or None (error printed) if it failed."""
    print(f"  {label} ...", end=" ", flush=True)
    started = time.perf_counter()
    try:
        action()
    except Exception as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}")
        traceback.print_exc()
        return None
    seconds = time.perf_counter() - started
    print(f"{seconds:.1f} s", flush=True)
    return seconds


def machine() -> str:
    """Cores and load: other work on the machine skews the timings."""
    return f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, RATIO_ROWS])
    parser.add_argument("--quick", action="store_true", help="10,000 rows only")
    args = parser.parse_args()
    sizes: list[int] = [10_000] if args.quick else args.rows
    for module in WARM_UP:
        importlib.import_module(module)
    results: list[tuple[int, float | None, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="kubecycle-bench-") as scratch:
        root = Path(scratch)
        for rows in sizes:
            print(f"{rows:,} rows ({machine()})", flush=True)
            cfg = bench_config(make_data(rows, root / f"data-{rows}.parquet"), rows)
            plain = timed("plain script", partial(run_plain, cfg, root / f"plain-{rows}"))
            kube = timed("kubecycle", partial(run_kubecycle, cfg, root / f"home-{rows}"))
            results.append((rows, plain, kube))
        print(f"shipped demo ({machine()})", flush=True)
        demo = timed("kubecycle demo", partial(run_kubecycle, load_config(DEMO_CONFIG), root / "home-demo"))

    def fmt(value: float | None, spec: str = ".1f") -> str:
        return "failed" if value is None else format(value, spec)

    print(f"\n{'rows':>10} {'plain s':>9} {'kubecycle s':>12} {'ratio':>7}")
    ratios: dict[int, float | None] = {}
    for rows, plain, kube in results:
        ratios[rows] = kube / plain if plain and kube else None
        print(f"{rows:>10,} {fmt(plain):>9} {fmt(kube):>12} {fmt(ratios[rows], '.2f'):>7}")
    print("\ntargets")
    overhead, ok = "not run", None
    if RATIO_ROWS in ratios:
        ratio = ratios[RATIO_ROWS]
        overhead, ok = f"ratio {fmt(ratio, '.2f')}", ratio is not None and ratio <= RATIO_TARGET
    print(f"  orchestration overhead at 1M rows: ratio <= {RATIO_TARGET}  {overhead:>12}  {verdict(ok)}")
    demo_text = "failed" if demo is None else f"{demo:.1f} s"
    print(f"  demo end to end < {DEMO_TARGET_SECONDS:.0f} s{'':22}{demo_text:>12}  "
          f"{verdict(demo is not None and demo < DEMO_TARGET_SECONDS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
