"""People an agent registers at a desk: no e-mail address, no phone. No I/O here.

The agent hands them a printed card with a one-time **desk code** (and its QR code) to
sign in at a kiosk, or with the agent's help. Nothing reaches them to prove an
address, so the code carries all the strength: 80 random bits, written as 16 characters
of Crockford's base32 in groups of four (``7KQ2-M9XD-4RTB-H0WE``). Read aloud or typed
from paper, it forgives what people do: lower case, spaces and hyphens anywhere, ``O``
for ``0``, ``I`` and ``L`` for ``1``. Guessing one is hopeless (2^80 codes; wrong ones
are limited per client anyway), and only a keyed hash of it is stored.

A code signs in once, for ``DESK_CODE_TTL``; the agent may give the person a new card
(a lost one, a later poll), which voids the previous code. An agent can give codes to
the people registered at a desk only: never to someone who signs in by e-mail or SMS,
whose account would otherwise be theirs to take.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from urne.services.identity.keyed import keyed_hash

DESK_CODE_TTL = timedelta(days=30)  # a consultation's voting period, and then some
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
LENGTH = 16  # 80 bits
GROUP = 4
# What people write for what they mean (Crockford's decoding rules).
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True)
class DeskCode:
    """A person's current desk code, as stored: its keyed hash and when it expires."""

    person_id: str
    code_hash: str
    expires_at: datetime

    def valid(self, now: datetime) -> bool:
        return now < self.expires_at


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i:i + GROUP] for i in range(0, LENGTH, GROUP))


def normalise(text: str) -> str | None:
    """The code as generated (grouped, upper case), or None if ``text`` cannot be one."""
    raw = "".join(text.split()).replace("-", "").upper().translate(_READ_AS)
    if len(raw) != LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return "-".join(raw[i:i + GROUP] for i in range(0, LENGTH, GROUP))


def code_hash(secret: str, code: str) -> str:
    # Keyed (the code secret): a leaked table gives no code back, even by brute force.
    return keyed_hash(secret, "desk", code)


def issued(secret: str, person_id: str, code: str, now: datetime) -> DeskCode:
    return DeskCode(person_id, code_hash(secret, code), now + DESK_CODE_TTL)
