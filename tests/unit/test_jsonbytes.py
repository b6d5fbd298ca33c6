"""The message path's JSON (``urne.platform.jsonbytes``): orjson's bytes are the
standard library's wherever they are signed, and what orjson refuses is still written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from urne.platform import jsonbytes

# What envelopes hold: no floats (a test checks every contract schema), any string.
SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.text(alphabet=st.characters(exclude_categories=("Cs",))))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                      max_leaves=20)


def standard_canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


@given(VALUES)
def test_canonical_bytes_are_the_standard_librarys(value: Any) -> None:
    assert jsonbytes.canonical(value) == standard_canonical(value)


@given(VALUES)
def test_what_is_written_reads_back_the_same(value: Any) -> None:
    assert jsonbytes.loads(jsonbytes.dumps(value)) == value
    assert json.loads(jsonbytes.dumps(value)) == value


def test_every_code_point_is_escaped_as_the_standard_library_does() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert jsonbytes.canonical({"t": text}) == standard_canonical({"t": text})


@pytest.mark.parametrize("value", [{"n": 2**64}, {"n": -(2**63) - 1}, {1: "a", 2: "b"}])
def test_what_orjson_refuses_the_standard_library_writes(value: Any) -> None:
    assert jsonbytes.canonical(value) == standard_canonical(value)
    assert json.loads(jsonbytes.dumps(value)) == json.loads(json.dumps(value))


def test_a_lone_surrogate_is_escaped_on_the_wire_and_refused_in_signed_bytes() -> None:
    assert jsonbytes.dumps({"t": "\ud800"}) == b'{"t": "\\ud800"}'
    with pytest.raises(UnicodeEncodeError):
        jsonbytes.canonical({"t": "\ud800"})


@pytest.mark.parametrize("text", [b"{", b'{"a": NaN}', b"\xff", b"[" * 2000 + b"]" * 2000])
def test_unreadable_input_raises_what_callers_catch(text: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        jsonbytes.loads(text)
