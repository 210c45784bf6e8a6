"""The Open Inference Protocol (KServe V2) over REST, on the same service and model.

Health, server and model metadata, readiness and `infer` for the one model version the bento
serves, with the pandas codec convention of MLServer: one named input per column (shape [n] or
[n, 1]), numeric columns as FP64 (any int or float type is taken), booleans as BOOL, text,
categories and dates as BYTES. Outputs: `prediction` and, for a classifier, one FP64
`probability_<class>` per class. Tensors come and go as JSON `data` or with the binary tensor
data extension (`Inference-Header-Content-Length`), which tritonclient uses by default. A JSON
null, or NaN in a numeric tensor, is a missing value (the model imputes it); an infinite number
is refused. Every error is a 4xx `{"error": ...}` naming the input. Copied into every bento.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np
from pydantic_core import from_json, to_json
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PREFIX = "/v2"  # routes of an app mounted at the root: a mount at /v2 would redirect GET /v2
HEADER_LENGTH = "inference-header-content-length"
NUMERIC = {"FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "INT8": "<i1", "INT16": "<i2",
           "INT32": "<i4", "INT64": "<i8", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4",
           "UINT64": "<u8"}
# Scores validated rows (raw column name -> value) under request ids; returns predictions and
# per-row class probabilities (None for regression and clustering). Raises V2Error on bad rows.
Scorer = Callable[[list[dict[str, Any]], list[str]], Awaitable[tuple[list[Any], Any]]]


class V2Error(Exception):
    """A request the protocol refuses: answered with `status` and {"error": message}."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _parameters(owner: dict[str, Any], what: str) -> dict[str, Any]:
    parameters = owner.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise V2Error(f"{what}: 'parameters' must be an object")
    return parameters


def _datatype(spec: dict[str, Any]) -> str:
    return {"numeric": "FP64", "boolean": "BOOL"}.get(spec["kind"], "BYTES")


def _output_datatype(classes: list[Any]) -> str:
    if not classes:
        return "FP64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    return "INT64" if all(isinstance(c, int) for c in classes) else "BYTES"


def model_metadata(info: dict[str, Any]) -> dict[str, Any]:
    """The model's metadata: every input column with its datatype, and the outputs."""
    classes = info["classes"]
    outputs = [{"name": "prediction", "datatype": _output_datatype(classes), "shape": [-1]}]
    outputs += [{"name": f"probability_{c}", "datatype": "FP64", "shape": [-1]} for c in classes]
    return {"name": info["model_name"], "versions": [info["model_version"]],
            "platform": "kubecycle-" + ("onnx" if info["onnx"]["file"] else "sklearn"),
            "inputs": [{"name": name, "datatype": _datatype(spec), "shape": [-1, 1]}
                       for name, spec in info["fields"].items()],
            "outputs": outputs}


def _split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON part of a request and the binary tensor data after it."""
    size = len(body)
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError:
            raise V2Error(f"{HEADER_LENGTH} {header_length!r} is not a number") from None
        if not 0 < size <= len(body):
            raise V2Error(f"{HEADER_LENGTH} {size} does not fit the body of {len(body)} bytes")
    try:
        document = from_json(body[:size])  # pydantic-core's parser: NaN and Infinity too
    except (UnicodeDecodeError, ValueError) as exc:
        raise V2Error(f"the request is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list) \
            or not document["inputs"]:
        raise V2Error("the request needs a non-empty 'inputs' list")
    return document, body[size:]


def _bytes_elements(raw: bytes, name: str) -> list[str]:
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise V2Error(f"input {name!r}: BYTES data ends inside a length prefix")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise V2Error(f"input {name!r}: BYTES element longer than the data")
        values.append(raw[offset:offset + length].decode("utf-8", errors="replace"))
        offset += length
    return values


def _binary_values(tensor: dict[str, Any], raw: bytes) -> list[Any]:
    name, datatype = tensor["name"], tensor.get("datatype")
    if datatype == "BYTES":
        return _bytes_elements(raw, name)
    if datatype == "BOOL":
        return [bool(b) for b in raw]
    if datatype not in NUMERIC:
        raise V2Error(f"input {name!r}: datatype {datatype!r} is not supported")
    width = np.dtype(NUMERIC[datatype]).itemsize
    if len(raw) % width:
        raise V2Error(f"input {name!r}: {len(raw)} bytes are not whole {datatype} elements")
    return np.frombuffer(raw, dtype=NUMERIC[datatype]).tolist()


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    for element in data:  # a loop, not any(): no generator on the request path
        if isinstance(element, list):
            return [item for element in data for item in _flat(element)]
    return data


def _missing_as_none(values: list[Any]) -> list[Any]:
    """A numeric tensor's values with NaN as None (missing)."""
    for value in values:
        if value != value:
            return [None if isinstance(v, float) and v != v else v for v in values]
    return values


