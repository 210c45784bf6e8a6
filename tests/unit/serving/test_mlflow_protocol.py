"""MLflow's scoring protocol (`POST /invocations`) of a served bento, with the payloads
MLflow's own tooling builds."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import requests
from mlflow.models import convert_input_example_to_serving_input


def _invoke(served, body, content_type: str = "application/json") -> requests.Response:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return requests.post(f"{served['base']}/invocations", data=data, timeout=30,
                         headers={"content-type": content_type})


def _expected(served, rows: pd.DataFrame) -> list:
    objects = rows.astype(object)
    records = objects.where(objects.notna(), None).to_dict("records")
    return requests.post(f"{served['base']}/predict_batch", json={"records": records},
                         timeout=30).json()["predictions"]


@pytest.mark.parametrize("shape", ["frame", "records", "columns"])
def test_payloads_mlflow_builds_get_the_same_predictions(served, shape):
    rows = served["rows"]  # with missing values: MLflow writes them as NaN
    example = {"frame": rows, "records": rows.to_dict("records"),
               "columns": rows.to_dict("list")}[shape]
    answer = _invoke(served, convert_input_example_to_serving_input(example))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": _expected(served, rows)}
    assert answer.headers["x-request-id"]


def test_dataframe_records_instances_and_csv(served):
    rows = served["rows"].head(5)
    expected = {"predictions": _expected(served, rows)}
    records = json.loads(rows.to_json(orient="records"))
    assert _invoke(served, {"dataframe_records": records}).json() == expected
    assert _invoke(served, {"instances": records, "params": {}}).json() == expected
    assert _invoke(served, rows.to_csv(index=False), "text/csv").json() == expected


@pytest.mark.parametrize(("body", "status", "named"), [
    ({"dataframe_split": {"columns": ["island"], "data": [["Dream"]]}}, 400, "'bill_length_mm'"),
    ({"inputs": [{"island": "Atlantis"}]}, 400, "'island'"),
    ({"inputs": {"island": ["Dream"], "sex": []}}, 400, "lists of one length"),
    ({"instances": [1, 2]}, 400, "instances[0] is not an object"),
    ({"inputs": [], "instances": []}, 400, "exactly one of"),
    ("{broken", 400, "not JSON"),
])
def test_bad_requests_are_4xx_in_mlflow_form(served, body, status, named):
    answer = _invoke(served, body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error_code"] == "BAD_REQUEST" and named in answer.json()["message"]


def test_infinity_is_refused_and_other_media_types_are_415(served):
    record = json.loads(served["rows"].head(1).to_json(orient="records"))[0]
    text = json.dumps({"inputs": [{**record, "bill_length_mm": 1.5}]}).replace("1.5", "Infinity")
    answer = _invoke(served, text)
    assert answer.status_code == 400 and "finite" in answer.json()["message"]
    assert _invoke(served, b"x", "application/xml").status_code == 415


@pytest.mark.slow
def test_fuzzed_invocations_never_get_a_server_error(served):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    names = st.sampled_from([*served["rows"].columns, "colour"])
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                        st.text(max_size=8), st.sampled_from(["Dream", "Biscoe", "male"]))
    record = st.dictionaries(names, scalars, max_size=9)
    payload = st.one_of(
        st.fixed_dictionaries({"dataframe_split": st.one_of(scalars, st.fixed_dictionaries(
            {"columns": st.lists(names, max_size=8),
             "data": st.lists(st.one_of(scalars, st.lists(scalars, max_size=8)), max_size=3)}))}),
        st.fixed_dictionaries({"dataframe_records": st.one_of(scalars, st.lists(record, max_size=3))}),
        st.fixed_dictionaries({"instances": st.one_of(scalars, st.lists(st.one_of(record, scalars),
                                                                          max_size=3))}),
        st.fixed_dictionaries({"inputs": st.one_of(st.dictionaries(names, st.one_of(
            scalars, st.lists(scalars, max_size=3)), max_size=9), st.lists(record, max_size=3))}),
        st.dictionaries(st.text(max_size=6), scalars, max_size=2))
    statuses = []

    @given(body=payload)
    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(body) -> None:
        answer = _invoke(served, body)
        statuses.append(answer.status_code)
        assert answer.status_code < 500, (body, answer.text)

    fuzz()
    assert any(400 <= status < 500 for status in statuses)
