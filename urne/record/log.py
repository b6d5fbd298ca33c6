"""The public record as an append-only log (``urne.record.v2``): every accepted ballot,
revotes included, as entries that name their place and the ballot they replace.

An entry is ``{height, parent, tracker, choice, channel}`` and, for a revote,
``supersedes`` (the tracker of the same voter's ballot it replaces). ``height`` is its
index; ``parent`` chains it to the entry before (the hex leaf hash of entry
``height - 1``; the first entry's parent is the poll's rules hash, so a log belongs to one
poll and its rules). The Merkle tree (``urne.record.merkle``) is over the entries' leaf
hashes, so the root signed in a tree head commits to all of them, in order.

The log grows by intervals (one per signed tree head). Within an interval the entries are
in tracker order, and trackers are random: the order says nothing of when each ballot
came, so the record cannot be matched with the times people were seen voting.

Which entries count is recomputed by anyone from the entries alone (``counted``): those
no other entry names in ``supersedes``. The vote service, which admits a voter's ballots
one at a time, knows which ballot a revote replaces, so an entry may name one the log
does not hold yet (it came to the tally later); once the log is whole every name
resolves (``check``).

Pure: the tally gives each interval the ballots to append.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from urne.record import merkle
from urne.record.canonical import canonical_json

LEAF_ENCODING = "sha256(0x00 || canonical_json(entry))"
REQUIRED = frozenset({"height", "parent", "tracker", "choice", "channel"})
OPTIONAL = frozenset({"supersedes"})


class Ballot(NamedTuple):
    """A ballot as its entry shows it: ``replaces`` is the tracker of the voter's ballot
    this one replaces (None for a voter's first). A tuple: publication makes one per
    stored ballot, a million at a time, and a frozen dataclass costs several times more
    to build."""

    tracker: str
    choice: dict[str, Any]
    channel: str
    replaces: str | None = None


@dataclass(frozen=True)
class Tip:
    """Where a log stands: its size and what the next entry's ``parent`` is."""

    size: int
    parent: str

    @classmethod
    def empty(cls, rules_hash: str) -> Tip:
        return cls(0, rules_hash)


def leaf(entry: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(canonical_json(entry))


@dataclass(frozen=True)
class Interval:
    """Entries appended together, with each one's canonical JSON (the line stored and
    served) and leaf hash, computed once: at a million entries, encoding is most of
    publishing."""

    entries: list[dict[str, Any]]
    lines: list[bytes]
    leaves: list[bytes]
    tip: Tip


def interval(tip: Tip, new: Iterable[Ballot]) -> Interval:
    """The entries that append ``new`` (each ballot once: one seen twice is taken once)
    to a log at ``tip``, in tracker order, and the tip after them."""
    rows: dict[str, dict[str, Any]] = {}
    for b in new:
        row: dict[str, Any] = {"tracker": b.tracker, "choice": b.choice, "channel": b.channel}
        if b.replaces is not None:
            row["supersedes"] = b.replaces
        rows.setdefault(b.tracker, row)
    entries, lines, leaves = [], [], []
    size, parent = tip.size, tip.parent
    for tracker in sorted(rows):
        entry = {"height": size, "parent": parent, **rows[tracker]}
        line = canonical_json(entry)
        entries.append(entry)
        lines.append(line)
        leaves.append(merkle.leaf_hash(line))
        size, parent = size + 1, leaves[-1].hex()
    return Interval(entries, lines, leaves, Tip(size, parent))


def counted(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries that count: those no entry names as replaced."""
    replaced = {e["supersedes"] for e in entries if "supersedes" in e}
    return [e for e in entries if e["tracker"] not in replaced]


def channels(entries: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per channel, the entries of the log and those that count: the record's part of
    the reconciliation."""
    out: dict[str, dict[str, int]] = {}
    for e in entries:
        out.setdefault(e["channel"], {"entries": 0, "counted": 0})["entries"] += 1
    for e in counted(entries):
        out[e["channel"]]["counted"] += 1
    return dict(sorted(out.items()))


def check(entries: Sequence[dict[str, Any]], rules_hash: str,
          intervals: Sequence[int], leaves: Sequence[bytes] | None = None) -> str | None:
    """Why these entries are not a well-formed log, or None: every entry has exactly the
    known members, its height and its parent; trackers are unique; what ``supersedes``
    names is another entry, named by no other; within each interval (``intervals``: the sizes
    of the signed tree heads, in order, the last the log's size) entries are in tracker
    order. Messages name the entry. ``leaves``: the entries' leaf hashes, if known."""
    bounds = list(intervals)
    if bounds != sorted(set(bounds)) or (bounds and bounds[0] <= 0):
        return f"the tree heads' sizes {bounds[:5]}... do not grow"
    last = bounds[-1] if bounds else 0
    parent = rules_hash
    trackers: dict[str, int] = {}
    start = 0
    for height, entry in enumerate(entries):
        if not isinstance(entry, dict) or not REQUIRED <= set(entry) <= REQUIRED | OPTIONAL:
            return f"entry {height} does not have exactly the members of a record entry"
        if entry["height"] != height:
            return f"entry {height} says it is at height {entry['height']}: entries were " \
                   "inserted, deleted or reordered"
        if entry["parent"] != parent:
            return f"entry {height} does not chain to the entry before it (parent " \
                   f"{entry['parent']}, expected {parent})"
        tracker = entry["tracker"]
        if not isinstance(tracker, str) or not isinstance(entry["channel"], str) \
                or not entry["channel"]:
            return f"entry {height} has no tracker or channel"
        if tracker in trackers:
            return f"tracker {tracker} appears twice (entries {trackers[tracker]} and " \
                   f"{height}): one ballot entered twice"
        trackers[tracker] = height
        if height > start and tracker < entries[height - 1]["tracker"]:
            return f"entries {height - 1} and {height} are not in tracker order within " \
                   "their interval: the record was reordered"
        if bounds and height + 1 == bounds[0]:
            start = bounds.pop(0)
        parent = (leaves[height] if leaves is not None else leaf(entry)).hex()
    if last != len(entries):
        return f"the log has {len(entries)} entries, its last tree head {last}: entries " \
               "were deleted or added at its end"
    replaced: set[str] = set()
    for height, entry in enumerate(entries):
        named = entry.get("supersedes")
        if named is None:
            continue
        if named not in trackers or named == entry["tracker"]:
            return f"entry {height} supersedes tracker {named}, which is not another entry " \
                   "of the record"
        if named in replaced:  # two ballots would both be the voter's latest
            return f"tracker {named} is superseded by two entries (the second: entry " \
                   f"{height})"
        replaced.add(named)
    return None
