"""The tally's view of a poll, the counted ballots, the record and the result. No I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from urne.contracts.fields import ResultsVisibility
from urne.counting import count, new_tally
from urne.counting.rules import PollRules
from urne.platform.errors import Conflict, NotFound
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
    # From poll.opened with the rules (meaningless until they are known).
    visibility: ResultsVisibility = "after_close"
    # When an organiser released an embargoed result (poll.result_released); it may
    # come before anything else, and is kept whatever comes after.
    released_at: datetime | None = None

    @property
    def embargoed(self) -> bool:
        """Its result is under an embargo the organiser has not lifted yet."""
        return self.visibility == "embargoed" and self.released_at is None


def check_shown(sheet: TallySheet | None, poll_id: str, signed: bool) -> None:
    """Raise unless the signed result of a poll, its record and its proofs may be shown.

    Under an embargo nothing about the ballots is shown, signed or not, until the
    organiser releases it: ``result_embargoed`` says so whether the tally has signed yet
    or not (it gives nothing away). Otherwise, before signing: ``result_not_published``.
    """
    if sheet is None:
        raise NotFound(f"no poll {poll_id} is known to the tally", code="poll_not_found")
    if sheet.embargoed:
        raise Conflict("the result of this poll is embargoed until an organiser publishes it",
                       code="result_embargoed")
    if not signed:
        raise Conflict("the result of this poll is not published yet",
                       code="result_not_published")


def check_live(sheet: TallySheet | None, poll_id: str) -> PollRules:
    """The rules to count a live poll by; raise unless its running counts may be shown."""
    if sheet is None or sheet.rules is None:
        raise NotFound(f"no poll {poll_id} is open at the tally", code="poll_not_found")
    if sheet.visibility != "live":
        raise Conflict(f"this poll's results are {sheet.visibility.replace('_', ' ')}, "
                       "not live", code="results_hidden")
    return sheet.rules


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


class LiveCount:
    """Running counts: one ballot per voter, the one with the highest sequence.

    Ballots may come in any order and any number of times: a voter's ballot replaces
    the one counted for them only if its sequence is higher (the replaced one is
    removed from the tally), and a ballot seen again changes nothing. So the counts are
    those of ``counted(ballots)``, whatever the order.
    """

    def __init__(self, rules: PollRules) -> None:
        self._tally = new_tally(rules)
        self._current: dict[str, tuple[int, dict[str, Any]]] = {}  # voter -> (sequence, choice)
        self.received = 0  # ballots added, replaced and repeated ones included

    def add(self, ballot: StoredBallot) -> None:
        self.received += 1
        kept = self._current.get(ballot.voter_key)
        if kept is not None and kept[0] >= ballot.sequence:
            return  # an older ballot of this voter, or this one again
        self._tally.add(ballot.choice)  # first: a ballot that fails to count changes nothing
        if kept is not None:
            self._tally.remove(kept[1])
        self._current[ballot.voter_key] = (ballot.sequence, ballot.choice)

    @property
    def ballots(self) -> int:
        """Counted ballots: one per voter."""
        return self._tally.ballots

    def result(self) -> dict[str, Any]:
        """The tally in the published format, as if the poll closed now."""
        return self._tally.result()


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
