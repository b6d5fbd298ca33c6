"""Request ids and HTTP metrics, as a plain ASGI middleware.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which wraps every request
in extra tasks and streams: on the ballot path that cost more CPU than the ballot.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from urne.platform.logging import trace_id_var
from urne.platform.metrics import HTTP_REQUESTS, HTTP_SECONDS

TRACE_HEADER = "X-Request-ID"
_TRACE_HEADER = TRACE_HEADER.lower().encode()

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[..., Any]


def _trace_id(scope: Scope) -> str:
    """The request's own id when it is a sensible one, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == _TRACE_HEADER:
            incoming = value.decode("latin-1")
            if 0 < len(incoming) <= 64 and incoming.isprintable():
                return incoming
            break
    # 128 random bits in hex, as uuid4().hex but without building a UUID object
    # (every request pays for it).
    return secrets.token_hex(16)


class TraceAndMeasure:
    """Gives each request a trace id (``X-Request-ID``, echoed in the response and set
    for the logs and the messages it causes) and counts it by route template."""

    def __init__(self, app: ASGIApp, templates: Mapping[int, str]):
        self.app, self.templates = app, templates  # id(route) -> "/v1/polls/{poll_id}"

    async def __call__(self, scope: Scope, receive: Callable[..., Any],
                       send: Callable[[Message], Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = _trace_id(scope)
        scope.setdefault("state", {})["trace_id"] = trace_id  # request.state.trace_id
        status = 500

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (_TRACE_HEADER, trace_id.encode())]}
            await send(message)

        token = trace_id_var.set(trace_id)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            trace_id_var.reset(token)
            template = self.templates.get(id(scope.get("route")), "unmatched")
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).inc()
            HTTP_SECONDS.labels(scope["method"], template).observe(time.perf_counter() - started)
