"""Domain errors: a stable machine code, an HTTP-like status and a human message.

They cross process boundaries as data (``{"code", "status", "detail"}``) so the
gateway can turn them into ``application/problem+json`` whatever the transport.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        if status:
            self.status = status

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "status": self.status, "detail": self.detail}


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


class Invalid(DomainError):
    status = 422
    code = "invalid"
