"""The service's hot routes, answered before BentoML's per-request middleware.

BentoML runs every request through tracing, access logging, a timeout, its error and context
middleware and its IO machinery: about 0.6 ms of one core per request, where the model's
call takes 0.03 ms. When no trace is sampled and access logging is off (kubecycle's
defaults), the service's ASGI app answers its hot routes itself: the JSON API methods it
names (POST /predict, /predict_batch) with BentoML's own input models and the service's own
methods, and the protocol routes (KServe V2, /invocations, /feedback) with their app. Each
keeps what the full path gives: the request's validation, the inference log and prediction
counters (in the methods), X-Request-ID, the request timeout (504), and BentoML's request
metrics, which wrap every route, hot or not. A request the hot path does not take as is (a
body that fails validation, a model error, another media type) is replayed to BentoML's own
route, so its answer is BentoML's, unchanged. Turning tracing or the access log on sends
every request the full way. Copied into every bento.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from kubecycle.serving.request_id import RequestIdMiddleware

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
# A hot POST route's handler: the request's body and headers -> the answer, or None to let
# BentoML's app answer the request.
Handler = Callable[[bytes, Mapping[str, str]], Awaitable[Response | None]]
JSON_MEDIA_TYPES = ("application/json", "")  # BentoML reads a body without a type as JSON


async def _read_body(receive: Any) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replaying(body: bytes, receive: Any) -> Any:
    """A receive callable that hands the already-read body over again, then the client's messages."""
    pending = True

    async def receive_again() -> dict[str, Any]:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


class HotRoutes:
    """ASGI dispatcher: the hot routes here, every other request to BentoML's app.

    Args:
        app: BentoML's app of the service (its routes behind its middleware).
        handlers: Handler per path of a hot POST route.
        protocols: The protocol routes' app, and the paths it answers (a path equal to one
            of them or below it).
        timeout: Seconds a hot request may take before it is answered 504, as BentoML does.
        headers: Headers every handler's answer carries (BentoML's Server header).
    """

    def __init__(self, app: ASGIApp, handlers: dict[str, Handler],
                 protocols: tuple[ASGIApp, tuple[str, ...]] | None, timeout: float,
                 headers: list[tuple[bytes, bytes]]) -> None:
        self.app, self.handlers, self.timeout, self.headers = app, handlers, timeout, headers
        self.protocols, paths = protocols or (None, ())
        self.protocol_paths = frozenset(paths)
        self.protocol_prefixes = tuple(path.rstrip("/") + "/" for path in paths)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer a hot route here, anything else with BentoML's app."""
        if scope["type"] == "http":
            path = scope["path"]
            handler = self.handlers.get(path)
            if handler is not None and scope["method"] == "POST":
                await self._answer(handler, scope, receive, send)
                return
            if self.protocols is not None and (path in self.protocol_paths
                                               or path.startswith(self.protocol_prefixes)):
                await self.protocols(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, handler: Handler, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await _read_body(receive)
        try:
            async with asyncio.timeout(self.timeout):
                answer = await handler(body, Headers(scope=scope))
        except TimeoutError:
            answer = JSONResponse(
                {"error": f"Not able to process the request in {self.timeout} seconds"}, 504)
        if answer is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        answer.raw_headers.extend(self.headers)
        await answer(scope, receive, send)


def api_handler(service: Any, name: str) -> Handler:
    """A handler calling the service's JSON API method `name` as BentoML's route calls it.

    The body is validated by the method's BentoML input model (the same errors would be
    raised), the method runs on the current service instance, and its answer is the
    pydantic output model's JSON. Any exception, or a body that is not JSON, means None:
    BentoML's route answers the replayed request (its 4xx naming the field, its 5xx, its
    other media types), running the method again; the service's methods raise before they
    log or count, so nothing is recorded twice.
    """
    import bentoml

    method = service.apis[name]
    if method.batchable or method.ctx_param is not None or method.is_stream:
        raise ValueError(f"{name} is batched, streams or takes BentoML's context: "
                         "BentoML's route must answer it")
    spec, function = method.input_spec, method.func
    current_service = bentoml.get_current_service  # resolved once: bentoml's names are lazy
    fields = tuple(spec.model_fields)

    async def handle(body: bytes, headers: Mapping[str, str]) -> Response | None:
        if headers.get("content-type", "").split(";")[0].strip().lower() not in JSON_MEDIA_TYPES:
            return None
        try:
            arguments = spec.model_validate_json(body or b"{}")
            answer = await function(current_service(),
                                    **{field: getattr(arguments, field) for field in fields})
            return Response(answer.model_dump_json(), media_type="application/json")
        except Exception:
            return None

    return handle


def _full_path_required() -> str | None:
    """Why every request must take BentoML's full path (tracing or access log on), else None."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    if BentoMLContainer.tracing.sample_rate.get():
        return "tracing samples requests"
    if BentoMLContainer.api_server_config.logging.access.enabled.get():
        return "the access log is on"
    return None


def _with_metrics_outside(app: Any, inner: ASGIApp) -> ASGIApp:
    """`inner` wrapped in BentoML's request-metrics middleware, taken out of `app`'s own stack.

    Every request, hot or not, is then counted once, under the same metric names and labels.
    """
    from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware

    if app.middleware_stack is not None:
        raise RuntimeError("BentoML's app already built its middleware; cannot move its metrics")
    metrics = [m for m in app.user_middleware if m.cls is RunnerTrafficMetricsMiddleware]
    app.user_middleware = [m for m in app.user_middleware if m not in metrics]
    for middleware in metrics:
        inner = middleware.cls(inner, *middleware.args, **middleware.kwargs)
    return inner


def serve_hot_routes_first(service: Any, handlers: Callable[[], dict[str, Handler]],
                           protocols: tuple[ASGIApp, tuple[str, ...]], timeout: float) -> None:
    """Make the ASGI app that `bentoml serve` runs for `service` answer the hot routes first.

    BentoML's worker serves `service.to_asgi()`; the service object's class becomes a
    subclass whose to_asgi wraps BentoML's app: request metrics outermost, then request ids,
    then the hot routes (only when neither tracing nor the access log needs the full path).

    Args:
        service: The `@bentoml.service` object.
        handlers: Builds the handler per path of the hot POST routes (called once per app).
        protocols: The protocol routes' app and the paths it answers.
        timeout: The request timeout in seconds.
    """
    base = type(service)

    class HotService(base):  # type: ignore[misc,valid-type]
        __slots__ = ()

        def to_asgi(self, is_main: bool = True) -> ASGIApp:
            app = super().to_asgi(is_main)
            hot = _full_path_required() is None
            routes = HotRoutes(app, handlers() if hot else {}, protocols if hot else None, timeout,
                               [(b"server", f"BentoML Service/{self.name}".encode())])
            return _with_metrics_outside(app, RequestIdMiddleware(routes))

    service.__class__ = HotService
