"""``POST /v1/polls/{poll_id}/ballots`` without the framework around it (D4).

Profiled with py-spy on the gateway under ``urne loadtest --profile distributed --rate
400`` (docs/performance.md): FastAPI's routing, dependency injection, body parsing and
response rendering took about a quarter of the gateway's CPU per ballot. This plain
ASGI layer takes the common case itself: a JSON body that is a valid ``BallotCast``, a
Bearer token and a well-formed ``Idempotency-Key``. Anything else (malformed JSON, a
body that does not match, no token, an odd header) goes on to the FastAPI route with
the body it came with, and is answered there exactly as before; that route is also the
one the OpenAPI document describes. The gateway tests send every ballot case through
the application as it is served, so both paths answer them.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from urne.contracts.fields import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN
from urne.gateway.ballots import BallotDesk
from urne.gateway.problems import ProblemError, crashed, problem_for
from urne.gateway.requests import BallotCast
from urne.platform import jsonbytes

BALLOTS = re.compile(r"^/v1/polls/([^/]{1,64})/ballots$")
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
MAX_BODY = 256 * 1024


class BallotFastPath:
    def __init__(self, app: ASGIApp, desk: BallotDesk, route: Any):
        # ``route``: the FastAPI route this stands in for, set on the scope so metrics
        # and logs name the same route template whichever path answered.
        self.app, self.desk, self.route = app, desk, route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (BALLOTS.match(scope["path"])
                 if scope["type"] == "http" and scope["method"] == "POST" else None)
        if match is None:
            await self.app(scope, receive, send)
            return
        body, rest = await _read(receive)
        cast = _parse(_headers(scope), body) if rest is None else None
        if cast is None:
            await self.app(scope, _replay(body, rest, receive), send)
            return
        token, choice, key = cast
        scope["route"] = self.route
        try:
            receipt = await self.desk.cast(match.group(1), token, choice, key,
                                           scope.get("state", {}).get("trace_id", ""))
        except ProblemError as exc:
            response = problem_for(exc, scope["path"])
        except Exception:
            response = crashed(scope["path"])
        else:
            await _created(send, receipt)
            return
        # The very responses the route and its exception handlers give.
        await response(scope, receive, send)


async def _created(send: Send, receipt: dict[str, Any]) -> None:
    """The route's 201, byte for byte (``JSONResponse``: compact JSON, UTF-8, its two
    headers in its order), written with orjson and without a response object: every
    accepted ballot takes this path."""
    body = jsonbytes.dumps(receipt)
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in found:  # a repeated header is the route's to judge
            found[name] = b""
        else:
            found[name] = value
    return found


# What _read found after the body it returns: more of it (the body is too large).
PARTIAL: Message = {"type": "http.request", "more_body": True}


async def _read(receive: Receive) -> tuple[bytes, Message | None]:
    """The body, and None once it is whole; else what was read and what stopped it (the
    client leaving, or ``PARTIAL``), for the route to carry on from."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if not message.get("more_body"):
            return b"".join(chunks), None
        if size > MAX_BODY:  # a ballot is small: a larger body is the route's to refuse
            return b"".join(chunks), PARTIAL


def _replay(body: bytes, rest: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the route what was already read, then the rest."""
    queue: list[Message] = [{"type": "http.request", "body": body,
                             "more_body": rest is PARTIAL}]
    if rest is not None and rest is not PARTIAL:
        queue.append(rest)

    async def replay() -> Message:
        return queue.pop(0) if queue else await receive()

    return replay


def _parse(headers: dict[bytes, bytes], body: bytes
           ) -> tuple[str, dict[str, Any], str | None] | None:
    """(token, choice, idempotency key) of a request the fast path may take, else None."""
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        return None
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    key: str | None = None
    if b"idempotency-key" in headers:
        key = headers[b"idempotency-key"].decode("latin-1")
        if not (0 < len(key) <= IDEMPOTENCY_KEY_MAX and IDEMPOTENCY_KEY.match(key)):
            return None
    try:
        request = BallotCast.model_validate_json(body)
    except ValidationError:
        return None
    return token, request.choice.model_dump(), key
