"""The browser fixtures (tests/web/browser.py) for every module here."""

from __future__ import annotations

from tests.web.browser import chromium, locale, page

__all__ = ["chromium", "locale", "page"]
