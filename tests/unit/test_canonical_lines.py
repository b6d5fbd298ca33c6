"""The fast paths to canonical bytes give exactly what Trail of Bits' RFC 8785 encoder
gives, and refuse what it refuses: ``canonical_json`` (the standard library's encoder for
plain values) for any value, and the verifier's ``parse_canonical`` for canonical lines
and for every other spelling of the same value."""

from __future__ import annotations

import contextlib
import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_vectors import JCS_VECTORS
from urne.record.canonical import canonical_json, parse_canonical

pytestmark = pytest.mark.unit

# Values as JSON has them, with what parts JCS from the standard library: fractions and
# exponents, integers up to 2**53 - 1 (beyond, a JSON number is a double: the cases
# below), control characters, non-ASCII and astral characters in keys (UTF-16 order),
# lone surrogates.
scalars = (st.none() | st.booleans()
           | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(alphabet=st.characters(codec=None), max_size=8))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)


def spellings(value: object) -> list[bytes]:
    """The same value written as JSON in several ways (only the first may be canonical)."""
    out = []
    for kwargs in ({"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False},
                   {"sort_keys": True, "separators": (",", ":")},
                   {"separators": (",", ":"), "ensure_ascii": False},
                   {"indent": 1}, {}):
        with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate, written raw
            out.append(json.dumps(value, **kwargs).encode())  # type: ignore[arg-type]
    return out


def reference(value: object) -> bytes | None:
    """Trail of Bits' encoder alone, or None where it refuses."""
    try:
        return rfc8785.dumps(value)
    except ValueError:
        return None


def same_as_reference(value: object) -> None:
    expected = reference(value)
    if expected is None:
        with pytest.raises(ValueError):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


@given(values)
def test_canonical_json_writes_what_rfc8785_writes(value: object) -> None:
    same_as_reference(value)


@pytest.mark.parametrize("value", [
    {"b": 1, "a": 2, "\u20ac": 3, "\U0001f602": 4, "\ufb33": 5},  # UTF-16 order of keys
    ["\x00\x1f\x7f\u2028\"\\/", 2**53 - 1, -(2**53 - 1), True, None],
    {"entry": {"height": 3, "choice": {"ranking": ["b", "a"]}, "channel": "online"}},
    [1.0, 0.5, 1e16], (1, 2), {"a": 2**53}, "\ud800", {1: "a"}, float("nan"),
])
def test_values_on_both_sides_of_the_fast_path(value: object) -> None:
    same_as_reference(value)


@given(values)
def test_the_fast_path_gives_the_canonical_bytes_or_refuses_as_jcs_does(value: object
                                                                        ) -> None:
    try:
        expected: bytes | None = rfc8785.dumps(value)
    except ValueError:
        expected = None
    if expected is not None:
        parsed, canonical = parse_canonical(expected)
        assert canonical == expected and canonical_json(parsed) == expected
    for line in spellings(value):
        if expected is None:
            with pytest.raises(ValueError):
                parse_canonical(line)
        else:
            assert parse_canonical(line)[1] == expected


@pytest.mark.parametrize(("name", "text", "expected_hex"), JCS_VECTORS,
                         ids=[v[0] for v in JCS_VECTORS])
def test_the_rfc8785_vectors(name: str, text: str, expected_hex: str) -> None:
    expected = bytes.fromhex(expected_hex)
    assert parse_canonical(text.encode())[1] == expected
    assert parse_canonical(expected)[1] == expected


@pytest.mark.parametrize(("line", "canonical"), [
    (b'{"a":1e+16}', b'{"a":10000000000000000}'),  # Python would write 1e+16 back
    (b'{"a":1E3}', b'{"a":1000}'),
    (b'{"a":0.5}', b'{"a":0.5}'),
    (b'{"b":1,"a":2}', b'{"a":2,"b":1}'),
    (b'"\\u001F\\/"', b'"\\u001f/"'),
    (b'"\\u00e9"', '"é"'.encode()),
    (b'{"a":9007199254740991}', b'{"a":9007199254740991}'),
    # JSON numbers are doubles (I-JSON): beyond 2**53, the double it rounds to.
    (b'{"a":9007199254740993}', b'{"a":9007199254740992}'),
    (b'[1e400]', None),
])
def test_lines_the_standard_library_writes_otherwise(line: bytes, canonical: bytes | None
                                                     ) -> None:
    if canonical is None:
        with pytest.raises(ValueError):
            parse_canonical(line)
    else:
        assert parse_canonical(line)[1] == canonical


@pytest.mark.parametrize("line", [b'{"a":NaN}', b'{"a":-Infinity}', b'"\\ud800"',
                                  b'{"\\udc00":1}', b'{"a":', b'\xff'])
def test_lines_jcs_cannot_write_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_canonical(line)
