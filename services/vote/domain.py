"""Ballot boxes and the ballots in them. No I/O here."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from urne.counting.rules import PollRules

# Ballots of a poll are spread over this many storage partitions by voter key,
# so no partition grows with the size of the electorate. Changing it needs a
# data migration: it is part of the storage layout, not a tuning knob.
BALLOT_BUCKETS = 16


@dataclass(frozen=True)
class BallotBox:
    """The vote service's view of a poll: the frozen rules ballots are checked
    against, and whether ballots are still accepted."""

    poll_id: str
    rules: PollRules | None  # None when "closed" arrived before "opened"
    rules_hash: str | None
    status: Literal["open", "closed"]


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


def bucket(voter_key: str) -> int:
    return int(voter_key[:8], 16) % BALLOT_BUCKETS


def new_tracker() -> str:
    """A 60-bit random receipt code, grouped for reading aloud: ``K7Q2-M9XD-4RTA``."""
    raw = base64.b32encode(secrets.token_bytes(8)).decode()[:12]
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))
