"""The tally's view of a poll, the counted ballots, the record and the result. No I/O."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from urne.contracts.events import VOTER_CELLS, voter_cell
from urne.contracts.fields import Electorate, ResultsVisibility
from urne.counting import count, new_tally, tally_from_state
from urne.counting.rules import PollRules
from urne.counting.tally import Tally
from urne.platform.errors import Conflict, NotFound
from urne.record import log, merkle, tiles
from urne.record.canonical import canonical_json, parse_canonical

# What the tally signs now: the record is the log of every accepted ballot
# (urne.record.v2, ``urne.record.log``). Results signed as v1 (counted ballots only,
# {tracker, choice}, in tracker order) keep their record: it is rebuilt in their format.
RESULT_FORMAT = "urne.result.v2"
RECORD_FORMAT = "urne.record.v2"
LEAF_ENCODING = log.LEAF_ENCODING
TREE_HEAD_FORMAT = "urne.tree_head.v1"
RESULT_FORMAT_V1 = "urne.result.v1"
LEAF_ENCODING_V1 = "sha256(0x00 || canonical_json({choice, tracker}))"


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
    # Who may vote (poll.opened) and, for a census poll, how many eligible people its
    # electorate held at the close (electorate.counted, from identity): a census poll is
    # signed only with that number, in its reconciliation.
    electorate: Electorate = "open"
    eligible: int | None = None

    @property
    def electorate_missing(self) -> bool:
        """A census poll whose count of eligible people has not come yet."""
        return self.electorate == "census" and self.eligible is None

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
    # The agent who cast it at a desk or entered it from paper (``agent_key``), as the
    # vote service says; None online (and for ballots stored before agents were).
    agent: str | None = None


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

    ``tally``, ``received`` and ``cells`` are the checkpoint (``state``); the voters'
    map is not: whoever restores a checkpoint gives back the ballots it covers
    (``remember``).
    """

    def __init__(self, rules: PollRules, tally: Tally[Any] | None = None,
                 received: int = 0, cells: list[int] | None = None) -> None:
        self.rules = rules
        self.tally = tally if tally is not None else new_tally(rules)
        self.received = received  # distinct ballots seen, replaced ones included
        # ``received`` by voter cell (``voter_cell``), for ``ballots.missing``; None for a
        # partial checkpointed before cells were counted (its cells are unknown).
        self.cells = cells if cells is not None else \
            ([0] * VOTER_CELLS if received == 0 else None)
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
        if self.cells is not None:
            self.cells[voter_cell(ballot.voter_key)] += 1
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
        cells = {} if self.cells is None else {"cells": list(self.cells)}
        return {"tally": self.tally.state(), "received": self.received, **cells}

    @classmethod
    def from_state(cls, rules: PollRules, state: dict[str, Any]) -> ShardCount:
        received, cells = int(state["received"]), state.get("cells")
        known = [int(c) for c in cells] if isinstance(cells, list) else None
        if known is not None and (len(known) != VOTER_CELLS or sum(known) != received):
            known = None  # not counted as this code counts them: unknown
        return cls(rules, tally_from_state(rules, state["tally"]), received, known)

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


def signed_before(signed: str, moment: datetime) -> bool:
    """Whether a stored signed result (its JSON) was computed before ``moment``: the
    copy's retention runs from then. One that does not say when is not (kept)."""
    try:
        return datetime.fromisoformat(json.loads(signed)["result"]["computed_at"]) < moment
    except (ValueError, KeyError, TypeError):
        return False


def record_entries_v1(ballots: Iterable[StoredBallot]) -> list[dict[str, Any]]:
    """The v1 record: counted ballots by tracker, sorted, nothing else about voters."""
    return sorted(({"tracker": b.tracker, "choice": b.choice} for b in counted(ballots)),
                  key=lambda e: e["tracker"])


def log_ballots(ballots: Iterable[StoredBallot]) -> list[log.Ballot]:
    """The log's view of a voter-complete set of ballots: each replaces the same voter's
    ballot of the sequence before it."""
    by_voter: dict[str, list[StoredBallot]] = {}
    for b in ballots:
        by_voter.setdefault(b.voter_key, []).append(b)
    out = []
    for chain in by_voter.values():
        if len(chain) > 1:  # most voters vote once
            chain.sort(key=lambda b: b.sequence)
        previous: str | None = None
        for b in chain:
            out.append(log.Ballot(b.tracker, b.choice, b.channel, previous))
            previous = b.tracker
    return out


