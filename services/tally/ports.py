"""What the tally core needs from storage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from urne.contracts.fields import Electorate, ResultsVisibility
from urne.counting.rules import PollRules
from urne.messaging.counting_rotation import Generation
from urne.services.tally.domain import Appended, LogState, StoredBallot, TallySheet


class TallyStore(Protocol):
    """A poll's sheet is written in three parts, each by the event that brings it, and
    each write leaves the other parts as they are: the events may come in any order, and
    at once, without one undoing another."""

    def save_rules(self, poll_id: str, rules: PollRules, rules_hash: str,
                   visibility: ResultsVisibility, electorate: Electorate = "open") -> None:
        """The frozen rules, results visibility and electorate (poll.opened)."""
        ...
    def save_eligible(self, poll_id: str, eligible: int) -> None:
        """A census poll's eligible people at the close (electorate.counted: identity
        sends the same number every time)."""
        ...
    def save_seal(self, poll_id: str, sealed_count: int, sealed_digest: str | None) -> None:
        """What the vote service sealed (ballot_box.sealed)."""
        ...
    def release(self, poll_id: str, released_at: datetime) -> None:
        """The organiser released the result (poll.result_released). Every delivery of a
        release carries the same time, so writing it again changes nothing."""
        ...
    def close(self, poll_id: str, closed_at: datetime) -> None:
        """The proposal service closed the poll (poll.closed; the same time on every
        delivery)."""
        ...
    def sheet(self, poll_id: str) -> TallySheet | None: ...
    def add_ballots(self, ballots: list[StoredBallot]) -> None:
        """The tally's copy. Idempotent on (poll, voter, sequence)."""
        ...
    def ballots(self, poll_id: str) -> Iterator[StoredBallot]:
        """Every ballot of the poll in the copy (the recount reads them all)."""
        ...
    def voter_ballots(self, poll_id: str, voter_keys: set[str]) -> list[StoredBallot]:
        """The copy's ballots of these voters."""
        ...
    def shard_ballots(self, poll_id: str, shard: int, shards: int) -> Iterator[StoredBallot]:
        """The copy's ballots of one counting shard's voters (``counting_shard``)."""
        ...
    def checkpoint(self, stream: str, shard: int) -> tuple[int, dict[str, dict[str, Any]]]:
        """A counting shard's checkpoint: the offset of the next message to apply (0 if
        none), and the partial count (``ShardCount.state``) of each poll it met."""
        ...
    def save_partials(self, stream: str, shard: int, previous: int | None, position: int,
                      states: dict[str, dict[str, Any]]) -> bool:
        """Move the shard's checkpoint to ``position`` with these polls' partials, if it
        is still at ``previous`` (compare-and-set: False, and nothing written, if another
        worker moved it). ``previous`` None: no position, write the partials (embedded,
        inside the caller's transaction)."""
        ...
    def save_checkpoints(self, stream: str,
                         moves: list[tuple[int, int, int, dict[str, dict[str, Any]]]]
                         ) -> list[bool]:
        """``save_partials`` for several shards at once: (shard, previous, position,
        states) each; whether each moved."""
        ...
    def partial(self, stream: str, shard: int, poll_id: str) -> dict[str, Any] | None: ...
    def partials(self, stream: str, shards: int, poll_id: str) -> dict[int, dict[str, Any]]:
        """The checkpointed partials of a poll, by shard: every shard that has one."""
        ...
    def withhold(self, poll_id: str, reason: str | None) -> None:
        """Record why the result is not signed (None: nothing withheld any more)."""
        ...
    def save_record(self, poll_id: str, chunks: dict[int, bytes],
                    tiles: dict[tuple[int, int], bytes], trackers: list[tuple[str, int]],
                    size: int, root: str) -> None:
        """Store the record (``domain.Publication``): its chunks, its tree's tiles and its
        trackers' positions, then its head (size and root) last, so a head is only ever
        seen over a whole record. Idempotent: written again, the same bytes."""
        ...
    def record_head(self, poll_id: str) -> tuple[int, str] | None:
        """The stored record's size and root, once it is whole."""
        ...
    def record_chunks(self, poll_id: str, chunks: range) -> list[bytes]:
        """These chunks of the record, in order (those stored)."""
        ...
    def record_tile(self, poll_id: str, level: int, index: int) -> bytes:
        """One tile of the record's tree; KeyError if there is none."""
        ...
    def tracker_position(self, poll_id: str, tracker: str) -> int | None:
        """The position of this tracker's entry in the record."""
        ...
    def save_result(self, poll_id: str, signed: dict[str, Any]) -> bool:
        """Store the signed result once; False if one is already stored."""
        ...
    def result(self, poll_id: str) -> dict[str, Any] | None: ...
    def awaiting(self) -> list[str]:
        """The sealed polls without a stored result (the check's to-do list)."""
        ...
    def done_awaiting(self, poll_id: str) -> None:
        """Its result is stored: off the check's list."""
        ...
    # --- the log, growing during the vote (urne.record.v2) ---------------------
    def logging(self) -> list[str]:
        """The polls whose log may still grow: rules known, no result stored."""
        ...
    def log_state(self, poll_id: str) -> LogState | None:
        """Where the poll's log stands (None: nothing logged yet)."""
        ...
    def log_pending(self, poll_id: str, cursor: dict[str, int], stream: str, shards: int
                    ) -> tuple[list[StoredBallot], dict[str, int]]:
        """The copy's ballots after ``cursor`` and up to what is whole (every one before
        the returned cursor is stored), and that cursor. A ballot is never after two
        cursors' worth: once logged, never pending again."""
        ...
    def hold_log(self, poll_id: str, holder: str, until: datetime, now: datetime) -> bool:
        """Hold the poll's log until ``until`` (renewed if already held by ``holder``);
        False if another holder's hold has not run out. One process appends at a time."""
        ...
    def append_log(self, poll_id: str, holder: str, previous: int, appended: Appended
                   ) -> bool:
        """Write an interval: its chunks, tiles and trackers, then the state after it, if
        the log is still at ``previous`` entries and held by ``holder`` (compare-and-set;
        False if not, and the state is left as it was)."""
        ...
    def save_tree_head(self, poll_id: str, size: int, signed: dict[str, Any]) -> None:
        """The signed head of the log at ``size`` (idempotent)."""
        ...
    def tree_heads(self, poll_id: str) -> list[dict[str, Any]]:
        """Every signed head of the poll's log, by size."""
        ...
    def copies_to_purge(self, before: datetime) -> list[str]:
        """The polls whose result was signed (its ``computed_at``) before ``before`` and
        whose copy of the ballots is still kept."""
        ...
    def purge_copy(self, poll_id: str, now: datetime, stream: str, shards: int) -> None:
        """Delete the poll's copy of the ballots (voter keys and choices) and its partial
        counts (each of ``stream``'s ``shards``: a worker reads its shard's all at every
        start), and say so; its result, stored record and tree heads stay. Idempotent."""
        ...
    # The counting streams' generations (``counting_rotation.GenerationStore``).
    def generations(self, stream: str) -> list[Generation]:
        """The generations whose streams may still exist, oldest first."""
        ...
    def open_generation(self, stream: str, generation: int, at: datetime) -> bool:
        """Record a generation unless it is already (compare-and-set)."""
        ...
    def generation_bound(self, stream: str, generation: int) -> None: ...
    def forget_generation(self, stream: str, generation: int) -> None: ...
    def positions(self, stream: str, shards: int) -> list[int]:
        """Every shard's checkpoint position (0 for a shard never checkpointed)."""
        ...
    def ping(self) -> None: ...
