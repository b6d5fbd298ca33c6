"""Identifiers named at the edge that takes a ballot, and their public format.

The gateway names each ballot as it arrives (``ballot_id``, ``tracker``), so the
ballot is the same whoever records it and however often its message is delivered.
"""

from __future__ import annotations

import base64
import secrets


def new_ballot_id() -> str:
    """128 random bits, hex: the ballot's internal id (never published one by one)."""
    return secrets.token_hex(16)


def new_tracker() -> str:
    """A 60-bit random receipt code, grouped for reading aloud: ``K7Q2-M9XD-4RTA``."""
    raw = base64.b32encode(secrets.token_bytes(8)).decode()[:12]
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))
