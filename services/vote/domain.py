"""Ballot boxes, ballots, and the rule that admits a ballot. No I/O here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from urne.counting.rules import PollRules
from urne.record.canonical import canonical_json

# Ballots are enumerated (for the seal) by bucket of the voter key: at 1,000,000
# voters each of the 128 buckets holds ~7,800 voters, ~8,600 rows with 10 % revotes,
# under the ~10,000 rows we allow a partition. Part of the storage layout: changing
# it needs a data migration, not a restart.
ENUMERATION_BUCKETS = 128


@dataclass(frozen=True)
class BallotBox:
    """The vote service's view of a poll: the frozen rules ballots are checked
    against, and whether the close has been asked for."""

    poll_id: str
    rules: PollRules | None  # None when "closed" arrived before "opened"
    rules_hash: str | None
    status: Literal["open", "closed"]
    # Ballots received after it are refused (None: closed by hand only). Only ever
    # moved later (an extension), so the latest one known is the right one.
    closes_at: datetime | None = None
    # Whether a ballot cast in person is final (``in_person_final``: no online ballot of
    # that voter afterwards) or replaced by a later one like any (``latest_wins``).
    cross_channel: str = "latest_wins"


# Channels of a ballot cast in person, in the voter's own name (a paper is no one's).
IN_PERSON = frozenset({"desk"})
# The sequence of a paper mark: a row in the voter's ballots that is no ballot (never
# counted, sealed or sent to the tally), saying the person voted on paper at a desk.
PAPER_MARK = 0


@dataclass(frozen=True)
class Ballot:
    poll_id: str
    voter_key: str
    sequence: int  # 1 for the first ballot, +1 per revote; the highest one counts
    ballot_id: str
    tracker: str
    choice: dict[str, Any]
    channel: str
    recorded_at: datetime
    idempotency_key: str | None = None
    request_digest: str = ""  # of what the voter asked (choice, channel): see Admission
    # The agent who cast it at a desk or entered it from paper (their ``agent_key``, from
    # the token); None online. For the signed reconciliation by agent.
    agent: str | None = None


@dataclass(frozen=True)
class Seal:
    """What the ballot box held when every shard had passed the close marker."""

    poll_id: str
    ballots_recorded: int
    ballots_digest: str
    sealed_at: datetime


def request_digest(choice: dict[str, Any], channel: str) -> str:
    """Identifies what a request asked for, so a retry with the same idempotency key
    and another body is told apart from a true retry."""
    return hashlib.sha256(canonical_json({"channel": channel, "choice": choice})).hexdigest()


@dataclass(frozen=True)
class Request:
    """A ballot request, its token already checked: what the admission rule needs."""

    ballot_id: str
    tracker: str
    choice: dict[str, Any]
    channel: str
    received_at: datetime
    idempotency_key: str | None
    digest: str
    agent: str | None = None


@dataclass(frozen=True)
class Admitted:
    ballot: Ballot
    new: bool  # False: this very ballot, or the one its idempotency key names, is stored


@dataclass(frozen=True)
class Refused:
    code: str
    detail: str
    status: int


def admit(poll_id: str, voter_key: str, stored: list[Ballot], request: Request,
          max_ballots: int, cross_channel: str = "latest_wins") -> Admitted | Refused:
    """Decide one request of a voter given the voter's stored ballots (in any order).

    Deterministic: whoever decides, from the same stored ballots and the same request,
    writes the same row. That is what lets a message be processed twice (a worker
    paused while its shard moved on, a redelivery after a crash) without a second
    current ballot: the second write is the first one again.
    """
    if any(b.sequence == PAPER_MARK for b in stored):
        return Refused("voted_on_paper", "this person has voted on paper, at a desk, and a "
                       "paper ballot cannot be replaced", 409)
    for ballot in stored:
        if ballot.ballot_id == request.ballot_id:
            return Admitted(ballot, new=False)  # redelivered: already recorded
        if request.idempotency_key is not None and \
                ballot.idempotency_key == request.idempotency_key:
            if ballot.request_digest != request.digest:
                return Refused("idempotency_key_reused", "this Idempotency-Key was used for "
                               "another ballot; use a new key for a new ballot", 422)
            return Admitted(ballot, new=False)  # the client's retry: same receipt
    if cross_channel == "in_person_final" and request.channel not in IN_PERSON and \
            any(b.channel in IN_PERSON for b in stored):
        return Refused("voted_in_person", "this voter has voted in person, at a desk, and "
                       "in this poll a ballot cast in person is final", 409)
    sequence = max((b.sequence for b in stored), default=0) + 1
    if sequence > max_ballots:
        return Refused("ballot_limit_reached", f"a voter may cast {max_ballots} ballots in "
                       "this poll (the first and the revotes); the last one counts", 409)
    return Admitted(Ballot(
        poll_id=poll_id, voter_key=voter_key, sequence=sequence, ballot_id=request.ballot_id,
        tracker=request.tracker, choice=request.choice, channel=request.channel,
        recorded_at=recorded_time(request.received_at, request.channel),
        idempotency_key=request.idempotency_key, request_digest=request.digest,
        agent=request.agent), new=True)


def mark_paper(poll_id: str, voter_key: str, stored: list[Ballot], mark_id: str,
               received_at: datetime) -> Admitted | Refused:
    """Mark the voter as voting on paper, unless they have a ballot (deterministic, as
    ``admit``: the same mark again is the same row)."""
    for ballot in stored:
        if ballot.sequence == PAPER_MARK:
            return Admitted(ballot, new=False)  # marked already: a retry, or another agent
    if stored:
        return Refused("already_voted", "this person has voted in this poll already (online "
                       "or at a desk): a paper cannot replace their ballot; an assisted vote "
                       "at the desk can", 409)
    return Admitted(Ballot(poll_id=poll_id, voter_key=voter_key, sequence=PAPER_MARK,
                           ballot_id=mark_id, tracker="", choice={}, channel="paper",
                           recorded_at=to_day(received_at)), new=True)


def recorded_time(received_at: datetime, channel: str) -> datetime:
    """What is kept of a ballot's time: its minute, or its day for a ballot cast at a
    desk. Identity's action log keeps, to the second, which person an agent helped (or
    marked, or looked up), and desk ballots are few: with their minute they could be
    matched with those entries, without any secret."""
    return to_day(received_at) if channel in IN_PERSON else to_minute(received_at)


def to_day(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def to_minute(t: datetime) -> datetime:
    """What the vote and tally stores keep of a ballot's time: its minute (privacy by
    default: a time to the millisecond, matched with identity's sign-in records, could
    say whose ballot it is). Every store keeps it exactly, so a receipt read back from a
    store is the receipt first given."""
    return t.replace(second=0, microsecond=0)


def enumeration_bucket(voter_key: str) -> int:
    """The first 32 bits of the (hex) voter key, modulo ``ENUMERATION_BUCKETS``."""
    return int(voter_key[:8], 16) % ENUMERATION_BUCKETS

