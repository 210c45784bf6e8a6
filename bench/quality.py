"""Benchmark: the held-out quality of kubecycle's model against FLAML and a default LightGBM.

    python bench/quality.py [--splits 3] [--quick] [--data NAME ...]

Data sets that ship with installed packages (scikit-learn's, the penguins of examples/,
statsmodels' and plotly's), classification and regression. Per data set and split seed, the
same train/test rows go to
  (a) kubecycle: its cleaning, feature plan, default family search (tuning in parallel like the
      pipeline's ParallelFor, two workers) and refit, timed;
  (b) FLAML's AutoML with that wall-clock time as its budget, two jobs, the same metric;
  (c) LightGBM with its default parameters, categorical columns as pandas categories.
Scores are the test metric kubecycle optimizes by default (macro F1; RMSE, with R2 shown).
Prints per data set the mean over splits and PASS/MISS against the targets: never below the
default LightGBM (within the split-to-split noise), at least FLAML's score on most data sets.
Always exits 0 (a report, not a test).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import io
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kubecycle.components.features.core import plan_columns
from kubecycle.components.split.core import split_frame
from kubecycle.components.train.core import fit_final, select_best
from kubecycle.components.tune.core import search_family
from kubecycle.components.validate.core import clean
from kubecycle.config import parse_config
from kubecycle.evaluation import evaluate_model
from kubecycle.selection import selected_families

TARGET = "target"
TEST_SIZE = 0.2
WORKERS = 2  # the pipeline's default tuning.parallelism, and FLAML's n_jobs


@dataclass(frozen=True)
class DataSet:
    """A named table with a target column and its task."""

    name: str
    task: str
    load: Callable[[], pd.DataFrame]  # features and TARGET; rows without a target removed


def _sklearn(loader: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
        return frame.rename(columns={"target": TARGET})
    return load


def _penguins(target: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        with importlib.resources.as_file(
                importlib.resources.files("kubecycle.examples") / "penguins.csv") as path:
            frame = pd.read_csv(path)
        return frame.drop(columns=list(drop)).rename(columns={target: TARGET})
    return load


def _statsmodels(name: str, target: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import statsmodels.api as sm

        frame = getattr(sm.datasets, name).load_pandas().data
        return frame.drop(columns=list(drop)).rename(columns={target: TARGET})
    return load


def _tips() -> pd.DataFrame:
    import plotly.data

    return plotly.data.tips().rename(columns={"tip": TARGET})


DATA_SETS = [
    DataSet("breast_cancer", "classification", _sklearn("load_breast_cancer")),
    DataSet("wine", "classification", _sklearn("load_wine")),
    DataSet("penguins species", "classification", _penguins("species")),
    DataSet("anes96 vote", "classification", _statsmodels("anes96", "vote", ("logpopul",))),
    DataSet("diabetes", "regression", _sklearn("load_diabetes")),
    DataSet("penguins body mass", "regression", _penguins("body_mass_g")),
    DataSet("tips", "regression", _tips),
    DataSet("fair affairs", "regression", _statsmodels("fair", "affairs")),
]
QUICK = ("wine", "diabetes")


@dataclass
class Scores:
    """Test scores of the three contenders over the splits of one data set."""

    metric: str
    greater_is_better: bool
    kubecycle: list[float] = field(default_factory=list)
    flaml: list[float] = field(default_factory=list)
    lightgbm: list[float] = field(default_factory=list)
    r2: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    families: list[str] = field(default_factory=list)


def _test_metrics(task: str, y_true: pd.Series, predicted: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as m

    if task == "classification":
        return {"f1": float(m.f1_score(y_true, predicted, average="macro", zero_division=0))}
    return {"rmse": float(np.sqrt(m.mean_squared_error(y_true, predicted))),
            "r2": float(m.r2_score(y_true, predicted))}


def run_kubecycle(train: pd.DataFrame, test: pd.DataFrame, task: str, seed: int
                  ) -> tuple[dict[str, float], str]:
    """kubecycle's default search on the training rows; its test metrics and chosen family."""
    from joblib import Parallel, delayed

    cfg = parse_config({"data": {"source": "bench", "target": TARGET}, "task": task,
                        "split": {"seed": seed}, "tuning": {"parallelism": WORKERS}})
    cleaned = clean(train, TARGET, cfg.task)
    plan = plan_columns(cleaned.contract, cfg.features)
    choices = cfg.family_choices(cleaned.task, cleaned.contract.rows)
    results = Parallel(n_jobs=WORKERS)(
        delayed(search_family)(cfg, plan, family, cleaned.frame)
        for family in selected_families(choices))
    selection = select_best(results, choices)
    model = fit_final(plan, selection, cleaned.frame, seed)
    metrics = evaluate_model(model, test, TARGET, cleaned.task).metrics
    return {k: v for k, v in metrics.items() if k in ("f1", "rmse", "r2")}, selection.family


def _categories(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].dtype == object or isinstance(frame[name].dtype, pd.StringDtype):
            frame[name] = frame[name].astype("category")
    return frame


def run_flaml(train: pd.DataFrame, test: pd.DataFrame, task: str, seed: int,
              budget: float) -> dict[str, float]:
    """FLAML's AutoML with the given time budget and kubecycle's metric."""
    from flaml import AutoML

    automl = AutoML()
    x, y = _categories(train.drop(columns=[TARGET])), train[TARGET]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        automl.fit(x, y, task=task, metric="macro_f1" if task == "classification" else "rmse",
                   time_budget=budget, n_jobs=WORKERS, seed=seed, verbose=0)
    return _test_metrics(task, test[TARGET], automl.predict(_categories(test.drop(columns=[TARGET]))))


