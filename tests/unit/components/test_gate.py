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


@pytest.mark.parametrize(("policy", "promote", "words"), [
    ("test", False, "test rmse 2.6300 does not beat the champion's 2.4600"),
    ("recent", True, "recent rmse 1.9000 beats the champion's 6.6400 (margin 0.0) on the 120 "
                     "newest labelled rows (test rmse 2.6300 does not beat"),
    ("both", False, "does not beat the champion's 2.4600 by more than 0.0; recent rmse 1.9000"),
])
def test_the_newest_labelled_rows_decide_by_the_policy(policy, promote, words):
    """The drifted champion: 2.7x its test RMSE on the new window, yet better on the mixed
    test split; policy `recent` replaces it, `test` keeps it, and both scores are recorded."""
    from kubecycle.components.register.gate import RecentScores, decide, decide_with_recent

    on_test = decide("rmse", 2.63, 2.46, False)
    decision = decide_with_recent(on_test, "rmse", RecentScores(120, 1.90, 6.64), False, policy)
    assert decision.promote is promote and words in decision.reason
    assert (decision.recent_rows, decision.recent_challenger_score,
            decision.recent_champion_score) == (120, 1.90, 6.64)
    assert (decision.challenger_score, decision.champion_score) == (2.63, 2.46)


def test_min_score_on_the_test_split_holds_under_every_policy():
    from kubecycle.components.register.gate import RecentScores, decide, decide_with_recent

    on_test = decide("accuracy", 0.6, 0.9, True, min_score=0.8)
    for policy in ("test", "recent", "both"):
        decision = decide_with_recent(on_test, "accuracy", RecentScores(50, 0.99, 0.5), True,
                                      policy, min_score=0.8)
        assert not decision.promote and "below the minimum" in decision.reason
