"""MLflow's scoring protocol on `POST /invocations`, answered as `mlflow models serve` answers.

JSON bodies with one of `dataframe_split`, `dataframe_records`, `instances` or `inputs` (records,
or a dict of columns), plus an optional `params`; or `text/csv` with a header row. The answer is
`{"predictions": [...]}`. NaN, which MLflow's own tooling writes for a missing value, is a
missing value; an infinite number is refused. Errors are 4xx
`{"error_code": "BAD_REQUEST", "message": ...}` naming the field. Copied into every bento.
"""

from __future__ import annotations

import io
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic_core import from_json, to_json
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PATH = "/invocations"
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
# Scores rows (raw column name -> value) under request ids; returns predictions. Raises
# ProtocolError on rows the contract refuses.
Scorer = Callable[[list[dict[str, Any]], list[str]], Awaitable[list[Any]]]


class ProtocolError(Exception):
    """A request the protocol refuses, with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _missing_as_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _record(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ProtocolError(f"{where} is not an object of column values; send records "
                            "({column: value}) or dataframe_split")
    return {str(k): _missing_as_none(v) for k, v in row.items()}


def _from_split(split: Any) -> list[dict[str, Any]]:
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list) \
            or not isinstance(split.get("data"), list):
        raise ProtocolError("dataframe_split needs 'columns' and 'data' lists")
    columns = [str(c) for c in split["columns"]]
    rows = []
    for index, values in enumerate(split["data"]):
        if not isinstance(values, list) or len(values) != len(columns):
            raise ProtocolError(f"dataframe_split.data[{index}] does not hold one value per "
                                f"column ({len(columns)})")
        rows.append({c: _missing_as_none(v) for c, v in zip(columns, values, strict=True)})
    return rows


def _from_instances(instances: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(instances, dict):  # columns: {"a": [1, 2], "b": [...]}
        lengths = {k: len(v) if isinstance(v, list) else None for k, v in instances.items()}
        if not instances or None in lengths.values() or len(set(lengths.values())) > 1:
            raise ProtocolError(f"{key} as columns needs lists of one length: {lengths}")
        count = next(iter(lengths.values()))
        return [_record({k: v[i] for k, v in instances.items()}, f"{key} row {i}")
                for i in range(count)]
    if not isinstance(instances, list):
        raise ProtocolError(f"{key} must be a list of records or a dict of columns")
    return [_record(row, f"{key}[{i}]") for i, row in enumerate(instances)]


def rows_of(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """The request's rows, one dict per record."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "text/csv":
        import pandas as pd

        try:
            frame = pd.read_csv(io.BytesIO(body))
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"the CSV body could not be read: {exc}") from None
        objects = frame.astype(object)
        return objects.where(objects.notna(), None).to_dict("records")
    if kind != "application/json":
        raise ProtocolError(f"content type {kind!r} is not supported; send application/json "
                            "or text/csv", status=415)
    try:
        document = from_json(body)  # pydantic-core's parser: NaN and Infinity too
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the body is not JSON: {exc}") from None
    given = [key for key in FORMATS if isinstance(document, dict) and key in document]
    if len(given) != 1:
        raise ProtocolError(f"send exactly one of {list(FORMATS)}; got {given or 'none'}")
    [key] = given
    if key == "dataframe_split":
        return _from_split(document[key])
    if key == "dataframe_records" and not isinstance(document[key], list):
        raise ProtocolError("dataframe_records must be a list of records")
    return _from_instances(document[key], key)


def invocations_handler(score: Scorer, request_id: Callable[[], str]
                        ) -> Callable[[bytes, Mapping[str, str]], Awaitable[Response]]:
    """Answers an /invocations request's body and headers."""

    async def invocations(body: bytes, headers: Mapping[str, str]) -> Response:
        try:
            rows = rows_of(body, headers.get("content-type", ""))
            if not rows:
                raise ProtocolError("the request holds no records")
            base = request_id()
            predictions = await score(rows, [f"{base}:{i}" for i in range(len(rows))])
        except ProtocolError as exc:
            return JSONResponse({"error_code": "BAD_REQUEST" if exc.status < 500 else
                                 "INTERNAL_ERROR", "message": str(exc)}, status_code=exc.status)
        return Response(to_json({"predictions": predictions}), media_type="application/json")

    return invocations


def build_routes(score: Scorer, request_id: Callable[[], str]) -> list[Route]:
    """The /invocations route."""
    answer = invocations_handler(score, request_id)

    async def invocations(request: Request) -> Response:
        return await answer(await request.body(), request.headers)

    return [Route(PATH, invocations, methods=["POST"])]