def agents(entries: list[dict[str, Any]], counting: set[str], agent_of: dict[str, str]
           ) -> dict[str, dict[str, dict[str, int]]]:
    """Per agent (``agent_key``), per channel, the log's entries they cast or entered and
    those that count (``counting``: their trackers): what each desk's own tally sheet is
    compared with. From the tally's copy: the record itself does not name agents."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for e in entries:
        agent = agent_of.get(e["tracker"])
        if agent is None:
            continue
        cell = out.setdefault(agent, {}).setdefault(e["channel"], {"entries": 0, "counted": 0})
        cell["entries"] += 1
        cell["counted"] += e["tracker"] in counting
    return {a: dict(sorted(channels.items())) for a, channels in sorted(out.items())}


def small_cells(by_agent: dict[str, dict[str, dict[str, int]]], min_cell: int
                ) -> tuple[dict[str, dict[str, dict[str, int]]], dict[str, dict[str, int]]]:
    """The agents' cells that may be published, and the others pooled per channel.

    A cell of fewer than ``min_cell`` entries (an agent's desk ballots, or papers) is not
    published alone: it would tell how few people came to one desk. It is added to its
    channel's pool, ``{"agents", "entries", "counted"}``, which the small desks check
    together (and which the record's counts by channel minus the published cells give
    anyway)."""
    shown: dict[str, dict[str, dict[str, int]]] = {}
    pooled: dict[str, dict[str, int]] = {}
    for agent, channels in by_agent.items():
        for channel, cell in channels.items():
            if cell["entries"] >= min_cell:
                shown.setdefault(agent, {})[channel] = cell
                continue
            pool = pooled.setdefault(channel, {"agents": 0, "entries": 0, "counted": 0})
            pool["agents"] += 1
            pool["entries"] += cell["entries"]
            pool["counted"] += cell["counted"]
    return shown, dict(sorted(pooled.items()))


def record_entries(rules_hash: str, ballots: Iterable[StoredBallot]) -> list[dict[str, Any]]:
    """The record of a poll whose log is written at once, at publication: one interval
    holding every ballot received."""
    return log.interval(log.Tip.empty(rules_hash), log_ballots(ballots)).entries


def leaf_hashes(entries: list[dict[str, Any]]) -> list[bytes]:
    return [log.leaf(e) for e in entries]


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
    # The whole record (v2: the log, with what was written during the vote) and its
    # entries' leaf hashes, for the checks before signing; chunks, tiles and trackers are
    # only what is still to write.
    entries: list[dict[str, Any]] | None = None
    leaves: list[bytes] | None = None

    @property
    def size(self) -> int:
        return int(self.result["record"]["size"])

    @property
    def counted(self) -> int:
        return counted_of(self.result)

    @property
    def root(self) -> str:
        return str(self.result["record"]["root"])


def counted_of(result: dict[str, Any]) -> int:
    """The ballots a signed result counts (v1: its record holds those only)."""
    return int(result.get("ballots_counted", result["record"]["size"]))


def _no_tiles(level: int, index: int) -> bytes:
    raise KeyError((level, index))  # a new tree reads nothing


@dataclass(frozen=True)
class LogState:
    """Where a poll's log stands while it grows (``urne.record.log``): its size, root and
    tip (what the next entry's parent is), the sizes at which it was appended to (the
    intervals, each a tree head), and the store's cursor into the copy (what it has
    logged: opaque here)."""

    size: int
    root: str
    parent: str
    intervals: tuple[int, ...]
    cursor: dict[str, int]

    @classmethod
    def empty(cls, rules_hash: str) -> LogState:
        return cls(0, merkle.root([]).hex(), rules_hash, (), {})

    @property
    def tip(self) -> log.Tip:
        return log.Tip(self.size, self.parent)


@dataclass(frozen=True)
class Appended:
    """What appending entries to a stored log writes: the chunks they touch (the last
    partial chunk written again, wider), the tree's tiles, their trackers' positions,
    and the log's state after them."""

    entries: list[dict[str, Any]]
    chunks: dict[int, bytes]
    tiles: dict[tuple[int, int], bytes]
    trackers: list[tuple[str, int]]
    state: LogState


ChunkReader = Callable[[int], bytes]  # a stored chunk of the log, b"" if none


@dataclass(frozen=True)
class Logged:
    """The log written during the vote, read ahead for the publication: its state, its
    entries and their leaf hashes, and readers of the pieces an append reads."""

    state: LogState
    entries: list[dict[str, Any]]
    leaves: list[bytes]
    read_chunk: ChunkReader
    read_tile: tiles.TileReader


