"""Canonical JSON is RFC 8785, the JSON Canonicalization Scheme (JCS).

Record leaves, the rules hash and the signed result are hashed or signed over these
bytes, and auditors recompute them in whatever language they use. So the encoding is a
published standard with independent implementations and test vectors, not a home-made
variant: keys sorted by UTF-16 code units, numbers written as ECMAScript writes them,
only the escapes JSON requires, UTF-8 out. The encoder is Trail of Bits' ``rfc8785``;
tests/unit/test_vectors.py checks it against the RFC's own examples.

``rfc8785`` is pure Python (about 25 µs for a record entry here), and publication encodes
one entry per ballot, a million at a time; so values where the standard library's C
encoder provably writes JCS's bytes go through it (``_plain``), and the rest through
``rfc8785``. tests/unit/test_canonical_lines.py compares both with ``rfc8785`` on random
values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import rfc8785

# JCS writes integers up to 2**53 - 1 (what an IEEE double holds exactly) and refuses
# larger ones; ``rfc8785`` raises for them.
_MAX_SAFE_INTEGER = 2**53 - 1


_STDLIB = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           check_circular=False, allow_nan=False)


def _plain(value: Any) -> bool:
    """Whether the standard library writes ``value`` exactly as JCS does: nothing but
    strings, safe integers, booleans, null, lists and objects with ASCII keys. Numbers
    are where they part (JCS writes a double as ECMAScript does); keys sort alike by code
    point and by UTF-16 unit when ASCII; strings are escaped alike (only the quote, the
    backslash and control characters, with the same short forms and lower-case hex)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False  # floats, tuples, subclasses: rfc8785 decides


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``.

    Raises ``ValueError`` for what JCS cannot represent (lone surrogates, NaN and
    infinities, integers beyond 2**53 - 1, non-string keys) rather than hashing
    something another implementation would write differently.
    """
    if _plain(value):
        try:
            return _STDLIB.encode(value).encode()
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 refuses it, as JCS does
            pass
    return rfc8785.dumps(value)


class _NotPlain(Exception):
    """A line the standard library's encoder may not write as JCS does."""


def _plain_int(text: str) -> int:
    value = int(text)
    if abs(value) > _MAX_SAFE_INTEGER:
        raise _NotPlain
    return value


def _number(text: str) -> int | float:
    """An integer as JCS reads one: a double, so one beyond 2**53 is a float (written
    back as the double it rounds to), as in ECMAScript."""
    value = int(text)
    return value if abs(value) <= _MAX_SAFE_INTEGER else float(value)


def _no_float(text: str) -> float:
    raise _NotPlain  # also NaN and the infinities, which JCS refuses


# Numbers are where the standard library's JSON and JCS part (JCS writes a double as
# ECMAScript does: 1e16 is 10000000000000000, Python writes 1e+16): a decoder that
# stops at the first non-integer, or an integer JCS refuses.
_PLAIN = json.JSONDecoder(parse_float=_no_float, parse_int=_plain_int,
                          parse_constant=_no_float)


def parse_canonical(line: bytes) -> tuple[Any, bytes]:
    """A line of JSON's value and that value's canonical bytes: ``canonical_json`` of it,
    which for a line already canonical (the record's, as served) is the line itself.

    A fast path for the verifier, which hashes a million such lines: for an ASCII line
    without fractions or large integers, the standard library's encoder (keys sorted,
    no spaces) writes exactly JCS's bytes (ASCII keys sort the same by code point as by
    UTF-16 unit; both escape only the quote, the backslash and control characters, the
    same way), so a line it writes back unchanged is canonical. Anything else goes
    through ``canonical_json``. Raises ``ValueError`` for a line that is not JSON, or
    whose value JCS cannot write.
    """
    if line.isascii():
        try:
            value = _PLAIN.decode(line.decode())
            if json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode() == line:
                return value, line
        except (_NotPlain, UnicodeEncodeError):  # a lone surrogate, escaped: JCS refuses
            pass
    value = json.loads(line, parse_int=_number)
    return value, canonical_json(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ballot_set_digest(ballot_ids: Iterable[str]) -> str:
    """SHA-256 over the sorted ids of a set of ballots: equal digests, equal sets.

    The vote service seals a poll with the digest of its ballot store; the tally
    publishes only if its own ballots give the same digest (same count is not enough).
    """
    return sha256_hex("\n".join(sorted(ballot_ids)).encode())
