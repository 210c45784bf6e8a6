"""`POST /feedback`: labels that arrive after the prediction, kept for realized performance.

A label refers to a prediction by its request id (`{"request_id": ..., "label": ...}`) or by
id columns of the record (`{"customer_id": "C1", "label": ...}`); a list of them is accepted
too. Labels are appended, buffered and off the request path, to the label store next to the
inference log; re-sending one is harmless (the newest label of a prediction counts), and a
label whose prediction is unknown is counted when labels are joined, never refused here.
Copied into every bento.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kubecycle.serving.request_id import ID_PATTERN

PATH = "/feedback"
LABEL = "label"
REQUEST_ID = "request_id"
RECEIVED = "received_at"
WELL_FORMED_ID = re.compile(ID_PATTERN)  # the ids the service hands out


class FeedbackError(ValueError):
    """A feedback body the service refuses (400), naming the item and field."""


def _label(value: Any, where: str) -> str:
    """The label as JSON text (one column type whatever the task), or FeedbackError."""
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return json.dumps(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return json.dumps(value)
    raise FeedbackError(f"{where}.label must be a non-empty text, a finite number or a boolean; "
                        f"got {value!r}")


def parse(document: Any, limit: int) -> list[dict[str, Any]]:
    """The label rows of a feedback body: ids, the label as JSON text, the time received.

    Raises:
        FeedbackError: naming the item and what is wrong.
    """
    items = document if isinstance(document, list) else [document]
    if not items:
        raise FeedbackError("the body holds no labels")
    if len(items) > limit:
        raise FeedbackError(f"{len(items)} labels exceed the limit of {limit} per request")
    received = datetime.now(UTC)
    rows = []
    for index, item in enumerate(items):
        where = f"item {index}"
        if not isinstance(item, dict) or LABEL not in item:
            raise FeedbackError(f"{where} needs a 'label' and a 'request_id' (or id columns)")
        ids = {str(k): v for k, v in item.items() if k != LABEL}
        if not ids:
            raise FeedbackError(f"{where} names no prediction: give 'request_id' or id columns")
        request_id = ids.get(REQUEST_ID)
        if REQUEST_ID in ids and not (isinstance(request_id, str)
                                      and WELL_FORMED_ID.fullmatch(request_id)):
            raise FeedbackError(f"{where}.request_id {request_id!r} is not a request id")
        for name, value in ids.items():
            if not isinstance(value, str | int | bool):
                raise FeedbackError(f"{where}.{name} must be a text or an integer id")
        rows.append({**{name: str(value) for name, value in ids.items()},  # ids as text
                     LABEL: _label(item[LABEL], where), RECEIVED: received})
    return rows


def build_routes(store: Callable[[list[dict[str, Any]]], None] | None, limit: int,
                 request_id: Callable[[], str]) -> list[Route]:
    """The /feedback route; `store` appends label rows (None: no label store configured)."""

    async def feedback(request: Request) -> JSONResponse:
        if store is None:
            return JSONResponse({"error": "this server keeps no labels: set "
                                          "KUBECYCLE_INFERENCE_LOG or KUBECYCLE_LABEL_STORE"},
                                status_code=409)
        try:
            document = json.loads(await request.body())
        except (UnicodeDecodeError, ValueError) as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc}"}, status_code=400)
        try:
            rows = parse(document, limit)
        except FeedbackError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        store(rows)
        return JSONResponse({"accepted": len(rows), "request_id": request_id()})

    return [Route(PATH, feedback, methods=["POST"])]
