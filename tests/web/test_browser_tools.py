"""The browser tests' plumbing (tests/web/browser.py): Debian's chromium opens pages
through Playwright, axe-core finds what it should (and nothing on an accessible page,
even under a strict Content-Security-Policy), the page speaks the language asked, and
nothing leaves the machine: loopback is reached, any other address is refused at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from playwright.sync_api import Browser, Error, Page

from tests.web.browser import AXE_VERSION, axe_violations, describe, requests_of

pytestmark = pytest.mark.unit

ACCESSIBLE = """<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><title>Voter — urne</title></head>
<body>
<main>
  <h1>Voter</h1>
  <form method="post" action="/vote">
    <label for="code">Code de vote</label>
    <input id="code" name="code" type="text" autocomplete="one-time-code" required>
    <fieldset>
      <legend>Votre choix</legend>
      <input id="yes" type="radio" name="choice" value="yes"><label for="yes">Oui</label>
      <input id="no" type="radio" name="choice" value="no"><label for="no">Non</label>
    </fieldset>
    <button type="submit">Envoyer</button>
  </form>
</main>
</body>
</html>"""

# A one-pixel GIF, inline: the page needs no request for its image.
PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw=="
INACCESSIBLE = f"""<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><title>Voter — urne</title></head>
<body>
<main>
  <h1>Voter</h1>
  <img src="{PIXEL}">
  <input type="text" name="code">
</main>
</body>
</html>"""

STRICT_CSP = ("<meta http-equiv=\"Content-Security-Policy\" "
              "content=\"default-src 'self'; script-src 'self'; img-src 'self' data:\">")

ALL_IMPACTS = ("minor", "moderate", "serious", "critical")


def ids(violations: list[dict[str, object]]) -> set[str]:
    return {str(v["id"]) for v in violations}


def test_an_accessible_page_has_no_violation(page: Page) -> None:
    requested = requests_of(page)
    page.set_content(ACCESSIBLE)
    assert page.title() == "Voter — urne"
    violations = axe_violations(page)
    assert violations == [], describe(violations)
    # Nor anything minor: the page is the reference of a clean one.
    assert axe_violations(page, impacts=ALL_IMPACTS) == [], describe(
        axe_violations(page, impacts=ALL_IMPACTS))
    assert page.evaluate("() => axe.version") == AXE_VERSION
    assert requested == []


def test_a_missing_alt_and_label_are_found(page: Page) -> None:
    requested = requests_of(page)
    page.set_content(INACCESSIBLE)
    violations = axe_violations(page)
    assert {"image-alt", "label"} <= ids(violations), describe(violations)
    assert {v["impact"] for v in violations} <= {"serious", "critical"}
    image_alt = next(v for v in violations if v["id"] == "image-alt")
    assert [node["target"] for node in image_alt["nodes"]] == [["img"]]
    # Only impacts asked for: nothing is critical enough for "minor" alone.
    assert "image-alt" not in ids(axe_violations(page, impacts=("minor",)))
    assert all(url.startswith("data:") for url in requested), requested


def test_axe_runs_under_a_strict_content_security_policy(page: Page) -> None:
    page.set_content(INACCESSIBLE.replace("<title>", STRICT_CSP + "<title>"))
    # The policy holds: an inline script is refused …
    with pytest.raises(Error, match="Content Security Policy"):
        page.add_script_tag(content="window.inline = true")
    # … and axe still runs.
    assert {"image-alt", "label"} <= ids(axe_violations(page))


class Site(BaseHTTPRequestHandler):
    """One page on loopback, remembering the Accept-Language it was asked in."""

    languages: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Site.languages.append(self.headers.get("Accept-Language", ""))
        body = ACCESSIBLE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    Site.languages = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_loopback_is_reached_and_nothing_else(page: Page, site: str) -> None:
    requested = requests_of(page)
    response = page.goto(f"{site}/vote")
    assert response is not None and response.status == 200
    assert axe_violations(page) == []
    # Not even the favicon: headless chromium asks for none.
    assert requested == [f"{site}/vote"]
    # Anything beyond loopback is refused by the browser itself, name or address,
    # at once (no DNS look-up, no connection attempt).
    for url in ("http://deb.debian.org/", "https://registry.npmjs.org/", "http://192.0.2.1/"):
        with pytest.raises(Error, match="ERR_PROXY_CONNECTION_FAILED"):
            page.goto(url, timeout=5_000)


@pytest.mark.parametrize("locale", ["fr-FR", "en-GB"])
def test_the_page_speaks_the_locale(page: Page, site: str, locale: str) -> None:
    page.goto(site)
    assert page.evaluate("() => navigator.language") == locale
    assert Site.languages[0].startswith(locale)


def test_the_browser_keeps_its_background_networking_off(chromium: Browser, page: Page
                                                          ) -> None:
    """The switches that keep chromium quiet reached it, Playwright's --disable-features
    list among them (a second --disable-features would replace it)."""
    assert chromium.version.split(".")[0].isdigit()
    page.goto("chrome://version/?show-variations-cmd")
    text = page.inner_text("body")
    command_line = next(line for line in text.splitlines() if line.startswith("Command Line"))
    for switch in ("--headless", "--no-sandbox", "--disable-background-networking",
                   "--disable-component-update", "--proxy-server="):
        assert switch in command_line, command_line
    variations = next(line for line in text.splitlines() if "--disable-features=" in line
                      and not line.startswith("Command Line"))
    disabled = variations.split('--disable-features="', 1)[1].split('"', 1)[0].split(",")
    assert {"OptimizationHints", "MediaRouter", "NetworkTimeServiceQuerying"} <= set(disabled)
