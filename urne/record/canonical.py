"""Canonical JSON is RFC 8785, the JSON Canonicalization Scheme (JCS).

Record leaves, the rules hash and the signed result are hashed or signed over these
bytes, and auditors recompute them in whatever language they use. So the encoding is a
published standard with independent implementations and test vectors, not a home-made
variant: keys sorted by UTF-16 code units, numbers written as ECMAScript writes them,
only the escapes JSON requires, UTF-8 out. The encoder is Trail of Bits' ``rfc8785``;
tests/unit/test_vectors.py checks it against the RFC's own examples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``.

    Raises ``ValueError`` for what JCS cannot represent (lone surrogates, NaN and
    infinities, integers beyond 2**53 - 1, non-string keys) rather than hashing
    something another implementation would write differently.
    """
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ballot_set_digest(ballot_ids: Iterable[str]) -> str:
    """SHA-256 over the sorted ids of a set of ballots: equal digests, equal sets.

    The vote service seals a poll with the digest of its ballot store; the tally
    publishes only if its own ballots give the same digest (same count is not enough).
    """
    return sha256_hex("\n".join(sorted(ballot_ids)).encode())
