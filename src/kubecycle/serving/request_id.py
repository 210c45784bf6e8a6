"""Request ids: every HTTP answer of the service carries one, and the inference log records it.

A pure ASGI middleware (no per-request framework objects) takes a well-formed `X-Request-ID`
from the request or makes one, exposes it to the handler through a context variable and adds
it to the answer's headers. Copied into every bento.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from typing import Any

HEADER = b"x-request-id"
ID_PATTERN = r"[A-Za-z0-9._:\-]{1,128}"  # what a request id may be (a header or a /feedback id)
WELL_FORMED = re.compile(ID_PATTERN.encode())  # anything else is replaced, never echoed
REQUEST_ID: ContextVar[str] = ContextVar("kubecycle_request_id", default="")


def new_request_id() -> str:
    """A fresh request id (32 random hex digits)."""
    return os.urandom(16).hex()


def _from_headers(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == HEADER and WELL_FORMED.fullmatch(value):
            return value.decode()
    return new_request_id()


class RequestIdMiddleware:
    """Sets REQUEST_ID for the request and answers with it in X-Request-ID."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run the app with the request's id set, adding the header to the answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _from_headers(scope.get("headers") or [])
        encoded = request_id.encode()

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*(message.get("headers") or []), (HEADER, encoded)]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
