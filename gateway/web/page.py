"""What every web page shares: its language, its API client, its CSRF token, its
cookies and security headers, and how an API refusal is shown (``Page``)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from urne.gateway.web import forms, session
from urne.gateway.web.api import Api, ApiProblem
from urne.gateway.web.i18n import LANGUAGES, N_, negotiate, translations

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment(lang: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


class Page:
    """One request's page: its language, API, CSRF token and cookies to set."""

    def __init__(self, request: Request):
        self.request = request
        self.lang = negotiate(request.cookies.get(session.LANG),
                              request.headers.get("accept-language"))
        host = request.client.host if request.client else "127.0.0.1"
        self.api = Api(request.app, host, request.cookies.get(session.SESSION))
        self.cookies: dict[str, str] = {}
        self.csrf = session.csrf_token(request, self.cookies)

    def _(self, msgid: str) -> str:
        return translations(self.lang).gettext(msgid)

    def say(self, exc: ApiProblem, own: Mapping[str, str] | None = None) -> str:
        """What the API's refusal means, in the page's language when its code is known
        (a page kind's ``own`` messages first, then ``KNOWN``), else the API's words."""
        return self.say_code(exc.code, exc.detail, own)

    def say_code(self, code: str | None, detail: str | None,
                 own: Mapping[str, str] | None = None) -> str:
        """``say`` for a code and detail given apart (a line of a batch's answer)."""
        known = (own or {}).get(code or "") or KNOWN.get(code or "")
        return self._(known) if known else (detail or "")

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = environment(self.lang).get_template(template).render(
            lang=self.lang, languages=LANGUAGES, csrf=self.csrf,
            signed_in=self.api.token is not None, path=self.request.url.path,
            role=self.request.cookies.get(session.ROLE) if self.api.token else None,
            **context)
        response = HTMLResponse(html, status_code=status)
        self.finish(response)
        return response

    def problem(self, exc: ApiProblem, back: str | None = None) -> HTMLResponse:
        """An API refusal, said in the page's language when the code is known."""
        if exc.code in ("invalid_token", "access_token_required"):
            return self.render("sign_in.html", status=401, next=self.request.url.path,
                               message=self._("Please sign in again."))
        return self.render("problem.html", status=exc.status, code=exc.code,
                           message=self.say(exc), back=back)

    def finish(self, response: Response) -> None:
        for name, value in self.cookies.items():
            session.set_cookie(response, name, value)
        response.headers.update(SECURITY_HEADERS)

    def redirect(self, to: str) -> RedirectResponse:
        response = RedirectResponse(to, status_code=303)
        self.finish(response)
        return response


# Only this site's own scripts, styles and forms; never inside another site's frame; no
# address of a page (which names a poll) sent to another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

# What the API's codes mean to a person (msgids; the API's detail is shown otherwise).
KNOWN = {
    "code_invalid": N_("That code is not valid, or no longer. Ask for a new one."),
    "code_rate_limited": N_("Too many attempts. Wait a little before trying again."),
    "too_many_attempts": N_("Too many attempts. Wait a little before trying again."),
    "poll_closed": N_("This poll is closed: ballots are no longer taken."),
    "poll_not_open": N_("This poll is not open for voting."),
    "not_eligible": N_("You are not on the electorate of this poll."),
    "ballot_invalid": N_("This ballot does not follow the poll's rules."),
    "poll_not_found": N_("There is no such poll."),
    "consultation_not_found": N_("There is no such consultation."),
    "tracker_not_found": N_("This tracker is not in the published record."),
}


async def form_of(request: Request, page: Page) -> dict[str, list[str]] | Response:
    """The posted fields, or a 403 page if the CSRF token is not this browser's."""
    fields = forms.parse(await request.body())
    if not session.csrf_ok(request, forms.one(fields, "csrf")):
        return page.render("problem.html", status=403, code="csrf",
                           message=page._("This form expired. Go back, reload the page "
                                          "and send it again."), back=None)
    return fields


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
