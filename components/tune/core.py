"""Cross-validated search of one model family with grid, random or Bayesian (TPE) sampling."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.catalog import FamilySpec, Task, get_family
from kubecycle.config import KubecycleConfig, ParamSpace
from kubecycle.errors import first_line
from kubecycle.modelling import FeaturePlan, TuneResult, make_model, scorer_for, split_xy, to_metric_units
from kubecycle.settings import TUNE_THREADS

GRID_POINTS_PER_AXIS = 3


def _spaces(spec: FamilySpec, cfg: KubecycleConfig) -> dict[str, ParamSpace]:
    override = cfg.models.search_spaces.get(spec.name)
    raw = override if override is not None else {
        k: ParamSpace(**v) for k, v in spec.space.items()}
    return dict(raw)


def _grid(spaces: dict[str, ParamSpace]) -> dict[str, list[Any]]:
    grid = {}
    for name, space in spaces.items():
        if space.type == "categorical":
            grid[name] = list(space.choices)
            continue
        lo, hi = space.low, space.high
        points = (np.geomspace(lo, hi, GRID_POINTS_PER_AXIS) if space.log
                  else np.linspace(lo, hi, GRID_POINTS_PER_AXIS))
        grid[name] = sorted({round(p) for p in points} if space.type == "int"
                            else {float(p) for p in points})
    return grid


def _suggest(trial, spaces: dict[str, ParamSpace]) -> dict[str, Any]:
    params = {}
    for name, space in spaces.items():
        if space.type == "categorical":
            params[name] = trial.suggest_categorical(name, space.choices)
        elif space.type == "int":
            params[name] = trial.suggest_int(name, int(space.low), int(space.high), log=space.log)
        else:
            params[name] = trial.suggest_float(name, space.low, space.high, log=space.log)
    return params


def _start(spec: FamilySpec, spaces: dict[str, ParamSpace]) -> dict[str, Any]:
    """The family's default parameters that lie in the (possibly user-set) spaces."""
    start = {}
    for name, value in spec.start.items():
        space = spaces.get(name)
        if space is None:
            continue
        inside = (value in space.choices if space.type == "categorical"
                  else space.low <= value <= space.high)
        if inside:
            start[name] = value
    return start


def _sampler(strategy: str, spaces: dict[str, ParamSpace], seed: int, trials: int):
    import optuna

    if strategy == "grid":
        return optuna.samplers.GridSampler(_grid(spaces), seed=seed)
    if strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(5, trials // 2)))


def _cv(task: Task, folds: int, y: pd.Series | None, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "classification":
        smallest = int(y.value_counts().min())
        return StratifiedKFold(n_splits=max(2, min(folds, smallest)), shuffle=True,
                               random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


TrialCallback = Callable[[int, dict[str, Any], float | None, str | None], None]


@dataclass
class _Search:
    """What every trial of one family's search shares, and what the trials left behind."""

    plan: FeaturePlan
    spec: FamilySpec
    spaces: dict[str, ParamSpace]
    x: pd.DataFrame
    y: pd.Series | None
    cv: Any
    metric: str
    seed: int
    errors: list[str] = field(default_factory=list)
    stds: dict[int, float] = field(default_factory=dict)  # per trial number


def _prepare(cfg: KubecycleConfig, plan: FeaturePlan, family: str, train: pd.DataFrame) -> _Search:
    """The family, its spaces, the (sampled) training rows and the folds."""
    seed = cfg.split.seed
    if cfg.tuning.sample_rows and len(train) > cfg.tuning.sample_rows:
        train = train.sample(cfg.tuning.sample_rows, random_state=seed)
    spec = get_family(plan.task, family)
    x, y = split_xy(train, plan.target)
    return _Search(plan, spec, _spaces(spec, cfg), x, y,
                   _cv(plan.task, cfg.tuning.cv_folds, y, seed), cfg.resolved_metric(plan.task),
                   seed)


def _objective(search: _Search, on_trial: TrialCallback | None) -> Callable[[Any], float]:
    """Optuna's objective: the mean CV score of a trial's parameters.

    A failing parameter combination prunes its trial, not the run.
    """
    import optuna
    from sklearn.model_selection import cross_val_score

    scorer = scorer_for(search.metric)

    def objective(trial) -> float:
        params = _suggest(trial, search.spaces)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = cross_val_score(make_model(search.plan, search.spec, params, search.seed),
                                         search.x, search.y, cv=search.cv, scoring=scorer,
                                         error_score="raise")
        except Exception as exc:
            message = f"{type(exc).__name__}: {first_line(exc)}"
            search.errors.append(message)
            if on_trial:
                on_trial(trial.number, params, None, message)
            raise optuna.TrialPruned(message) from None
        value = float(np.mean(scores))
        search.stds[trial.number] = float(np.std(scores))
        if on_trial:
            on_trial(trial.number, params, to_metric_units(search.metric, value), None)
        return value

    return objective


def _outcome(study: Any, search: _Search, family: str) -> TuneResult:
    """The best completed trial, or the error when every trial failed."""
    import optuna

    result = TuneResult(family=family, metric=search.metric, trials=len(study.trials),
                        failed_trials=len(search.errors))
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        first = search.errors[0] if search.errors else "none"
        result.error = f"all {len(study.trials)} trials failed; first error: {first}"
        return result
    best = max(completed, key=lambda t: t.value)
    result.best_params = {**best.params}
    result.score = float(best.value)
    result.cv_metric = to_metric_units(search.metric, best.value)
    result.cv_std = search.stds.get(best.number)
    return result


def search_family(
    cfg: KubecycleConfig,
    plan: FeaturePlan,
    family: str,
    train: pd.DataFrame,
    on_trial: TrialCallback | None = None,
) -> TuneResult:
    """Search one family's parameters by cross-validation.

    Args:
        cfg: The run's config (strategy, trials, folds, seed, metric).
        plan: The feature plan; the preprocessing is refit inside every fold.
        family: A family name valid for plan.task.
        train: The training rows (sampled to tuning.sample_rows).
        on_trial: Called after each trial with (number, params, score or None, error).

    Returns:
        The best parameters and score; error set when every trial failed.
    """
    import optuna
    from threadpoolctl import threadpool_limits

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = _prepare(cfg, plan, family, train)
    trials = cfg.tuning.trials
    if cfg.tuning.strategy == "grid":
        trials = min(trials, math.prod(len(v) for v in _grid(search.spaces).values()) or 1)
    study = optuna.create_study(direction="maximize",
                                sampler=_sampler(cfg.tuning.strategy, search.spaces, search.seed,
                                                 trials))
    start = _start(search.spec, search.spaces)
    if start and cfg.tuning.strategy != "grid":
        study.enqueue_trial(start)  # trial 0: the out-of-the-box model, the floor of the search
    threads = TUNE_THREADS.get()
    with threadpool_limits(threads) if threads else contextlib.nullcontext():
        study.optimize(_objective(search, on_trial), n_trials=trials,
                       timeout=cfg.tuning.timeout_seconds)
    return _outcome(study, search, family)
