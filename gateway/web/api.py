"""The web pages' only way to urne: the public ``/v1`` API, called in process.

Each page's calls go through the same ASGI application a front end would reach over
HTTP (its middlewares, validation, limits and problems), without a network hop and with
no private shortcut. The browser's address (uvicorn has already replaced a trusted
proxy's by the one it forwarded) is given as the caller's, so the per-client sign-in
limits count people, not the web pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.types import ASGIApp


class ApiProblem(Exception):
    """A problem the API answered (``application/problem+json``)."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


@dataclass
class Api:
    app: ASGIApp
    client: str  # the browser's address
    token: str | None = None  # the person's access token, from the session cookie

    async def call(self, method: str, path: str, *, json: Any = None,
                   token: str | None = None, headers: dict[str, str] | None = None) -> Any:
        r = await self.raw(method, path, json=json, token=token, headers=headers)
        return r.json() if r.content else None

    async def raw(self, method: str, path: str, *, json: Any = None,
                  token: str | None = None, headers: dict[str, str] | None = None
                  ) -> httpx.Response:
        """The API's answer as it came (its bytes and headers), or ``ApiProblem``."""
        transport = httpx.ASGITransport(app=self.app, client=(self.client, 0))
        bearer = token or self.token
        sent = {**({"Authorization": f"Bearer {bearer}"} if bearer else {}), **(headers or {})}
        async with httpx.AsyncClient(transport=transport, base_url="http://urne") as http:
            r = await http.request(method, f"/v1{path}", json=json, headers=sent)
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {}
            detail = str(body.get("detail", r.reason_phrase))
            errors = body.get("errors")
            if isinstance(errors, list) and errors:  # which field, and why (invalid_request)
                detail += ": " + "; ".join(
                    str(e.get("msg", "")) if isinstance(e, dict) else str(e)
                    for e in errors[:5])
            raise ApiProblem(r.status_code, str(body.get("code", "error")), detail)
        return r

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.call("POST", path, json=json if json is not None else {}, **kw)