def append_entries(state: LogState, added: log.Interval, read_chunk: ChunkReader,
                   read_tile: tiles.TileReader, cursor: dict[str, int]) -> Appended:
    """Store-ready form of an interval appended to the log at ``state``."""
    entries, lines = added.entries, added.lines
    size = state.size
    first = size // RECORD_CHUNK
    kept = size % RECORD_CHUNK
    # The old partial chunk's lines come first (a stored chunk may hold more: a write
    # that did not finish; only the log's own lines are kept).
    old = read_chunk(first).split(b"\n")[:kept] if kept else []
    if len(old) != kept:
        raise ValueError(f"chunk {first} holds {len(old)} lines, the log needs {kept}")
    row = [*old, *lines]
    chunks = {first + i // RECORD_CHUNK: b"".join(line + b"\n"
                                                  for line in row[i:i + RECORD_CHUNK])
              for i in range(0, len(row), RECORD_CHUNK)}
    tree = tiles.append(size, added.leaves, read_tile)
    end = size + len(lines)

    def read(level: int, index: int) -> bytes:
        return tree[(level, index)] if (level, index) in tree else read_tile(level, index)

    root = tiles.TiledTree(end, read).root().hex()
    parent = added.tip.parent if entries else state.parent
    intervals = (*state.intervals, end) if entries else state.intervals
    return Appended(entries, chunks if entries else {}, tree,
                    [(e["tracker"], e["height"]) for e in entries],
                    LogState(end, root, parent, intervals, cursor))


