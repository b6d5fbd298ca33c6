"""Canonical JSON: one byte string per value, so hashes and signatures are stable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def canonical_json(value: Any) -> bytes:
    # Sorted keys, no whitespace, UTF-8: enough for our values (no floats in records).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ballot_set_digest(ballot_ids: Iterable[str]) -> str:
    """SHA-256 over the sorted ids of a set of ballots: equal digests, equal sets.

    The vote service seals a poll with the digest of its ballot store; the tally
    publishes only if its own ballots give the same digest (same count is not enough).
    """
    return sha256_hex("\n".join(sorted(ballot_ids)).encode())
