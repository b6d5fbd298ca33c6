"""What the page tests (no browser) share: the embedded profile's app over HTTPS (so the
Secure cookies travel), a form field read from a page, and signing in through the
pages. The fixtures are every tests/web module's (conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import read_code
from urne.platform.settings import EmbeddedSettings
from urne.runtime.embedded import build_app


@pytest.fixture
def settings(tmp_path: Path) -> EmbeddedSettings:
    return EmbeddedSettings(data_dir=tmp_path / "data", environment="test")


@pytest.fixture
def web(settings: EmbeddedSettings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def outbox(settings: EmbeddedSettings) -> Path:
    return settings.outbox_dir / "email.jsonl"


def field(html: str, name: str) -> str:
    """The value of a form's field ``name`` in a page."""
    found = re.search(rf'name="{name}"[^>]* value="([^"]*)"', html)
    assert found, f"no {name} field"
    return found.group(1)


def sign_in(web: TestClient, outbox: Path, email: str, next_: str = "/") -> str:
    """Signed in through the pages (the code read from the outbox), checking the session
    cookie's attributes; the CSRF token of this browser."""
    page = web.get(f"/sign-in?next={next_}")
    assert page.status_code == 200
    csrf = field(page.text, "csrf")
    sent = web.post("/sign-in", data={"csrf": csrf, "email": email, "next": next_})
    assert sent.status_code == 200 and 'name="code"' in sent.text, sent.text
    done = web.post("/sign-in/code", data={"csrf": csrf, "email": email, "next": next_,
                                           "code": read_code(outbox, email)},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == next_
    cookie = next(v for k, v in done.headers.multi_items()
                  if k == "set-cookie" and v.startswith("urne_session="))
    assert {"HttpOnly", "Secure", "SameSite=lax"} <= {p.strip() for p in cookie.split(";")}
    return csrf
