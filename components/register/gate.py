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