def run_lightgbm(train: pd.DataFrame, test: pd.DataFrame, task: str, seed: int) -> dict[str, float]:
    """LightGBM's defaults; object columns as categories (LightGBM's own categorical split)."""
    import lightgbm

    kind = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
    model = kind(random_state=seed, verbose=-1, n_jobs=WORKERS)
    x_train = _categories(train.drop(columns=[TARGET]))
    model.fit(x_train, train[TARGET])
    x_test = _categories(test.drop(columns=[TARGET]))
    for name in x_test.select_dtypes("category"):
        x_test[name] = x_test[name].cat.set_categories(x_train[name].cat.categories)
    return _test_metrics(task, test[TARGET], model.predict(x_test))


def bench_data_set(data: DataSet, seeds: list[int]) -> Scores:
    """Every contender on every split of one data set."""
    frame = data.load().dropna(subset=[TARGET]).reset_index(drop=True)
    metric = "f1" if data.task == "classification" else "rmse"
    scores = Scores(metric, data.task == "classification")
    for seed in seeds:
        train, test = split_frame(frame, TARGET, data.task, TEST_SIZE, seed)  # type: ignore[arg-type]
        started = time.perf_counter()
        kube, family = run_kubecycle(train, test, data.task, seed)
        seconds = time.perf_counter() - started
        flaml = run_flaml(train, test, data.task, seed, seconds)
        lgbm = run_lightgbm(train, test, data.task, seed)
        scores.kubecycle.append(kube[metric])
        scores.flaml.append(flaml[metric])
        scores.lightgbm.append(lgbm[metric])
        if data.task == "regression":
            for who, result in (("kubecycle", kube), ("flaml", flaml), ("lightgbm", lgbm)):
                scores.r2.setdefault(who, []).append(result["r2"])
        scores.seconds.append(seconds)
        scores.families.append(family)
        print(f"    seed {seed}: kubecycle {kube[metric]:.4f} ({family}, {seconds:.0f} s)  "
              f"flaml {flaml[metric]:.4f}  lightgbm {lgbm[metric]:.4f}", flush=True)
    return scores


def _relative(mine: float, theirs: float, greater_is_better: bool) -> float:
    """How much better mine is, as a share of theirs (negative: worse)."""
    gain = (mine - theirs) if greater_is_better else (theirs - mine)
    return gain / abs(theirs) if theirs else 0.0


def _noise(scores: Scores) -> float:
    """The split-to-split spread of the default LightGBM's score, as a share of its mean."""
    if len(scores.lightgbm) < 2:
        return 0.0
    return statistics.stdev(scores.lightgbm) / abs(statistics.fmean(scores.lightgbm)) / (
        len(scores.lightgbm) ** 0.5)


def report(results: dict[str, Scores]) -> None:
    """The table of mean scores and the verdicts against the targets."""
    print(f"\n{'data set':<20} {'metric':>6} {'kubecycle':>10} {'flaml':>8} {'lightgbm':>9} "
          f"{'vs lgbm':>8} {'vs flaml':>9} {'budget s':>9}  chosen")
    beats_flaml, below_lgbm = 0, []
    for name, s in results.items():
        kube, flaml, lgbm = (statistics.fmean(v) for v in (s.kubecycle, s.flaml, s.lightgbm))
        vs_lgbm = _relative(kube, lgbm, s.greater_is_better)
        vs_flaml = _relative(kube, flaml, s.greater_is_better)
        beats_flaml += vs_flaml >= -0.005
        if vs_lgbm < -max(0.005, 2 * _noise(s)):
            below_lgbm.append(name)
        print(f"{name:<20} {s.metric:>6} {kube:>10.4f} {flaml:>8.4f} {lgbm:>9.4f} "
              f"{vs_lgbm:>+8.1%} {vs_flaml:>+9.1%} {statistics.fmean(s.seconds):>9.0f}  "
              f"{','.join(sorted(set(s.families)))}")
        if s.r2:
            r2 = "  ".join(f"{who} {statistics.fmean(v):.4f}" for who, v in s.r2.items())
            print(f"{'':<20} {'r2':>6}  {r2}")
    print("\ntargets")
    print(f"  never below the default LightGBM: below on {below_lgbm or 'none'}  "
          f"{'PASS' if not below_lgbm else 'MISS'}")
    print(f"  at least FLAML's score at equal budget on most data sets: {beats_flaml} of "
          f"{len(results)}  {'PASS' if beats_flaml * 2 > len(results) else 'MISS'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=3, help="split seeds per data set")
    parser.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK)}; one split")
    parser.add_argument("--data", nargs="+", choices=[d.name for d in DATA_SETS])
    args = parser.parse_args()
    names = args.data or (QUICK if args.quick else [d.name for d in DATA_SETS])
    seeds = list(range(1 if args.quick else args.splits))
    logging.getLogger("flaml").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {len(seeds)} split(s)")
    results = {}
    for data in DATA_SETS:
        if data.name in names:
            print(f"  {data.name} ({data.task})", flush=True)
            results[data.name] = bench_data_set(data, seeds)
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
