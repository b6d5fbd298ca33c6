"""Domain errors: a stable machine code, an HTTP-like status and a human message.

They cross process boundaries as data (``{"code", "status", "detail"}``) so the
gateway can turn them into ``application/problem+json`` whatever the transport.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None,
                 retry_after: int | None = None, keep_writes: bool = False):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after  # seconds, for the gateway's Retry-After
        # A refusal changes nothing, except one that is itself counted (a wrong sign-in
        # code): then what the handler wrote before refusing is kept, where a store
        # would otherwise roll the command back (the embedded profile's transaction).
        self.keep_writes = keep_writes
        if code:
            self.code = code
        if status:
            self.status = status

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "status": self.status, "detail": self.detail}
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        return data


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"


class Busy(DomainError):
    """Not now: retry shortly (503)."""

    status = 503
    code = "busy"


class Invalid(DomainError):
    status = 422
    code = "invalid"
