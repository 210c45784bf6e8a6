import pytest

from kubecycle.components.register.gate import decide


@pytest.mark.parametrize(
    ("challenger", "champion", "greater", "min_score", "margin", "promote", "words"),
    [
        (0.8, None, True, None, 0.0, True, "no champion yet"),
        (0.8, 0.7, True, None, 0.0, True, "beats the champion"),
        (0.8, 0.8, True, None, 0.0, False, "does not beat"),
        (0.8, 0.79, True, None, 0.05, False, "by more than 0.05"),
        (0.6, None, True, 0.7, 0.0, False, "below the minimum"),
        (2.0, 3.0, False, None, 0.0, True, "beats the champion"),  # rmse: lower wins
        (3.5, 3.0, False, None, 0.0, False, "does not beat"),
        (5.0, None, False, 4.0, 0.0, False, "above the minimum"),
        (float("nan"), 0.5, True, None, 0.0, False, "undefined"),
    ],
)
def test_decide(challenger, champion, greater, min_score, margin, promote, words):
    decision = decide("m", challenger, champion, greater, min_score, margin)
    assert decision.promote is promote
    assert decision.status == ("promoted" if promote else "rejected")
    assert words in decision.reason
