"""`POST /feedback` of a served bento: labels accepted in every form, bad ones refused, and
every accepted label in the label store once the server is stopped with SIGTERM."""

from __future__ import annotations

import requests

from kubecycle.monitoring.labels import read_labels


def _send(served, body) -> requests.Response:
    return requests.post(f"{served['base']}/feedback", json=body, timeout=30)


def test_bad_feedback_is_refused_naming_the_item(served):
    cases = [({"label": "Adelie"}, "item 0 names no prediction"),
             ({"request_id": "x"}, "item 0 needs a 'label'"),
             ([{"request_id": "a", "label": 1.5}, {"request_id": "b", "label": None}],
              "item 1.label must be"),
             ({"request_id": "has spaces", "label": "Adelie"}, "is not a request id"),
             ({"request_id": "a", "label": {"nested": 1}}, "item 0.label must be"),
             ([], "no labels")]
    for body, message in cases:
        answer = _send(served, body)
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    broken = requests.post(f"{served['base']}/feedback", data=b"{x", timeout=30)
    assert broken.status_code == 400 and "not JSON" in broken.json()["error"]


def test_labels_are_kept_when_the_server_stops(served, module_servers):
    # last in the module: it stops the module's server
    row = served["rows"].iloc[0].astype(object)
    record = {k: None if v != v else (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    predicted = requests.post(f"{served['base']}/predict", json={"record": record}, timeout=30)
    request_id = predicted.json()["request_id"]
    one = _send(served, {"request_id": request_id, "label": "Adelie"})
    assert one.status_code == 200 and one.json()["accepted"] == 1, one.text
    many = _send(served, [{"request_id": "order-17:0", "label": "Gentoo"},
                          {"request_id": "order-17:1", "label": "Dream"},
                          {"customer_id": 42, "label": "Chinstrap"}])
    assert many.json()["accepted"] == 3
    again = _send(served, {"request_id": "order-17:1", "label": "Chinstrap"})  # corrected
    assert again.status_code == 200

    module_servers.stop(served["server"])  # SIGTERM: the buffered labels are written
    labels = read_labels(served["log"] + "/_labels")
    by_id = dict(zip(labels["request_id"].fillna(labels["customer_id"]), labels["label"],
                     strict=True))
    assert by_id == {request_id: "Adelie", "order-17:0": "Gentoo", "order-17:1": "Chinstrap",
                     "42": "Chinstrap"}