def _rows_of(document: dict[str, Any], binary: bytes) -> list[dict[str, Any]]:
    """The request's rows: one dict per record, keyed by input (column) name."""
    columns: dict[str, list[Any]] = {}
    offset = 0
    for tensor in document["inputs"]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise V2Error("every input needs a 'name'")
        name = tensor["name"]
        size = (_parameters(tensor, f"input {name!r}").get("binary_data_size")
                if "parameters" in tensor else None)
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise V2Error(f"input {name!r}: binary_data_size {size!r} does not fit the body")
            values = _binary_values(tensor, binary[offset:offset + size])
            offset += size
        elif "data" in tensor:
            values = _flat(tensor["data"])
        else:
            raise V2Error(f"input {name!r} has neither 'data' nor binary data")
        columns[name] = _missing_as_none(values) if tensor.get("datatype") in NUMERIC else values
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise V2Error(f"inputs differ in length: {lengths}; send one element per record each")
    count = next(iter(lengths.values()))
    if count == 0:
        raise V2Error("the inputs hold no records")
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def _tensor(name: str, values: list[Any], datatype: str, binary: bool) -> tuple[dict, bytes]:
    tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [len(values)]}
    if not binary:
        tensor["data"] = values
        return tensor, b""
    if datatype == "BYTES":
        raw = b"".join(struct.pack("<I", len(e)) + e for e in (str(v).encode() for v in values))
    elif datatype == "BOOL":
        raw = bytes(bool(v) for v in values)
    else:
        raw = np.asarray(values, dtype=NUMERIC[datatype]).tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw


def _answer(document: dict[str, Any], info: dict[str, Any], prediction_type: str,
            request_id: str, predictions: list[Any], probabilities: Any) -> Response:
    requested = document.get("outputs") or []
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise V2Error("'outputs' must be a list of objects with a 'name'")
    wanted = {o.get("name"): bool(_parameters(o, "output").get("binary_data")) for o in requested}
    everything_binary = "parameters" in document and bool(
        _parameters(document, "the request").get("binary_data_output"))
    classes = info["classes"]
    produced = {"prediction": (predictions, prediction_type)}
    for index, label in enumerate(classes):
        produced[f"probability_{label}"] = ([row[index] for row in probabilities], "FP64")
    unknown = sorted(set(wanted) - set(produced), key=str)
    if unknown:
        raise V2Error(f"unknown outputs {unknown}; this model has {list(produced)}")
    tensors, blobs = [], []
    for name, (values, datatype) in produced.items():
        if wanted and name not in wanted:
            continue
        tensor, raw = _tensor(name, values, datatype, wanted.get(name, everything_binary))
        tensors.append(tensor)
        blobs.append(raw)
    body = {"model_name": info["model_name"], "model_version": info["model_version"],
            "id": str(document.get("id") or request_id), "outputs": tensors}
    header = to_json(body)
    if not any(blobs):
        return Response(header, media_type="application/json")
    return Response(header + b"".join(blobs), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(header))})


def _explanation_answer(info: dict[str, Any], request_id: str,
                        explained: list[tuple[Any, Any]]) -> dict[str, Any]:
    """V2 outputs of explanations: output, base_value and contribution_<column> per record."""
    columns = list(explained[0][1].contributions)
    outputs = [{"name": "output", "datatype": "FP64", "shape": [len(explained)],
                "data": [e.output for _, e in explained]},
               {"name": "base_value", "datatype": "FP64", "shape": [len(explained)],
                "data": [e.base_value for _, e in explained]}]
    outputs += [{"name": f"contribution_{c}", "datatype": "FP64", "shape": [len(explained)],
                 "data": [e.contributions[c] for _, e in explained]} for c in columns]
    return {"model_name": info["model_name"], "model_version": info["model_version"],
            "id": request_id, "outputs": outputs}


