"""The promotion gate: a pure decision, so it is easy to test and to explain."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger is promoted, why, and the two scores compared."""

    promote: bool
    reason: str
    challenger_score: float
    champion_score: float | None
    # on the newest labelled rows, held out of training (retraining only)
    recent_rows: int = 0
    recent_challenger_score: float | None = None
    recent_champion_score: float | None = None

    @property
    def status(self) -> str:
        """The decision as a word: "promoted" or "rejected"."""
        return "promoted" if self.promote else "rejected"

    def to_dict(self) -> dict:
        """The decision as a JSON-ready dict, with its status."""
        return {**asdict(self), "status": self.status}


def decide(
    metric: str,
    challenger: float,
    champion: float | None,
    greater_is_better: bool,
    min_score: float | None = None,
    min_improvement: float = 0.0,
) -> GateDecision:
    """Decide whether to promote the challenger over the champion.

    Promote when the challenger reaches min_score and beats the champion by more than
    min_improvement on the same test metric (any finite score beats no champion).
    """
    better = (lambda a, b: a > b) if greater_is_better else (lambda a, b: a < b)
    if challenger != challenger:  # NaN
        return GateDecision(False, f"test {metric} is undefined (NaN)", challenger, champion)
    if min_score is not None and better(min_score, challenger):
        word = "below" if greater_is_better else "above"
        return GateDecision(False, f"test {metric} {challenger:.4f} is {word} the minimum "
                            f"{min_score:.4f}", challenger, champion)
    if champion is None:
        return GateDecision(True, f"no champion yet; test {metric} {challenger:.4f}",
                            challenger, champion)
    bar = champion + min_improvement if greater_is_better else champion - min_improvement
    if better(challenger, bar):
        return GateDecision(True, f"test {metric} {challenger:.4f} beats the champion's "
                            f"{champion:.4f} (margin {min_improvement})", challenger, champion)
    return GateDecision(False, f"test {metric} {challenger:.4f} does not beat the champion's "
                        f"{champion:.4f} by more than {min_improvement}", challenger, champion)


@dataclass(frozen=True)
class RecentScores:
    """Challenger and champion on the newest labelled rows, held out of training."""

    rows: int
    challenger: float
    champion: float | None


def decide_with_recent(test: GateDecision, metric: str, recent: RecentScores | None,
                       greater_is_better: bool, policy: str, min_score: float | None = None,
                       min_improvement: float = 0.0) -> GateDecision:
    """The gate's decision once the newest labelled rows are scored too.

    Policies: `test` keeps the test split's decision (the recent scores are recorded);
    `recent` lets the recent rows decide whether the challenger beats the champion (the test
    split still enforces min_score); `both` needs the challenger to win on both. Without recent
    rows (or with too few) the test split decides.
    """
    if recent is None:
        return test
    recorded = {"recent_rows": recent.rows, "recent_challenger_score": recent.challenger,
                "recent_champion_score": recent.champion}
    on_recent = decide(metric, recent.challenger, recent.champion, greater_is_better,
                       None, min_improvement)
    where = f" on the {recent.rows} newest labelled rows"
    # a test score below min_score (or undefined) rejects under every policy
    acceptable = decide(metric, test.challenger_score, None, greater_is_better, min_score)
    if policy == "test" or not acceptable.promote:
        return _with(test, test.promote, test.reason, recorded)
    if policy == "recent":
        reason = f"{on_recent.reason.replace('test ', 'recent ', 1)}{where} ({test.reason})"
        return _with(test, on_recent.promote, reason, recorded)
    promote = test.promote and on_recent.promote
    reason = f"{test.reason}; {on_recent.reason.replace('test ', 'recent ', 1)}{where}"
    return _with(test, promote, reason, recorded)


def _with(test: GateDecision, promote: bool, reason: str, recorded: dict) -> GateDecision:
    return GateDecision(promote, reason, test.challenger_score, test.champion_score, **recorded)
