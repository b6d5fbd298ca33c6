"""The tally's view of a poll, the counted ballots, the record and the result. No I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from urne.contracts.fields import ResultsVisibility
from urne.counting import count, new_tally, tally_from_state
from urne.counting.rules import PollRules
from urne.counting.tally import Tally
from urne.platform.errors import Conflict, NotFound
from urne.record import merkle, tiles
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
    # Why the tally will not sign (the merged shard counts, the recount of its copy and
    # the seal disagree), as of its last check; None when nothing is withheld.
    withheld: str | None = None
    # When the proposal service closed the poll (poll.closed): signing needs it too.
    closed_at: datetime | None = None

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
    if not signed and sheet.withheld:
        raise Conflict("the result of this poll is withheld: its counts do not agree "
                       f"({sheet.withheld}); an operator has been alerted",
                       code="result_withheld")
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
    # Distributed: the offset of the counting-stream message that brought it (its
    # first); a shard's partial counts the ballots before its checkpoint's offset.
    position: int = 0


def counted(ballots: Iterable[StoredBallot]) -> list[StoredBallot]:
    """One ballot per voter: the one with the highest sequence (the last revote)."""
    latest: dict[str, StoredBallot] = {}
    for b in ballots:
        kept = latest.get(b.voter_key)
        if kept is None or b.sequence > kept.sequence:
            latest[b.voter_key] = b
    return list(latest.values())


class ShardCount:
    """One shard's running count of one poll: a partial tally (ARCHITECTURE.md D7).

    Every ballot of a voter travels in the voter's shard, so a shard alone decides
    which of a voter's ballots counts: the one with the highest sequence. Ballots may
    come in any order and any number of times (a redelivery, the vote service sending a
    poll's ballots again): a ballot replaces the one counted for its voter only if its
    sequence is higher, the replaced one is removed from the tally first, and a ballot
    seen again changes nothing. So the counts are those of ``counted(ballots)``,
    whatever the order, and partial counts of disjoint shards merge into the count of
    the whole poll.

    ``tally`` and ``received`` are the checkpoint (``state``); the voters' map is not:
    whoever restores a checkpoint gives back the ballots it covers (``remember``).
    """

    def __init__(self, rules: PollRules, tally: Tally[Any] | None = None,
                 received: int = 0) -> None:
        self.rules = rules
        self.tally = tally if tally is not None else new_tally(rules)
        self.received = received  # distinct ballots seen, replaced ones included
        # voter -> (sequence counted, its choice, bit mask of the sequences seen)
        self._voters: dict[str, tuple[int, dict[str, Any], int]] = {}

    def add(self, ballot: StoredBallot) -> bool:
        """Count a ballot; False if it was seen before (nothing changes)."""
        kept = self._voters.get(ballot.voter_key)
        bit = 1 << ballot.sequence
        if kept is not None and kept[2] & bit:
            return False
        if kept is None or ballot.sequence > kept[0]:
            self.tally.add(ballot.choice)  # first: a ballot that fails to count changes nothing
            if kept is not None:
                self.tally.remove(kept[1])
            self._voters[ballot.voter_key] = (ballot.sequence, ballot.choice,
                                              (kept[2] if kept else 0) | bit)
        else:  # an older ballot of this voter, come late: seen, not counted
            self._voters[ballot.voter_key] = (kept[0], kept[1], kept[2] | bit)
        self.received += 1
        return True

    def remember(self, ballot: StoredBallot) -> None:
        """A ballot the checkpoint already counts: back into the voters' map only."""
        kept = self._voters.get(ballot.voter_key)
        bit = 1 << ballot.sequence
        if kept is None or ballot.sequence > kept[0]:
            self._voters[ballot.voter_key] = (ballot.sequence, ballot.choice,
                                              (kept[2] if kept else 0) | bit)
        else:
            self._voters[ballot.voter_key] = (kept[0], kept[1], kept[2] | bit)

    @property
    def ballots(self) -> int:
        """Counted ballots: one per voter."""
        return self.tally.ballots

    def state(self) -> dict[str, Any]:
        return {"tally": self.tally.state(), "received": self.received}

    @classmethod
    def from_state(cls, rules: PollRules, state: dict[str, Any]) -> ShardCount:
        return cls(rules, tally_from_state(rules, state["tally"]), int(state["received"]))

    def result(self) -> dict[str, Any]:
        """The tally in the published format, as if the poll closed now."""
        return self.tally.result()


@dataclass(frozen=True)
class Merged:
    """Every shard's partial count of a poll, added up."""

    tally: Tally[Any]
    received: int
    shards: int  # partials found


def merge(rules: PollRules, states: Iterable[dict[str, Any]]) -> Merged:
    """Add up the shards' checkpointed partials (in any order: tallies are sums)."""
    total, received, shards = new_tally(rules), 0, 0
    for state in states:
        part = ShardCount.from_state(rules, state)
        total.merge(part.tally)
        received += part.received
        shards += 1
    return Merged(total, received, shards)


def record_entries(ballots: Iterable[StoredBallot]) -> list[dict[str, Any]]:
    """The public record: counted ballots by tracker, sorted, nothing else about voters."""
    return sorted(({"tracker": b.tracker, "choice": b.choice} for b in counted(ballots)),
                  key=lambda e: e["tracker"])


def leaf_hashes(entries: list[dict[str, Any]]) -> list[bytes]:
    return [merkle.leaf_hash(canonical_json(e)) for e in entries]


# A stored chunk of the record holds the entries of one level-0 tile of its tree.
RECORD_CHUNK = 1 << tiles.HEIGHT


@dataclass(frozen=True)
class Publication:
    """What publishing a poll stores: the result to sign, and the record it commits to in
    the form it is served from (chunks of NDJSON lines, the tree's tiles, each tracker's
    position), so no request ever rebuilds it."""

    result: dict[str, Any]
    chunks: dict[int, bytes]  # chunk index -> its entries' canonical JSON, a line each
    tiles: dict[tuple[int, int], bytes]
    trackers: list[tuple[str, int]]

    @property
    def size(self) -> int:
        return int(self.result["record"]["size"])

    @property
    def root(self) -> str:
        return str(self.result["record"]["root"])


def _no_tiles(level: int, index: int) -> bytes:
    raise KeyError((level, index))  # a new tree reads nothing


def publication(poll: TallySheet, ballots: list[StoredBallot], software_version: str,
                now: datetime) -> Publication:
    """The result document that gets signed (everything a verifier needs to recompute)
    and the stored record behind it. CPU-bound at scale: callers run it off their event
    loop."""
    assert poll.rules is not None
    entries = record_entries(ballots)
    lines = [canonical_json(e) for e in entries]
    tree = tiles.append(0, [merkle.leaf_hash(line) for line in lines], _no_tiles)
    # The signed root is the stored tiles' root: what proofs will be read from.
    root = tiles.TiledTree(len(lines), lambda level, index: tree[(level, index)]).root()
    result = {
        "format": RESULT_FORMAT,
        "poll_id": poll.poll_id,
        "rules": poll.rules.model_dump(mode="json"),
        "rules_hash": poll.rules_hash,
        "software_version": software_version,
        "record": {"size": len(entries), "root": root.hex(), "leaf_encoding": LEAF_ENCODING},
        "ballots_received": len(ballots),
        "tally": count(poll.rules, (e["choice"] for e in entries)),
        "computed_at": now.isoformat(),
    }
    chunks = {i // RECORD_CHUNK: b"".join(line + b"\n" for line in lines[i:i + RECORD_CHUNK])
              for i in range(0, len(lines), RECORD_CHUNK)}
    return Publication(result, chunks, tree,
                       [(e["tracker"], i) for i, e in enumerate(entries)])


def build_result(poll: TallySheet, ballots: list[StoredBallot], software_version: str,
                 now: datetime) -> dict[str, Any]:
    return publication(poll, ballots, software_version, now).result


def chunk_span(start: int, stop: int) -> range:
    """The stored chunks that hold the entries [start, stop)."""
    return range(start // RECORD_CHUNK, (stop - 1) // RECORD_CHUNK + 1) if stop > start \
        else range(0)


def chunk_lines(chunks: list[bytes], first_chunk: int, start: int, stop: int) -> list[bytes]:
    """The lines of entries [start, stop) from the chunks ``first_chunk`` onward."""
    lines = [line for chunk in chunks for line in chunk.split(b"\n")[:-1]]
    offset = start - first_chunk * RECORD_CHUNK
    return lines[offset:offset + stop - start]
