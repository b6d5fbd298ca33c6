"""Persons, one-time sign-in codes and pseudonyms. No I/O here."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from urne.contracts.roles import ADMIN, ORGANISER, PARTICIPANT
from urne.services.identity.keyed import keyed_hash

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5  # wrong codes before the pending codes burn (CONSUL #279: brute force)
MAX_PENDING = 15  # codes of one address pending at once (limits.SENDS_TO_ADDRESS)

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
    email: str | None  # None for a person registered by SMS
    role: str
    created_at: datetime
    # Declared by the person (None until they do), and put as it is into their voting
    # tokens: a declared district is the person's word, nothing more, until the
    # electorate issue verifies it against a census.
    district: str | None = None
    # E.164, for a person registered by SMS (then no e-mail). Someone an agent registered
    # at a desk has neither, and signs in with a desk code (desk.py).
    phone: str | None = None


@dataclass(frozen=True)
class PendingCode:
    code_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class LoginCodes:
    """The codes sent to one address that are still pending: a new code does not void
    the one its owner may be typing (a stranger can ask for codes too). The address (a
    normalised e-mail address or an E.164 phone number, which has no "@": the two never
    meet) is stored as its keyed hash only (``codes_key``)."""

    key: str
    pending: tuple[PendingCode, ...]
    attempts_left: int  # wrong codes until every pending one is burnt
    version: int = 0  # each write adds one: writes are conditional on it

    def live(self, now: datetime) -> tuple[PendingCode, ...]:
        return tuple(p for p in self.pending if p.expires_at > now)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def departed_key(secret: str, address: str) -> str:
    """The keyed hash a deleted account leaves of its (normalised) address: who knows
    the address and the secret finds the person id; the table alone names no one."""
    return keyed_hash(secret, "urne-departed-v1", address)


def codes_key(secret: str, address: str) -> str:
    """Where an address's codes are stored: a keyed hash, so that the table does not
    tell whose sign-in is under way to whoever reads it without the secret."""
    return keyed_hash(secret, "urne-codes-v1", address)


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(secret: str, key: str, code: str) -> str:
    # Keyed so a leaked table does not give codes away by brute force offline.
    return keyed_hash(secret, key, code)


def with_new_code(secret: str, key: str, previous: LoginCodes | None, now: datetime,
                  code: str) -> LoginCodes:
    """``previous`` with one more pending code. The wrong codes already counted still
    count while a code is pending (asking for codes buys no guesses); once none is
    pending, a new code comes with every attempt."""
    live = previous.live(now) if previous else ()
    attempts = previous.attempts_left if previous and live else MAX_ATTEMPTS
    pending = (*live, PendingCode(hash_code(secret, key, code), now + CODE_TTL))
    return LoginCodes(key, pending[-MAX_PENDING:], attempts,
                      previous.version + 1 if previous else 0)


def code_matches(secret: str, codes: LoginCodes, code: str, now: datetime) -> bool:
    """Whether ``code`` is one of the pending codes (each compared in constant time)."""
    candidate = hash_code(secret, codes.key, code.strip())
    matches = [hmac.compare_digest(p.code_hash, candidate) for p in codes.live(now)]
    return codes.attempts_left > 0 and any(matches)


def after_wrong_code(codes: LoginCodes, now: datetime) -> LoginCodes:
    """One attempt fewer; the last one burns every pending code."""
    left = codes.attempts_left - 1
    return replace(codes, pending=codes.live(now) if left > 0 else (), attempts_left=left,
                   version=codes.version + 1)


def spent(codes: LoginCodes) -> LoginCodes:
    """Signed in: no code of this address works any more."""
    return replace(codes, pending=(), attempts_left=MAX_ATTEMPTS, version=codes.version + 1)


def pending_json(pending: tuple[PendingCode, ...]) -> str:
    """How stores keep pending codes: a JSON list, in the order they were sent."""
    return json.dumps([{"hash": p.code_hash, "expires_at": p.expires_at.isoformat()}
                       for p in pending])


def pending_from_json(text: str) -> tuple[PendingCode, ...]:
    return tuple(PendingCode(p["hash"], datetime.fromisoformat(p["expires_at"]))
                 for p in json.loads(text or "[]"))


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
    return keyed_hash(secret, person_id, poll_id)


def paper_voter(serial: str) -> str:
    """Who a paper ballot's voter key is derived from, in place of a person id: its
    serial, in a form no person id takes (ids are hex), so a paper never shares a voter
    key with a person."""
    return f"paper:{serial}"
