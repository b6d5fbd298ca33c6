"""Persons, one-time sign-in codes and pseudonyms. No I/O here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from urne.contracts.roles import ADMIN, ORGANISER, PARTICIPANT

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5  # wrong codes before the code is burnt (CONSUL #279: brute force)
SEND_WINDOW = timedelta(hours=1)
MAX_SENDS_PER_WINDOW = 5  # codes sent to one address per window (SMS/e-mail bombing)

# Whether identity issues voting tokens for a poll (it follows poll.opened/closed).
VotingStatus = Literal["open", "closed"]


def voting_status(stored: str) -> VotingStatus:
    """A status as read back from a store."""
    if stored == "open":
        return "open"
    if stored == "closed":
        return "closed"
    raise ValueError(f"unknown voting status {stored!r}")


@dataclass(frozen=True)
class Person:
    person_id: str
    email: str
    role: str
    created_at: datetime
    # Declared by the person (None until they do), and put as it is into their voting
    # tokens: a declared district is the person's word, nothing more, until the
    # electorate issue verifies it against a census.
    district: str | None = None


@dataclass(frozen=True)
class LoginCode:
    email: str
    code_hash: str
    expires_at: datetime
    attempts_left: int
    window_started_at: datetime
    sent_in_window: int


def normalise_email(email: str) -> str:
    return email.strip().lower()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(secret: str, email: str, code: str) -> str:
    # Keyed so a leaked table does not give codes away by brute force offline.
    return hmac.new(secret.encode(), f"{email}\x00{code}".encode(), hashlib.sha256).hexdigest()


def code_matches(secret: str, stored: LoginCode, code: str) -> bool:
    return hmac.compare_digest(stored.code_hash, hash_code(secret, stored.email, code.strip()))


def issue_code(secret: str, email: str, previous: LoginCode | None, now: datetime,
               code: str) -> LoginCode | None:
    """The next code for ``email``, or None when the send limit is reached."""
    window_start, sent = now, 0
    if previous and now - previous.window_started_at < SEND_WINDOW:
        window_start, sent = previous.window_started_at, previous.sent_in_window
    if sent >= MAX_SENDS_PER_WINDOW:
        return None
    return LoginCode(email=email, code_hash=hash_code(secret, email, code),
                     expires_at=now + CODE_TTL, attempts_left=MAX_ATTEMPTS,
                     window_started_at=window_start, sent_in_window=sent + 1)


def burn_attempt(code: LoginCode) -> LoginCode:
    return replace(code, attempts_left=code.attempts_left - 1)


def spent(code: LoginCode, now: datetime) -> LoginCode:
    """A used code: unusable, but keeps the send window so limits still hold."""
    return replace(code, code_hash="", expires_at=now, attempts_left=0)


def role_for(email: str, organisers: Collection[str], admins: Collection[str]) -> str:
    """The role an address registers with: from the operator's lists (the highest one
    it is on), a participant otherwise. Given once, at registration."""
    if email in admins:
        return ADMIN
    return ORGANISER if email in organisers else PARTICIPANT


def declare_district(person: Person, district: str) -> Person:
    """The person, living in ``district`` by their own word (a new declaration replaces
    the previous one)."""
    return replace(person, district=district)


def spread(districts: Sequence[str], count: int) -> list[str | None]:
    """Districts of ``count`` made-up voters: round-robin over ``districts``; none
    (None each) when there are no districts."""
    return [districts[i % len(districts)] if districts else None for i in range(count)]


def pseudonym(secret: str, person_id: str, poll_id: str) -> str:
    """Poll-scoped voter key: stable for one person in one poll, unlinkable across polls
    without the secret, which only identity holds."""
    return hmac.new(secret.encode(), f"{person_id}\x00{poll_id}".encode(),
                    hashlib.sha256).hexdigest()
