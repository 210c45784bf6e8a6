"""Choose the best tuned family and fit the final model Pipeline."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from kubecycle.catalog import get_family
from kubecycle.errors import TrainingError
from kubecycle.modelling import FeaturePlan, TuneResult, make_model, split_xy
from kubecycle.selection import FamilyChoice


@dataclass(frozen=True)
class Selection:
    """The model family chosen from the tuning results, its parameters and CV score."""

    family: str
    params: dict[str, Any]
    metric: str
    cv_metric: float
    cv_std: float | None
    ranking: list[dict[str, Any]]  # every family with its CV metric or error, best first

    def to_dict(self) -> dict[str, Any]:
        """The selection as a JSON-ready dict."""
        return asdict(self)


def select_best(results: list[TuneResult], choices: list[FamilyChoice] | None = None) -> Selection:
    """The family with the highest CV score (ties: first in the list).

    Args:
        results: Each tuned family's outcome.
        choices: Every candidate family with the reason it was tuned or skipped; the ranking
            carries the reasons and lists the skipped families last.

    Returns:
        The best family, its parameters and the ranking of every candidate.

    Raises:
        TrainingError: no family could be scored; the message names each one's error.
    """
    scored = [r for r in results if r.score is not None]
    if not scored:
        reasons = "; ".join(f"{r.family}: {r.error}" for r in results) or "no candidates"
        raise TrainingError(f"no model family could be trained ({reasons}); "
                            "check models.families and the search spaces")
    ranked = sorted(scored, key=lambda r: r.score, reverse=True)
    best = ranked[0]
    reasons = {choice.family: choice.reason for choice in choices or []}

    def entry(family: str, **fields: Any) -> dict[str, Any]:
        return {"family": family, **fields, **({"reason": reasons[family]} if family in reasons else {})}

    ranking = [entry(r.family, cv_metric=r.cv_metric, params=r.best_params) for r in ranked]
    ranking += [entry(r.family, error=r.error) for r in results if r.score is None]
    ranking += [entry(c.family, skipped=True) for c in choices or [] if not c.selected]
    return Selection(best.family, best.best_params, best.metric, best.cv_metric, best.cv_std,
                     ranking)


def fit_final(plan: FeaturePlan, selection: Selection, train: pd.DataFrame, seed: int):
    """Refit the chosen family on every training row; returns the fitted Pipeline."""
    x, y = split_xy(train, plan.target)
    model = make_model(plan, get_family(plan.task, selection.family), selection.params, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.fit(x, y)
        except Exception as exc:
            raise TrainingError(
                f"refitting {selection.family} on the training set failed: {exc}") from None
    return model
