"""The browser of the web pages' tests: Debian's ``chromium`` driven by Playwright for
Python, and axe-core run inside the page. Both are installed beforehand by
infra/browser/install.sh (``make test`` runs it); the tests reach no network beyond
loopback, and the browser cannot: every other address goes to a proxy that is not there.

Outside CI a missing browser or axe-core skips the tests; with ``CI=true`` it is a
failure (tests/ops/tools.py).

The fixtures (tests/web/conftest.py makes them every tests/web module's):

- ``chromium``: one headless browser per module;
- ``page``: a page in a browser context of its own (cookies, storage) per test, in the
  language of the ``locale`` fixture, French unless a test says otherwise::

      @pytest.mark.parametrize("locale", ["en-GB"])
      def test_english(page: Page) -> None: ...

``new_page`` opens more (another visitor, another language) in one test, and
``axe_violations(page)`` lists what axe-core finds serious or critical on a page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

from tests.ops.tools import ROOT, TOOLS, unavailable

INSTALLER = "infra/browser/install.sh"
CHROMIUM = os.environ.get("URNE_CHROMIUM") or "/usr/bin/chromium"
# The version the installer pins, read from it: one place to change it.
_PIN = re.search(r"^AXE_VERSION=(\S+)", (ROOT / INSTALLER).read_text(), re.MULTILINE)
assert _PIN, f"{INSTALLER} pins no AXE_VERSION"
AXE_VERSION = _PIN.group(1)
AXE = TOOLS / f"axe-core-{AXE_VERSION}" / "axe.min.js"

# Where the browser sends what is not loopback: nothing listens on the discard port, so
# such a request fails at once (net::ERR_PROXY_CONNECTION_FAILED) instead of leaving the
# machine, and no name is even looked up. Chromium never proxies loopback (127.0.0.1,
# localhost, [::1]), so the servers the tests start are reached directly.
NO_NETWORK_PROXY = "http://127.0.0.1:9"

# Playwright adds its own switches first (among them --disable-background-networking,
# --disable-component-update, --disable-sync and a --disable-features list that turns off
# OptimizationHints, MediaRouter, NetworkTimeServiceQuerying, PreconnectToSearch …);
# these come after. No --disable-features here: Chromium keeps only the last one given,
# which would switch Playwright's list back on (test_browser_tools checks it stays).
CHROMIUM_ARGS = (
    "--no-sandbox",  # chromium refuses to start as root with its sandbox on
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--disable-domain-reliability",
    "--no-pings",
    f"--proxy-server={NO_NETWORK_PROXY}",
)

DEFAULT_LOCALE = "fr-FR"  # the pages' default language (French, then English)
TIMEOUT_MS = 10_000  # per action and navigation: pages are served from loopback
IMPACTS = ("serious", "critical")


def chromium_path() -> str:
    """The browser's executable, or skip (fail under CI) when it is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"no browser at {CHROMIUM} (URNE_CHROMIUM); run {INSTALLER}")
    return CHROMIUM


def axe_source() -> str:
    """axe.min.js, or skip (fail under CI) when it is missing."""
    if not AXE.is_file():
        unavailable(f"axe-core {AXE_VERSION} is not installed ({AXE}); run {INSTALLER}")
    return AXE.read_text()


@contextmanager
def launched() -> Iterator[Browser]:
    """A headless chromium, closed (and Playwright's driver stopped) on leaving."""
    executable = chromium_path()
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@contextmanager
def new_page(browser: Browser, locale: str = DEFAULT_LOCALE, **context: Any) -> Iterator[Page]:
    """A page in a new browser context (no cookie or storage shared with another test)
    whose language (navigator.language, Accept-Language) is ``locale``; ``context`` goes
    to ``Browser.new_context`` (viewport, color_scheme, …)."""
    browser_context = browser.new_context(locale=locale, **context)
    try:
        browser_context.set_default_timeout(TIMEOUT_MS)
        yield browser_context.new_page()
    finally:
        browser_context.close()


def requests_of(page: Page) -> list[str]:
    """The URLs the page requests from now on (the list fills as it does)."""
    urls: list[str] = []

    def record(request: Request) -> None:
        urls.append(request.url)

    page.on("request", record)
    return urls


def axe_violations(page: Page, impacts: Collection[str] = IMPACTS,
                   options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """What axe-core finds wrong with the page as it is now, of these impacts (axe's:
    minor, moderate, serious, critical): its violation objects (id, impact, help,
    helpUrl, nodes …). ``options`` go to ``axe.run`` (runOnly, rules …).

    axe is evaluated in the page rather than added as a <script> element: a page whose
    Content-Security-Policy forbids inline scripts (as a voting site's should) would
    refuse the element, not the DevTools protocol's evaluation."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    results: dict[str, Any] = page.evaluate(
        "options => window.axe.run(document, options)", options or {})
    return [v for v in results["violations"] if v.get("impact") in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    """axe violations, one line each with the elements concerned: an assertion's message."""
    return "\n".join(
        f"{v['impact']} {v['id']}: {v['help']} "
        f"({', '.join(str(node['target']) for node in v['nodes'])}) {v['helpUrl']}"
        for v in violations) or "no violation"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless chromium per test module. Not per session: while Playwright's sync
    API is running, the main thread counts as inside its asyncio loop, so asyncio.run()
    there fails ("cannot be called from a running event loop"); stopping it after each
    module keeps that to the modules that drive the browser (about 2 s a launch). In
    such a module, run asyncio code in a thread of its own."""
    with launched() as browser:
        yield browser


@pytest.fixture
def locale() -> str:
    """The language of ``page``; a test changes it by parametrizing ``locale``."""
    return DEFAULT_LOCALE


@pytest.fixture
def page(chromium: Browser, locale: str) -> Iterator[Page]:
    """A page of its own for one test, in a new browser context."""
    with new_page(chromium, locale) as page:
        yield page