def infer_handler(info: dict[str, Any], score: Scorer, request_id: Callable[[], str]
                  ) -> Callable[[bytes, Mapping[str, str]], Awaitable[Response]]:
    """Answers an infer request's body and headers (the served model's infer routes)."""
    prediction_type = _output_datatype(info["classes"])

    async def infer(body: bytes, headers: Mapping[str, str]) -> Response:
        try:
            document, binary = _split_body(body, headers.get(HEADER_LENGTH))
            rows = _rows_of(document, binary)
            base = request_id()
            predictions, probabilities = await score(rows, [f"{base}:{i}" for i in range(len(rows))])
            return _answer(document, info, prediction_type, base, predictions, probabilities)
        except V2Error as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)

    return infer


def infer_paths(info: dict[str, Any]) -> tuple[str, str]:
    """The served model's infer paths, without and with its version."""
    model = f"{PREFIX}/models/{info['model_name']}"
    return f"{model}/infer", f"{model}/versions/{info['model_version']}/infer"


def build_routes(info: dict[str, Any], score: Scorer, request_id: Callable[[], str],
                 explain: Callable[[list[dict[str, Any]]], Awaitable[list[tuple[Any, Any]]]]
                 | None = None) -> list[Route]:
    """The V2 routes (/v2/...) for the bento's model.

    Args:
        info: The bento's info (model name and version, fields, classes, ONNX file).
        score: Validates and scores rows (see Scorer).
        request_id: The current request's id (set by the request-id middleware).
        explain: Validates and explains rows: (prediction, contributions) per row; it adds
            POST .../explain (kubecycle's extension) with the same inputs as infer.
    """
    metadata = model_metadata(info)

    def _check_model(request: Request) -> None:
        name, version = request.path_params["name"], request.path_params.get("version")
        if name != info["model_name"] or version not in (None, info["model_version"]):
            served = f"{info['model_name']} version {info['model_version']}"
            raise V2Error(f"model {name!r}{f' version {version!r}' if version else ''} is not "
                          f"served here; this server serves {served}", status=404)

    def route(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                answer = await handler(request)
            except V2Error as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            return answer if isinstance(answer, Response) else JSONResponse(answer)

        return endpoint

    async def live(_: Request) -> dict[str, Any]:
        return {"live": True}

    async def ready(_: Request) -> dict[str, Any]:
        return {"ready": True}  # a worker answers once its model is loaded

    async def server(_: Request) -> dict[str, Any]:
        return {"name": "kubecycle", "version": info.get("kubecycle_version", ""),
                "extensions": ["binary_tensor_data"]}

    async def model(request: Request) -> dict[str, Any]:
        _check_model(request)
        return metadata

    async def model_ready(request: Request) -> dict[str, Any]:
        _check_model(request)
        return {"name": info["model_name"], "ready": True}

    infer_body = infer_handler(info, score, request_id)

    async def infer(request: Request) -> Response:
        _check_model(request)
        return await infer_body(await request.body(), request.headers)

    async def explain_rows(request: Request) -> dict[str, Any]:
        _check_model(request)
        document, binary = _split_body(await request.body(), request.headers.get(HEADER_LENGTH))
        return _explanation_answer(info, str(document.get("id") or request_id()),
                                   await explain(_rows_of(document, binary)))

    paths = [("/health/live", live, "GET"), ("/health/ready", ready, "GET"), ("", server, "GET"),
             ("/models/{name}", model, "GET"), ("/models/{name}/versions/{version}", model, "GET"),
             ("/models/{name}/ready", model_ready, "GET"),
             ("/models/{name}/versions/{version}/ready", model_ready, "GET"),
             ("/models/{name}/infer", infer, "POST"),
             ("/models/{name}/versions/{version}/infer", infer, "POST")]
    if explain is not None:
        paths += [("/models/{name}/explain", explain_rows, "POST"),
                  ("/models/{name}/versions/{version}/explain", explain_rows, "POST")]
    return [Route(f"{PREFIX}{path}", route(handler), methods=[method])
            for path, handler, method in paths]
