"""RFC 9457 problem details: every error is ``application/problem+json`` with a stable code."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from urne.platform.metrics import HTTP_PROBLEMS

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
          415: "Unsupported media type", 422: "Unprocessable content",
          429: "Too many requests", 500: "Internal server error", 503: "Service unavailable"}
# FastAPI raises a bare 400 when a JSON body is not even UTF-8 (invalid JSON text is a
# RequestValidationError, handled below): both are the same stable ``malformed_json``.
HTTP_CODES = {400: "malformed_json", 404: "route_not_found", 405: "method_not_allowed",
              401: "unauthorized", 413: "payload_too_large", 415: "unsupported_media_type"}


class Problem(BaseModel):
    """RFC 9457 problem details, with urne's stable ``code``."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    services: dict[str, Any] | None = None


def documented(status: int) -> dict[str, Any]:
    """The OpenAPI response of a problem with this status (for a route's ``responses``)."""
    return _documented(status)


def _documented(status: int) -> dict[str, Any]:
    return {"description": TITLES[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


# Declared on every route so generated clients and schema checkers know the error shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: _documented(status) for status in (400, 401, 403, 404, 405, 409, 422, 429, 500, 503)
}


class ProblemError(Exception):
    def __init__(self, status: int, code: str, detail: str, *, retry_after: int | None = None,
                 **extra: Any):
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra
        self.retry_after = retry_after  # seconds: the answer's Retry-After


def reply_data(reply: dict[str, Any]) -> dict[str, Any]:
    """A service's reply: its data, or the domain error it carries, as a problem."""
    if reply.get("ok"):
        return dict(reply["data"])
    err = reply.get("error") or {}
    wait = err.get("retry_after")
    raise ProblemError(int(err.get("status", 500)), str(err.get("code", "internal_error")),
                       str(err.get("detail", "")),
                       retry_after=wait if isinstance(wait, int) and wait > 0 else None)


RETRY_AFTER_SECONDS = 1


def problem(status: int, code: str, detail: str, instance: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    HTTP_PROBLEMS.labels(str(status), code).inc()  # codes are a fixed set: few series
    body = {"type": f"urn:urne:problem:{code}", "title": TITLES.get(status, "Error"),
            "status": status, "code": code, "detail": detail, **extra}
    if instance:
        body["instance"] = instance
    if status == 503:
        # "Not now": a service, the broker or a store is briefly away. Clients retry
        # (a ballot with its Idempotency-Key) after this many seconds.
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_for(exc: ProblemError, instance: str) -> JSONResponse:
    """The answer to a ``ProblemError`` (the ballot fast path answers with it too)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return problem(exc.status, exc.code, exc.detail, instance, headers or None, **exc.extra)


def crashed(instance: str) -> JSONResponse:
    """The answer to an unexpected error, logged with its traceback (call it in ``except``)."""
    log.exception("unhandled error")
    return problem(500, "internal_error", "an unexpected error occurred; it was logged",
                   instance)


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Methods the OpenAPI document declares for ``path`` (its templates as patterns)."""
    templates = getattr(app.state, "path_templates", None)
    if templates is None:
        templates = [(re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(p)) + "$"),
                      sorted(m.upper() for m in ops))
                     for p, ops in app.openapi()["paths"].items()]
        app.state.path_templates = templates
    return sorted({m for pattern, methods in templates if pattern.match(path) for m in methods})


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _domain(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_for(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(400, "malformed_json", "the request body is not valid JSON",
                           request.url.path)
        return problem(422, "invalid_request", "the request does not match the schema",
                       request.url.path,
                       errors=[{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg")}
                               for e in errors[:20]])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        if exc.status_code == 405:
            # Starlette names the methods of one route only; a path served by
            # several routes (GET and POST /v1/consultations) allows all of theirs.
            allowed = _allowed_methods(request.app, request.url.path)
            headers = {"Allow": ", ".join(allowed)}
            detail = f"{request.method} is not allowed here; use {', '.join(allowed)}"
        return problem(exc.status_code, code, detail, request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return crashed(request.url.path)
