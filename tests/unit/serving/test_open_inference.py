"""The Open Inference Protocol (KServe V2) of a served bento, through the real tritonclient
HTTP client (binary tensors, its default) and plain JSON requests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import requests

MODEL = "penguins"  # the name penguins_bento registers


def _records(rows: pd.DataFrame) -> list[dict]:
    objects = rows.astype(object)
    return objects.where(objects.notna(), None).to_dict("records")


def _inputs(rows: pd.DataFrame, binary: bool):
    import tritonclient.http as http

    inputs = []
    for name in rows.columns:
        column = rows[name]
        if column.dtype.kind in "fi":
            data = column.to_numpy(dtype=np.float64)
            tensor = http.InferInput(name, [len(rows)], "FP64")
        else:
            data = np.array([str(v).encode() for v in column], dtype=np.object_)
            tensor = http.InferInput(name, [len(rows)], "BYTES")
        tensor.set_data_from_numpy(data, binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_health_metadata_and_infer_match_predict(served, binary):
    import tritonclient.http as http

    client = http.InferenceServerClient(served["url"])
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    metadata = client.get_model_metadata(MODEL)
    inputs = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert inputs["bill_length_mm"] == "FP64" and inputs["island"] == "BYTES"
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    assert [o["name"] for o in metadata["outputs"]] == [
        "prediction", *[f"probability_{c}" for c in classes]]
    rows = served["rows"].dropna()  # a tensor has no missing values (NaN is one: see below)
    outputs = None if binary else [http.InferRequestedOutput(o["name"], binary_data=False)
                                   for o in metadata["outputs"]]
    result = client.infer(MODEL, _inputs(rows, binary), outputs=outputs, request_id="order-9")
    body = requests.post(f"{served['base']}/predict_batch", json={"records": _records(rows)},
                         timeout=30).json()
    labels = [p.decode() if isinstance(p, bytes) else p for p in result.as_numpy("prediction")]
    assert labels == body["predictions"]  # BYTES: bytes from binary data, str from JSON
    for label in classes:
        served_proba = [p[label] for p in body["probabilities"]]
        np.testing.assert_allclose(result.as_numpy(f"probability_{label}"), served_proba,
                                   atol=1e-9)
    assert result.get_response()["id"] == "order-9"


def test_a_version_in_the_path_must_be_the_served_one(served):
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    client = http.InferenceServerClient(served["url"])
    assert client.is_model_ready(MODEL, model_version="1")
    with pytest.raises(InferenceServerException, match="is not served here"):
        client.get_model_metadata(MODEL, model_version="7")


def _infer(served, body: dict, model: str = MODEL) -> requests.Response:
    """POST the body as Python writes JSON: NaN and Infinity included."""
    return requests.post(f"{served['base']}/v2/models/{model}/infer", data=json.dumps(body),
                         headers={"content-type": "application/json"}, timeout=30)


def _body(rows: pd.DataFrame, **change) -> dict:
    inputs = []
    for name in rows.columns:
        values = [None if v is None or v != v else v for v in rows[name].tolist()]
        datatype = "FP64" if rows[name].dtype.kind in "fi" else "BYTES"
        inputs.append({"name": name, "shape": [len(values)], "datatype": datatype,
                       "data": change.get(name, values)})
    return {"inputs": inputs}


def test_json_nulls_and_nan_are_missing_values(served):
    rows = served["rows"].head(3)
    answer = _infer(served, _body(rows, bill_length_mm=[None, 40.0, float("nan")]))
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] and len(answer.json()["outputs"]) == 4


@pytest.mark.parametrize(("change", "named"), [
    ({"bill_length_mm": [float("inf"), 1.0, 2.0]}, "'bill_length_mm': Input should be a finite"),
    ({"island": ["Atlantis", "Dream", "Dream"]}, "record 0, input 'island'"),
    ({"island": ["Dream"]}, "inputs differ in length"),
])
def test_bad_records_are_4xx_naming_the_input(served, change, named):
    answer = _infer(served, _body(served["rows"].head(3), **change))
    assert answer.status_code == 400 and named in answer.json()["error"], answer.text


def test_bad_requests_are_4xx(served):
    rows = served["rows"].head(2)
    missing = _body(rows.drop(columns="island"))
    assert "'island'" in _infer(served, missing).json()["error"]
    extra = _body(rows.assign(colour=["red", "blue"]))
    assert "'colour'" in _infer(served, extra).json()["error"]
    assert _infer(served, _body(rows), model="other").status_code == 404
    assert _infer(served, {"inputs": []}).status_code == 400
    wrong_output = {**_body(rows), "outputs": [{"name": "nonsense"}]}
    assert "unknown outputs ['nonsense']" in _infer(served, wrong_output).json()["error"]
    garbage = requests.post(f"{served['base']}/v2/models/{MODEL}/infer", data=b"{not json",
                            timeout=30)
    assert garbage.status_code == 400 and "not JSON" in garbage.json()["error"]
    cut = requests.post(f"{served['base']}/v2/models/{MODEL}/infer", data=b'{"inputs": []}',
                        headers={"Inference-Header-Content-Length": "999"}, timeout=30)
    assert cut.status_code == 400 and "does not fit" in cut.json()["error"]


@pytest.mark.slow
def test_fuzzed_v2_requests_never_get_a_server_error(served):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    names = st.sampled_from([*served["rows"].columns, "colour", ""])
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                        st.text(max_size=8), st.sampled_from(["Dream", "Biscoe", "male"]))
    tensor = st.fixed_dictionaries(
        {"name": names, "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL",
                                                     "COMPLEX"]),
         "shape": st.lists(st.integers(-1, 4), max_size=2),
         "data": st.one_of(scalars, st.lists(st.one_of(scalars, st.lists(scalars, max_size=2)),
                                             max_size=4))},
        optional={"parameters": st.one_of(scalars, st.fixed_dictionaries(
            {"binary_data_size": st.one_of(st.integers(-2, 40), st.text(max_size=3))}))})
    body = st.fixed_dictionaries({"inputs": st.one_of(st.lists(tensor, max_size=8), scalars)},
                                 optional={"outputs": st.one_of(scalars, st.lists(st.one_of(
                                     scalars, st.fixed_dictionaries(
                                         {"name": st.one_of(names, st.integers())},
                                         optional={"parameters": scalars})), max_size=2)),
                                     "id": scalars, "parameters": st.one_of(scalars, st.dictionaries(
                                         st.text(max_size=5), scalars, max_size=2))})
    tail = st.binary(max_size=24)
    statuses = []

    @given(body=body, tail=tail, header=st.booleans())
    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(body, tail, header) -> None:
        text = json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if header:
            headers["Inference-Header-Content-Length"] = str(len(text))
        answer = requests.post(f"{served['base']}/v2/models/{MODEL}/infer",
                               data=text + (tail if header else b""), headers=headers, timeout=30)
        statuses.append(answer.status_code)
        assert answer.status_code < 500, (body, answer.text)

    fuzz()
    assert any(400 <= status < 500 for status in statuses)
