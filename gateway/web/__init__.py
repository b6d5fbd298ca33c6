"""The web front end (issue 13): pages for participants in a browser, server-rendered
from the public API, served by the gateway beside ``/v1``.

- ``participant.py``, ``results.py``, ``organiser.py``, ``desk.py``: the pages of each
  kind of user, and what each asks the API; ``page.py``: what they share;
- ``api.py``: the in-process client of ``/v1`` (no private shortcut);
- ``session.py``: the session and CSRF cookies;
- ``forms.py``: a ballot form's fields as the API's choice (pure);
- ``i18n.py``: French by default, and English (``locales/``);
- ``templates/`` (Jinja2, autoescaped) and ``static/`` (CSS, one small script).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

STATIC = Path(__file__).parent / "static"


class _Static(StaticFiles):
    """The pages' stylesheet and script, with the pages' security headers (nosniff
    above all: a script served under another type is never run)."""

    async def get_response(self, path: str, scope: Any) -> Response:
        from urne.gateway.web.page import SECURITY_HEADERS

        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount(app: FastAPI) -> None:
    from urne.gateway.web import desk, organiser, participant, results

    for module in (participant, results, organiser, desk):
        app.include_router(module.router)
    app.mount("/static", _Static(directory=STATIC), name="static")
