"""Shapley contributions: exact on a linear model (known answer), additive on any model, and
served on /explain by a bento."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import requests

from kubecycle.serving.explain import shapley


def test_a_linear_model_gets_exactly_its_coefficient_times_the_difference():
    """For f(x) = w.x + b the interventional Shapley value of column j is w_j (x_j - mean b_j),
    whatever orders are sampled."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("abcd"))
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(
        frame, frame @ [3.0, -2.0, 0.5, 0.0] + 1.0)
    background = frame.sample(20, random_state=1).to_dict("records")
    record = {"a": 1.0, "b": 2.0, "c": -1.0, "d": 5.0}
    result = shapley(lambda rows: model.predict(pd.DataFrame(rows, columns=list("abcd"))),
                     record, background, list("abcd"), permutations=2)
    means = pd.DataFrame(background).mean()
    expected = {c: w * (record[c] - means[c]) for c, w in zip("abcd", [3.0, -2.0, 0.5, 0.0],
                                                               strict=True)}
    for column, value in expected.items():
        assert result.contributions[column] == pytest.approx(value, abs=1e-9)
    assert result.base_value + sum(result.contributions.values()) == pytest.approx(
        result.output, abs=1e-9)


def test_contributions_add_up_on_a_nonlinear_model(penguins):
    from sklearn.ensemble import RandomForestClassifier

    frame = penguins.dropna()
    columns = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(frame[columns],
                                                                       frame["species"])
    record = frame[columns].iloc[0].to_dict()
    result = shapley(lambda rows: model.predict_proba(pd.DataFrame(rows))[:, 0], record,
                     frame[columns].head(15).to_dict("records"), columns)
    assert result.base_value + sum(result.contributions.values()) == pytest.approx(
        result.output, abs=1e-6)
    assert result == shapley(lambda rows: model.predict_proba(pd.DataFrame(rows))[:, 0], record,
                             frame[columns].head(15).to_dict("records"), columns)  # seeded


def test_explain_endpoint_adds_up_to_the_served_probability(served):
    row = served["rows"].iloc[3].astype(object)
    record = {k: None if v != v else (v.item() if hasattr(v, "item") else v)
              for k, v in row.items()}
    answer = requests.post(f"{served['base']}/explain", json={"record": record}, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    predicted = requests.post(f"{served['base']}/predict", json={"record": record},
                              timeout=30).json()
    assert body["prediction"] == predicted["prediction"]
    assert body["output"] == pytest.approx(predicted["probabilities"][predicted["prediction"]],
                                           abs=1e-6)
    assert body["base_value"] + sum(body["contributions"].values()) == pytest.approx(
        body["output"], abs=1e-6)
    assert set(body["contributions"]) == set(served["rows"].columns)
    bad = requests.post(f"{served['base']}/explain",
                        json={"record": {**record, "island": "Atlantis"}}, timeout=30)
    assert 400 <= bad.status_code < 500 and "island" in bad.text


def test_the_v2_form_explains_every_record(served):
    rows = served["rows"].dropna().head(3)
    inputs = [{"name": c, "shape": [3], "datatype": "FP64" if rows[c].dtype.kind in "fi" else "BYTES",
               "data": rows[c].tolist()} for c in rows.columns]
    answer = requests.post(f"{served['base']}/v2/models/penguins/explain",
                           json={"inputs": inputs, "id": "why-1"}, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert body["id"] == "why-1" and len(outputs["output"]) == 3
    contributions = np.array([outputs[f"contribution_{c}"] for c in rows.columns])
    np.testing.assert_allclose(np.array(outputs["base_value"]) + contributions.sum(axis=0),
                               outputs["output"], atol=1e-6)
