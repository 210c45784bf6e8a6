"""summary.json's explanation: ranked by value, whatever order the artifact's JSON keeps."""

import json

from kubecycle.components.track.core import _explanation_summary


def test_top_columns_per_class_are_ranked_by_value_after_a_json_round_trip():
    importance = {"method": "tree", "by_class": {"a": {"zeta": 0.9, "alpha": 0.1, "mid": 0.5}},
                  "lime": {"agreement": 0.8, "disagreements": {"zeta": 2}}}
    stored = json.loads(json.dumps(importance, sort_keys=True))
    assert _explanation_summary(stored) == {
        "method": "tree", "top_by_class": {"a": ["zeta", "mid", "alpha"]},
        "lime_agreement": 0.8, "lime_disagreements": {"zeta": 2}}
    assert _explanation_summary({"method": "linear"})["lime_agreement"] is None
