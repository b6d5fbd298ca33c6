"""Results as SVG bar charts, drawn on the server (no chart library, no CDN, no
script): pure functions from numbers to markup.

A chart repeats what the table beside it says, for the eye: it is an image with a text
alternative (``role="img"``, its title), and the winners are marked by a pattern and a
word as well as by colour, so nothing is told by colour alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

ROW = 34  # px per bar
LABEL = 180  # px for the labels
WIDTH = 640


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    marked: bool = False  # a winner, or a selected project
    note: str = ""  # said after the value (e.g. "winner")


def bars(title: str, items: list[Bar]) -> Markup:
    """Horizontal bars, longest for the largest value; each with its value in figures."""
    top = max((b.value for b in items), default=0) or 1
    span = WIDTH - LABEL - 90
    height = ROW * len(items) + 8
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
             f'width="100%" preserveAspectRatio="xMinYMin meet" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
             '<defs><pattern id="won" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="6" height="6" fill="#0b4f8a"/>'
             '<rect width="2" height="6" fill="#5d8fbd"/></pattern></defs>']
    for i, b in enumerate(items):
        y = 4 + i * ROW
        length = round(span * max(b.value, 0) / top)
        fill = "url(#won)" if b.marked else "#5b6770"
        parts.append(
            f'<text x="{LABEL - 8}" y="{y + 20}" text-anchor="end" font-size="14" '
            f'fill="#1a1a1a">{escape(_short(b.label))}</text>'
            f'<rect x="{LABEL}" y="{y + 6}" width="{length}" height="{ROW - 12}" '
            f'fill="{fill}"/>'
            f'<text x="{LABEL + length + 6}" y="{y + 20}" font-size="14" fill="#1a1a1a">'
            f'{b.value:,}{escape(" " + b.note if b.note else "")}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(label: str, most: int = 24) -> str:
    return label if len(label) <= most else label[:most - 1] + "…"
