"""The results' SVG bars (urne.gateway.web.charts): lengths in proportion, labels
escaped, the winner marked by a pattern and a word, not by colour alone."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from urne.gateway.web.charts import Bar, bars

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_are_in_proportion_and_say_their_values() -> None:
    chart = ET.fromstring(str(bars("Q?", [Bar("Oui", 30, True, "gagnant"), Bar("Non", 10),
                                           Bar("Abstention", 0)])))
    assert chart.get("role") == "img" and chart.find(f"{SVG}title").text == "Q?"
    widths = [int(r.get("width")) for r in chart.iter(f"{SVG}rect")
              if r.get("height") != "6"]  # the bars, not the pattern's tiles
    assert abs(widths[0] - 3 * widths[1]) <= 1 and widths[2] == 0  # whole pixels
    texts = [t.text for t in chart.iter(f"{SVG}text")]
    assert texts == ["Oui", "30 gagnant", "Non", "10", "Abstention", "0"]
    fills = [r.get("fill") for r in chart.iter(f"{SVG}rect") if r.get("height") != "6"]
    assert fills == ["url(#won)", "#5b6770", "#5b6770"]


def test_labels_are_escaped_and_shortened() -> None:
    svg = str(bars("<b>", [Bar("<script>alert(1)</script> and a very long title", 1)]))
    assert "<script>" not in svg and "&lt;b&gt;" in svg
    assert ">&lt;script&gt;alert(1)&lt;/scrip…<" in svg  # 24 characters at most


def test_no_bars_no_division_by_zero() -> None:
    assert ET.fromstring(str(bars("empty", []))).get("viewBox") == "0 0 640 8"
    assert ET.fromstring(str(bars("zeros", [Bar("a", 0)]))) is not None
