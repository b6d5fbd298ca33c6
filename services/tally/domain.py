"""The tally's view of a poll, the counted ballots, the record and the result. No I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from urne.counting import count
from urne.counting.rules import PollRules
from urne.record import merkle
from urne.record.canonical import canonical_json

RESULT_FORMAT = "urne.result.v1"
LEAF_ENCODING = "sha256(0x00 || canonical_json({choice, tracker}))"


@dataclass(frozen=True)
class TallySheet:
    """The tally's sheet for one poll: the frozen rules to count by and, once the
    ballot box is sealed, what the vote service says it held."""

    poll_id: str
    rules: PollRules | None
    rules_hash: str | None
    sealed_count: int | None = None  # ballots the vote service stored, known at close
    sealed_digest: str | None = None  # ballot_set_digest of those ballots' ids


@dataclass(frozen=True)
class StoredBallot:
    poll_id: str
    voter_key: str
    sequence: int
    ballot_id: str
    tracker: str
    choice: dict[str, Any]
    channel: str
    recorded_at: datetime


def counted(ballots: Iterable[StoredBallot]) -> list[StoredBallot]:
    """One ballot per voter: the one with the highest sequence (the last revote)."""
    latest: dict[str, StoredBallot] = {}
    for b in ballots:
        kept = latest.get(b.voter_key)
        if kept is None or b.sequence > kept.sequence:
            latest[b.voter_key] = b
    return list(latest.values())


def record_entries(ballots: Iterable[StoredBallot]) -> list[dict[str, Any]]:
    """The public record: counted ballots by tracker, sorted, nothing else about voters."""
    return sorted(({"tracker": b.tracker, "choice": b.choice} for b in counted(ballots)),
                  key=lambda e: e["tracker"])


def leaf_hashes(entries: list[dict[str, Any]]) -> list[bytes]:
    return [merkle.leaf_hash(canonical_json(e)) for e in entries]


def build_result(poll: TallySheet, ballots: list[StoredBallot], software_version: str,
                 now: datetime) -> dict[str, Any]:
    """The result document that gets signed: everything a verifier needs to recompute."""
    assert poll.rules is not None
    entries = record_entries(ballots)
    return {
        "format": RESULT_FORMAT,
        "poll_id": poll.poll_id,
        "rules": poll.rules.model_dump(mode="json"),
        "rules_hash": poll.rules_hash,
        "software_version": software_version,
        "record": {"size": len(entries), "root": merkle.root(leaf_hashes(entries)).hex(),
                   "leaf_encoding": LEAF_ENCODING},
        "ballots_received": len(ballots),
        "tally": count(poll.rules, (e["choice"] for e in entries)),
        "computed_at": now.isoformat(),
    }
