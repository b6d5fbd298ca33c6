"""The browser's session: the access token in an HttpOnly, Secure, SameSite cookie, and
a CSRF token (double submit) that every form carries back.

The access token never reaches page scripts (HttpOnly), travels only over HTTPS
(Secure; browsers treat loopback, http://127.0.0.1 and http://localhost, as secure:
``make up`` and the tests work over plain HTTP), and
is not sent with another site's form posts (SameSite=Lax). Each POST must also carry
the CSRF cookie's value in its ``csrf`` field, which another site cannot read.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

SESSION = "urne_session"
CSRF = "urne_csrf"
LANG = "urne_lang"
# The role the access token carries, for the menu only (the API decides what a role may).
ROLE = "urne_role"
SESSION_SECONDS = 8 * 3600  # a sign-in lasts a working day at most (the token may be shorter)


def csrf_token(request: Request, response_cookies: dict[str, str]) -> str:
    """The CSRF token of this browser, made (and set on the response) the first time."""
    token = request.cookies.get(CSRF) or response_cookies.get(CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        response_cookies[CSRF] = token
    return token


def csrf_ok(request: Request, sent: str | None) -> bool:
    cookie = request.cookies.get(CSRF)
    return bool(cookie and sent and hmac.compare_digest(cookie, sent))


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, secure=True,
                        samesite="lax", path="/")


def sign_in(response: Response, access_token: str, expires_in: int, role: str) -> None:
    lasts = min(expires_in, SESSION_SECONDS)
    set_cookie(response, SESSION, access_token, lasts)
    set_cookie(response, ROLE, role, lasts)


def sign_out(response: Response) -> None:
    for name in (SESSION, ROLE):
        response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="lax")
