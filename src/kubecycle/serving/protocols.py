"""The service's other protocols as one ASGI app: KServe V2, MLflow's /invocations, /feedback.

Their rows are validated by the service's own Record model and scored, explained or stored by
the running service instance (bentoml.get_current_service), so every protocol gives the same
predictions, the same 4xx for the same bad field, and the same inference log. Copied into
every bento.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import bentoml
from bentoml.exceptions import InternalServerError, InvalidArgument
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.responses import Response

from kubecycle.serving import feedback, mlflow_protocol, open_inference
from kubecycle.serving.request_id import REQUEST_ID, new_request_id

PATHS = (open_inference.PREFIX, mlflow_protocol.PATH, feedback.PATH)  # every route is one or below one


@dataclass(frozen=True)
class Protocols:
    """The protocols' routes as one app, and the handlers of their hot POST paths.

    A handler answers a request's body and headers exactly as the app's route does.
    """

    app: Starlette
    handlers: dict[str, Callable[[bytes, Mapping[str, str]], Awaitable[Response]]]


def protocols_app(info: dict[str, Any], record_model: Any, max_batch: int, keeps_labels: bool
                  ) -> Protocols:
    """The routes of the other protocols, to mount at the service's root.

    Args:
        info: The bento's info (model, fields, classes).
        record_model: The service's pydantic Record (one field per raw column).
        max_batch: The most labels one /feedback request may carry.
        keeps_labels: Whether the service has a label store (else /feedback answers 409).
    """
    current_service = bentoml.get_current_service  # resolved once: bentoml's names are lazy

    def validated(rows: list[dict[str, Any]], error: type[Exception]) -> list[Any]:
        """Rows as Records, or the first problem naming record and field."""
        records = []
        for index, row in enumerate(rows):
            try:
                records.append(record_model.model_validate(row))
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(str(part) for part in problem["loc"]) or "record"
                raise error(f"record {index}, input {where!r}: {problem['msg']}") from None
        return records

    async def score_rows(rows: list[dict[str, Any]], ids: list[str], error: type[Exception]
                         ) -> tuple[list[Any], list[dict[str, float]] | None]:
        try:
            return await current_service()._score(validated(rows, error), ids)
        except InvalidArgument as exc:
            raise error(str(exc)) from None
        except InternalServerError as exc:
            raise error(str(exc), 500) from None

    async def score_v2(rows: list[dict[str, Any]], ids: list[str]) -> tuple[list[Any], Any]:
        predictions, probabilities = await score_rows(rows, ids, open_inference.V2Error)
        columns = [str(c) for c in info["classes"]]
        return predictions, [[row[c] for c in columns] for row in probabilities or []]

    async def explain_v2(rows: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
        service = current_service()
        records = validated(rows, open_inference.V2Error)
        try:
            return [await asyncio.to_thread(service._explained, r.model_dump(by_alias=True))
                    for r in records]
        except InvalidArgument as exc:
            raise open_inference.V2Error(str(exc)) from None

    async def score_mlflow(rows: list[dict[str, Any]], ids: list[str]) -> list[Any]:
        predictions, _ = await score_rows(rows, ids, mlflow_protocol.ProtocolError)
        return predictions

    def current_request_id() -> str:
        return REQUEST_ID.get() or new_request_id()

    def store_labels(rows: list[dict[str, Any]]) -> None:
        current_service().labels.append(rows)

    handlers = dict.fromkeys(open_inference.infer_paths(info),
                             open_inference.infer_handler(info, score_v2, current_request_id))
    handlers[mlflow_protocol.PATH] = mlflow_protocol.invocations_handler(score_mlflow,
                                                                        current_request_id)
    app = Starlette(routes=[
        *open_inference.build_routes(info, score_v2, current_request_id, explain_v2),
        *mlflow_protocol.build_routes(score_mlflow, current_request_id),
        *feedback.build_routes(store_labels if keeps_labels else None, max_batch,
                               current_request_id)])
    return Protocols(app, handlers)
