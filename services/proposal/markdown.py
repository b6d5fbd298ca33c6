"""A proposal's Markdown, rendered to HTML that is safe to put in a page.

Two lines of defence: markdown-it-py renders CommonMark (with tables and
strikethrough) without interpreting raw HTML, so ``<script>`` in a body comes out as
the characters it is, and refuses ``javascript:``-like link targets; then ammonia
(nh3) keeps only the tags and attributes listed here, links to http(s) and mailto
only, each marked ``rel="nofollow noopener noreferrer"`` (a proposal's author is
nobody the platform vouches for). No images: a remote image would tell its host who
reads the proposal (attachments, stored by us, are for later).
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

TAGS = frozenset({
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del",
    "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "table", "thead", "tbody", "tr", "th", "td",
})
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener noreferrer"


@lru_cache(maxsize=512)  # the same bodies are read again and again; rendering is pure
def render(markdown: str) -> str:
    """The sanitised HTML of a Markdown text."""
    return nh3.clean(_MARKDOWN.render(markdown), tags=set(TAGS), attributes=ATTRIBUTES,
                     url_schemes=set(URL_SCHEMES), link_rel=LINK_REL)
