"""The fixtures of every tests/web module: the browser's (browser.py) and the page
tests' (pages.py)."""

from __future__ import annotations

from tests.web.browser import chromium, locale, page
from tests.web.pages import outbox, settings, web

__all__ = ["chromium", "locale", "outbox", "page", "settings", "web"]
