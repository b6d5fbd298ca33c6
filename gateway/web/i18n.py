"""French by default, and English: gettext catalogues read with Babel.

The catalogues are the ``.po`` files under ``locales/`` (msgids in English), read at
start and compiled in memory: no build step. A page's language is the one the person
chose (a cookie), else the first of French or English their browser asks for, else
French.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = Path(__file__).parent / "locales"
# Each language by its name in itself (the link that switches to it); a new one is a
# folder under locales/ and a line here.
LANGUAGES = {"fr": "Français", "en": "English"}
DEFAULT = "fr"


@cache
def translations(lang: str) -> Translations:
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def N_(msgid: str) -> str:
    """Marks a msgid for the catalogues where it is defined; translated where shown."""
    return msgid


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    if chosen in LANGUAGES:
        return chosen
    asked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        asked.append((weight, tag.split("-")[0].lower()))
    for _, lang in sorted(asked, key=lambda a: -a[0]):
        if lang in LANGUAGES:
            return lang
    return DEFAULT