def partial_reads(size: int) -> tuple[int | None, list[tuple[int, int]]]:
    """What appending to a log of ``size`` entries reads: its partial chunk (None if the
    last chunk is full) and the partial tile of each level of its tree."""
    chunk = size // RECORD_CHUNK if size % RECORD_CHUNK else None
    width = 1 << tiles.HEIGHT
    reads, level, count = [], 0, size
    while count:
        if count % width:
            reads.append((level, count // width))
        level, count = level + 1, count // width
    return chunk, reads


def append_interval(state: LogState, ready: list[log.Ballot], read_chunk: ChunkReader,
                    read_tile: tiles.TileReader, cursor: dict[str, int]) -> Appended:
    """An interval of the log during the vote: ``ready`` ballots (each naming the ballot
    it replaces) appended to the log at ``state``; the store's cursor after them."""
    return append_entries(state, log.interval(state.tip, ready), read_chunk, read_tile, cursor)


def parse_lines(chunks: list[bytes], size: int) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The first ``size`` entries of the log from its chunks, in order, and their leaf
    hashes (over each entry's canonical JSON, as a verifier computes them: a stored line
    is not taken on trust)."""
    entries, leaves = [], []
    for line in [line for chunk in chunks for line in chunk.split(b"\n")[:-1]][:size]:
        entry, canonical = parse_canonical(line)
        entries.append(entry)
        leaves.append(merkle.leaf_hash(canonical))
    return entries, leaves


def tree_head(poll_id: str, rules_hash: str, state: LogState, now: datetime
              ) -> dict[str, Any]:
    """The tree head to sign for the log at ``state`` (urne.tree_head.v1); its time to
    the minute, as ballots' are."""
    return {"format": TREE_HEAD_FORMAT, "poll_id": poll_id, "rules_hash": rules_hash,
            "size": state.size, "root": state.root,
            "issued_at": now.replace(second=0, microsecond=0).isoformat()}


def log_disagreement(rules_hash: str, entries: list[dict[str, Any]], root: str,
                     heads: list[int], signed_heads: list[dict[str, Any]],
                     leaves: list[bytes]) -> str | None:
    """Why the log about to be signed is not what was published of it, or None: it must
    be a well-formed log, its stored tree's root the root of its entries, and every tree
    head signed during the vote the root of its prefix of that size. ``leaves``: the
    entries' leaf hashes, computed with them."""
    wrong = log.check(entries, rules_hash, heads, leaves)
    if wrong is not None:
        return f"the log is not well formed: {wrong}"
    sizes = [int(h["head"]["size"]) for h in signed_heads]
    roots = merkle.prefix_roots(leaves, [*sizes, len(entries)])
    if roots[len(entries)].hex() != root:
        return "the stored tree's root is not the root of the log's entries"
    for signed in signed_heads:
        head = signed["head"]
        if roots.get(int(head["size"]), b"").hex() != head["root"]:
            return f"the tree head signed at {head['size']} entries is not the log's prefix"
    return None


def publication(poll: TallySheet, ballots: list[StoredBallot], software_version: str,
                now: datetime, result_format: str = RESULT_FORMAT,
                logged: Logged | None = None,
                min_cell: int = 1) -> Publication:
    """The result document that gets signed (everything a verifier needs to recompute)
    and the stored record behind it; ``result_format`` v1 rebuilds the record of a result
    signed before v2. ``logged``: the log written during the vote (its state, its
    entries, and readers of its chunks and tiles); the ballots not in it yet are its last
    interval, and the record is the whole log. ``min_cell``: the fewest entries an
    agent's cell may hold to be published alone (``small_cells``). CPU-bound at scale:
    callers run it off their event loop."""
    assert poll.rules is not None and poll.rules_hash is not None
    if result_format == RESULT_FORMAT_V1:
        entries = record_entries_v1(ballots)
        lines = [canonical_json(e) for e in entries]
        tree = tiles.append(0, [merkle.leaf_hash(line) for line in lines], _no_tiles)
        root = tiles.TiledTree(len(lines), lambda level, index: tree[(level, index)]).root()
        chunks = {i // RECORD_CHUNK: b"".join(line + b"\n" for line in lines[i:i + RECORD_CHUNK])
                  for i in range(0, len(lines), RECORD_CHUNK)}
        record: dict[str, Any] = {"size": len(entries), "root": root.hex(),
                                  "leaf_encoding": LEAF_ENCODING_V1}
        result = _result(poll, software_version, now, result_format, record, len(ballots),
                         {}, count(poll.rules, (e["choice"] for e in entries)))
        return Publication(result, chunks, tree,
                           [(e["tracker"], i) for i, e in enumerate(entries)])
    logged = logged or Logged(LogState.empty(poll.rules_hash), [], [], lambda index: b"",
                              _no_tiles)
    state = logged.state
    in_log = {e["tracker"] for e in logged.entries}
    last = log.interval(state.tip, [b for b in log_ballots(ballots) if b.tracker not in in_log])
    done = append_entries(state, last, logged.read_chunk, logged.read_tile, state.cursor)
    entries = [*logged.entries, *last.entries]
    counting = log.counted(entries)
    record = {"format": RECORD_FORMAT, "size": len(entries), "root": done.state.root,
              "leaf_encoding": LEAF_ENCODING, "heads": list(done.state.intervals)}
    reconciliation: dict[str, Any] = {"channels": log.channels(entries)}
    by_agent = agents(entries, {e["tracker"] for e in counting},
                      {b.tracker: b.agent for b in ballots if b.agent is not None})
    if by_agent:  # no ballot was cast at a desk or entered from paper: nothing to say
        shown, pooled = small_cells(by_agent, min_cell)
        reconciliation["min_cell"] = min_cell
        if shown:
            reconciliation["agents"] = shown
        if pooled:
            reconciliation["agents_pooled"] = pooled
    if poll.eligible is not None:
        # A census poll: its electorate's eligible people at the close (counted by
        # identity) beside its voters (one counted ballot each), so turnout is signed.
        # Open to all, anyone could sign in: no such number, and the voters are
        # ``ballots_counted`` (and the v2 result stays as it was).
        reconciliation["eligible"] = poll.eligible
        reconciliation["voters"] = len(counting)
    numbers = {"ballots_counted": len(counting), "reconciliation": reconciliation}
    result = _result(poll, software_version, now, result_format, record, len(entries), numbers,
                     count(poll.rules, (e["choice"] for e in counting)))
    return Publication(result, done.chunks, done.tiles, done.trackers, entries,
                       [*logged.leaves, *last.leaves])


def _result(poll: TallySheet, software_version: str, now: datetime, result_format: str,
            record: dict[str, Any], received: int, numbers: dict[str, Any],
            tally: dict[str, Any]) -> dict[str, Any]:
    assert poll.rules is not None
    return {
        "format": result_format,
        "poll_id": poll.poll_id,
        "rules": poll.rules.model_dump(mode="json"),
        "rules_hash": poll.rules_hash,
        "software_version": software_version,
        "record": record,
        "ballots_received": received,
        **numbers,
        "tally": tally,
        "computed_at": now.isoformat(),
    }


def build_result(poll: TallySheet, ballots: list[StoredBallot], software_version: str,
                 now: datetime, result_format: str = RESULT_FORMAT) -> dict[str, Any]:
    return publication(poll, ballots, software_version, now, result_format).result


def chunk_span(start: int, stop: int) -> range:
    """The stored chunks that hold the entries [start, stop)."""
    return range(start // RECORD_CHUNK, (stop - 1) // RECORD_CHUNK + 1) if stop > start \
        else range(0)


def chunk_lines(chunks: list[bytes], first_chunk: int, start: int, stop: int) -> list[bytes]:
    """The lines of entries [start, stop) from the chunks ``first_chunk`` onward."""
    lines = [line for chunk in chunks for line in chunk.split(b"\n")[:-1]]
    offset = start - first_chunk * RECORD_CHUNK
    return lines[offset:offset + stop - start]
