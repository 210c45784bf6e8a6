"""The retraining policy: drift for N windows in a row, and not within the cooldown."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, why, and how many drifted windows in a row led to it."""

    retrain: bool
    reason: str
    consecutive: int

    def to_dict(self) -> dict:
        """The decision as a JSON-ready dict."""
        return asdict(self)


def decide_retrain(drifted: bool, previous_drifted: list[bool], last_retrain: datetime | None,
                   now: datetime, consecutive_windows: int, cooldown: timedelta,
                   enabled: bool, underperformance: str = "") -> RetrainDecision:
    """Decide whether this window triggers retraining.

    Args:
        drifted: this window's dataset-drift verdict.
        previous_drifted: earlier windows' verdicts, newest first.
        last_retrain: when monitoring last triggered a retraining (None: never).
        now: the current time, measured against the cooldown.
        consecutive_windows: drifted windows in a row needed before retraining.
        cooldown: how long after the last retraining no new one is triggered.
        enabled: whether retraining is on (monitoring.retrain or --retrain); when off, a
            retraining the policy calls for is reported but not triggered.
        underperformance: why realized performance is past its floor ("" when it is not):
            that calls for retraining at once, drift or not.
    """
    streak = 0
    for verdict in [drifted, *previous_drifted]:
        if not verdict:
            break
        streak += 1
    if underperformance:
        cause = underperformance
    elif not drifted:
        return RetrainDecision(False, "no dataset drift", 0)
    elif streak < consecutive_windows:
        return RetrainDecision(False, f"drift in {streak} window(s) in a row; the policy needs "
                               f"{consecutive_windows}", streak)
    else:
        cause = f"dataset drift in {streak} window(s) in a row"
    if last_retrain is not None and now - last_retrain < cooldown:
        when = last_retrain.strftime("%Y-%m-%d %H:%M")
        return RetrainDecision(False, f"in cooldown: last retraining at {when} UTC, "
                               f"cooldown {cooldown}", streak)
    if not enabled:
        return RetrainDecision(False, f"{cause} calls for retraining, but retraining is off "
                               "(monitoring.retrain or --retrain)", streak)
    return RetrainDecision(True, cause, streak)
