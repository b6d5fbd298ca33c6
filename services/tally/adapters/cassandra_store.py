"""TallyStore on Cassandra (distributed profile)."""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType

from urne.contracts.fields import Electorate, ResultsVisibility
from urne.counting.rules import PollRules, rules_adapter
from urne.messaging.counting_rotation import Generation
from urne.platform.logging import log_fields
from urne.services.tally.domain import (
    Appended,
    LogState,
    StoredBallot,
    TallySheet,
    signed_before,
)
from urne.storage.cassandra import (
    applied,
    guarded,
    ping,
    scan_buckets,
    utc,
    write_grouped,
    write_time,
)

# The copy's partitions per poll, by the first 32 bits of the voter key: the bits that
# also pick a voter's counting shard (modulo the shard count, a power of two up to 128),
# so a shard's ballots are the buckets b with b % shards == shard. Changing it needs a
# data migration.
BUCKETS = 128


def _bucket(voter_key: str) -> int:
    return int(voter_key[:8], 16) % BUCKETS


# The record's partitions (migration 006): chunks and tiles by ranges of their index,
# trackers by a hash of the tracker. Changing any of these needs a data migration.
CHUNKS_PER_PARTITION = 256
TILES_PER_PARTITION = 1024
TRACKER_BUCKETS = 1024

log = logging.getLogger(__name__)


def _tracker_bucket(tracker: str) -> int:
    return zlib.crc32(tracker.encode()) % TRACKER_BUCKETS


class CassandraTallyStore:
    def __init__(self, session: Session, keyspace: str):
        self.s = session
        ks = keyspace
        # The logs this process holds: (poll, holder) -> (when taken or last renewed,
        # when the hold runs out), as write timestamps; and per poll the last fence it
        # wrote at (``_fence``).
        self._holds: dict[tuple[str, str], tuple[int, int]] = {}
        self._fences: dict[str, int] = {}
        p = session.prepare
        # A sheet's three parts are written apart, each its own cells (plain upserts
        # commute): poll.opened, ballot_box.sealed and poll.result_released may come in
        # any order, even at once in two processes, and none undoes another.
        self._save_rules = p(f"UPDATE {ks}.polls SET rules = ?, rules_hash = ?, "
                             "results_visibility = ?, electorate = ? WHERE poll_id = ?")
        self._save_eligible = p(f"UPDATE {ks}.polls SET eligible = ? WHERE poll_id = ?")
        self._save_seal = p(f"UPDATE {ks}.polls SET sealed_count = ?, sealed_digest = ? "
                            "WHERE poll_id = ?")
        self._release = p(f"UPDATE {ks}.polls SET released_at = ? WHERE poll_id = ?")
        self._close = p(f"UPDATE {ks}.polls SET closed_at = ? WHERE poll_id = ?")
        self._poll = p(f"SELECT * FROM {ks}.polls WHERE poll_id = ?")
        # A plain upsert of an immutable row: counted again from a checkpoint, a ballot is
        # written again with the same values (its position is the same offset). Written
        # at the ballot's recorded time, so the cells' write time says no more than
        # ``recorded_at`` (docs/privacy.md, "Times").
        self._add = p(
            f"INSERT INTO {ks}.counted (poll_id, bucket, voter_key, sequence, position, "
            "ballot_id, tracker, choice, channel, recorded_at, agent) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?")
        self._ballots = p(f"SELECT * FROM {ks}.counted WHERE poll_id = ? AND bucket = ?")
        self._voter = p(f"SELECT * FROM {ks}.counted WHERE poll_id = ? AND bucket = ? "
                        "AND voter_key = ?")
        self._checkpoint = p(f"SELECT position, poll_id, state FROM {ks}.checkpoints "
                             "WHERE stream = ? AND shard = ?")
        self._partial = p(f"SELECT state FROM {ks}.checkpoints WHERE stream = ? AND "
                          "shard = ? AND poll_id = ?")
        # The compare-and-set of a checkpoint: on its static position, the first time
        # on its absence (a position is never stored as 0).
        self._move_from = p(f"UPDATE {ks}.checkpoints SET position = ? WHERE stream = ? "
                            "AND shard = ? IF position = ?")
        self._first = p(f"UPDATE {ks}.checkpoints SET position = ? WHERE stream = ? AND "
                        "shard = ? IF position = null")
        self._state = p(f"INSERT INTO {ks}.checkpoints (stream, shard, poll_id, state) "
                        "VALUES (?, ?, ?, ?)")
        self._withhold = p(f"UPDATE {ks}.polls SET withheld = ? WHERE poll_id = ?")
        self._save_result = p(f"INSERT INTO {ks}.results (poll_id, signed) VALUES (?, ?) "
                              "IF NOT EXISTS")
        self._result = p(f"SELECT signed FROM {ks}.results WHERE poll_id = ?")
        self._signed = p(f"SELECT poll_id, signed FROM {ks}.results")
        self._purged = p(f"SELECT poll_id FROM {ks}.purged_copies")
        self._drop_bucket = p(f"DELETE FROM {ks}.counted WHERE poll_id = ? AND bucket = ?")
        self._drop_partial = p(f"DELETE FROM {ks}.checkpoints WHERE stream = ? AND shard = ? "
                               "AND poll_id = ?")
        self._generations = p(f"SELECT generation, opened_at, bound FROM "
                              f"{ks}.counting_generations WHERE stream = ?")
        self._open_generation = p(f"INSERT INTO {ks}.counting_generations (stream, "
                                  "generation, opened_at, bound) VALUES (?, ?, ?, false) "
                                  "IF NOT EXISTS")
        self._generation_bound = p(f"UPDATE {ks}.counting_generations SET bound = true "
                                   "WHERE stream = ? AND generation = ? IF EXISTS")
        self._forget_generation = p(f"DELETE FROM {ks}.counting_generations WHERE "
                                    "stream = ? AND generation = ? IF EXISTS")
        self._mark_purged = p(f"INSERT INTO {ks}.purged_copies (poll_id, purged_at) "
                              "VALUES (?, ?)")
        # The record's entries are written at a timestamp the writer chooses: the log's
        # fence (``append_log``); the same bytes again at publication (``save_record``).
        self._chunk = p(f"INSERT INTO {ks}.record_chunks (poll_id, bucket, chunk, lines) "
                        "VALUES (?, ?, ?, ?) USING TIMESTAMP ?")
        self._chunks = p(f"SELECT chunk, lines FROM {ks}.record_chunks WHERE poll_id = ? "
                         "AND bucket = ? AND chunk >= ? AND chunk < ?")
        self._tile = p(f"INSERT INTO {ks}.record_tiles (poll_id, level, bucket, tile, hashes) "
                       "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?")
        self._read_tile = p(f"SELECT hashes FROM {ks}.record_tiles WHERE poll_id = ? AND "
                            "level = ? AND bucket = ? AND tile = ?")
        self._trackers = p(f"INSERT INTO {ks}.record_trackers (poll_id, bucket, start, lines) "
                           "VALUES (?, ?, ?, ?) USING TIMESTAMP ?")
        self._tracker_lines = p(f"SELECT lines FROM {ks}.record_trackers WHERE poll_id = ? "
                                "AND bucket = ?")
        self._head = p(f"INSERT INTO {ks}.record_heads (poll_id, size, root) VALUES (?, ?, ?)")
        self._read_head = p(f"SELECT size, root FROM {ks}.record_heads WHERE poll_id = ?")
        # The growing log (migration 008).
        self._new_log = p(f"INSERT INTO {ks}.log_heads (poll_id, size, root, parent, intervals, "
                          "cursor, holder, held_until) VALUES (?, 0, '', '', '[]', '{}', ?, ?) "
                          "IF NOT EXISTS")
        self._renew_log = p(f"UPDATE {ks}.log_heads SET held_until = ? WHERE poll_id = ? "
                            "IF holder = ?")
        self._take_log = p(f"UPDATE {ks}.log_heads SET holder = ?, held_until = ? WHERE "
                           "poll_id = ? IF held_until < ?")
        self._log_state = p(f"SELECT size, root, parent, intervals, cursor FROM {ks}.log_heads "
                            "WHERE poll_id = ?")
        self._move_log = p(f"UPDATE {ks}.log_heads SET size = ?, root = ?, parent = ?, "
                           "intervals = ?, cursor = ? WHERE poll_id = ? IF size = ? AND holder = ?")
        self._bound = p(f"SELECT position FROM {ks}.checkpoints WHERE stream = ? AND shard = ? "
                        "LIMIT 1")
        # Within one partition of the copy: the rows a shard counted since the cursor.
        self._since = p(f"SELECT * FROM {ks}.counted WHERE poll_id = ? AND bucket = ? AND "
                        "position >= ? AND position < ? ALLOW FILTERING")
        self._save_head = p(f"INSERT INTO {ks}.tree_heads (poll_id, size, signed) VALUES "
                            "(?, ?, ?)")
        self._heads = p(f"SELECT signed FROM {ks}.tree_heads WHERE poll_id = ?")
        self._log_on = p(f"INSERT INTO {ks}.logging (shelf, poll_id) VALUES (0, ?)")
        self._logging = p(f"SELECT poll_id FROM {ks}.logging WHERE shelf = 0")
        self._log_off = p(f"DELETE FROM {ks}.logging WHERE shelf = 0 AND poll_id = ?")
        self._await = p(f"INSERT INTO {ks}.awaiting (shelf, poll_id) VALUES (0, ?)")
        self._awaiting = p(f"SELECT poll_id FROM {ks}.awaiting WHERE shelf = 0")
        self._done = p(f"DELETE FROM {ks}.awaiting WHERE shelf = 0 AND poll_id = ?")
        for stmt in (self._save_rules, self._save_seal, self._release, self._close, self._poll,
                     self._save_eligible,
                     self._add,
                     self._ballots, self._voter, self._checkpoint, self._partial,
                     self._withhold, self._result, self._await, self._awaiting, self._done,
                     self._chunk, self._chunks, self._tile, self._read_tile, self._trackers,
                     self._tracker_lines, self._head, self._read_head, self._log_state,
                     self._bound, self._since, self._save_head, self._heads, self._log_on,
                     self._logging, self._log_off):
            stmt.is_idempotent = True

    @guarded
    def save_rules(self, poll_id: str, rules: PollRules, rules_hash: str,
                   visibility: ResultsVisibility, electorate: Electorate = "open") -> None:
        self.s.execute(self._log_on, (poll_id,))  # first: its log is never out of sight
        self.s.execute(self._save_rules, (rules_adapter.dump_json(rules).decode(), rules_hash,
                                          visibility, electorate, poll_id))

    @guarded
    def save_eligible(self, poll_id: str, eligible: int) -> None:
        self.s.execute(self._save_eligible, (eligible, poll_id))

    @guarded
    def save_seal(self, poll_id: str, sealed_count: int, sealed_digest: str | None) -> None:
        self.s.execute(self._await, (poll_id,))  # first: a seal is never out of its sight
        self.s.execute(self._save_seal, (sealed_count, sealed_digest, poll_id))

    @guarded
    def release(self, poll_id: str, released_at: datetime) -> None:
        # Every delivery of a release carries the same time (the poll's publication), so
        # writing it again changes nothing.
        self.s.execute(self._release, (released_at, poll_id))

    @guarded
    def close(self, poll_id: str, closed_at: datetime) -> None:
        self.s.execute(self._close, (closed_at, poll_id))

    @guarded
    def sheet(self, poll_id: str) -> TallySheet | None:
        r = self.s.execute(self._poll, (poll_id,)).one()
        if r is None:
            return None
        rules = rules_adapter.validate_json(r.rules) if r.rules else None
        return TallySheet(r.poll_id, rules, r.rules_hash, r.sealed_count, r.sealed_digest,
                          r.results_visibility or "after_close",
                          utc(r.released_at), r.withheld, utc(r.closed_at),
                          r.electorate or "open", r.eligible)

    @guarded
    def add_ballots(self, ballots: list[StoredBallot]) -> None:
        # Rows that share replicas travel together (write_grouped): a batch of ballots
        # costs a request per 32 rows or so, not one per ballot. Every insert is
        # idempotent, and the checkpoint moves only once all of them are written.
        write_grouped(self.s, [(self._add, (
            b.poll_id, _bucket(b.voter_key), b.voter_key, b.sequence, b.position,
            b.ballot_id, b.tracker, json.dumps(b.choice), b.channel, b.recorded_at, b.agent,
            write_time(b.recorded_at))) for b in ballots])

    def ballots(self, poll_id: str) -> Iterator[StoredBallot]:
        return map(_ballot, scan_buckets(self.s, self._ballots, poll_id, range(BUCKETS)))

    @guarded
    def voter_ballots(self, poll_id: str, voter_keys: set[str]) -> list[StoredBallot]:
        results = execute_concurrent_with_args(
            self.s, self._voter, [(poll_id, _bucket(k), k) for k in sorted(voter_keys)],
            concurrency=64, raise_on_first_error=True)
        return [_ballot(r) for _, rows in results for r in rows]

    def shard_ballots(self, poll_id: str, shard: int, shards: int) -> Iterator[StoredBallot]:
        return map(_ballot, scan_buckets(self.s, self._ballots, poll_id,
                                         range(shard, BUCKETS, shards)))

    @guarded
    def checkpoint(self, stream: str, shard: int) -> tuple[int, dict[str, dict[str, Any]]]:
        position, states = 0, {}
        for r in self.s.execute(self._checkpoint, (stream, shard)):
            position = r.position or 0
            if r.poll_id is not None and r.state is not None:
                states[r.poll_id] = json.loads(r.state)
        return position, states

    def _move(self, stream: str, shard: int, previous: int, position: int,
              states: dict[str, dict[str, Any]]) -> BatchStatement:
        batch = BatchStatement(BatchType.LOGGED)  # one partition: applied as one
        batch.add(self._first if previous == 0 else self._move_from,
                  (position, stream, shard) if previous == 0 else
                  (position, stream, shard, previous))
        for poll_id, state in states.items():
            batch.add(self._state, (stream, shard, poll_id, json.dumps(state)))
        return batch

    @guarded
    def save_partials(self, stream: str, shard: int, previous: int | None, position: int,
                      states: dict[str, dict[str, Any]]) -> bool:
        if previous is None:
            raise ValueError("a checkpoint in Cassandra always moves by compare-and-set")
        return applied(self.s.execute(self._move(stream, shard, previous, position, states)))

    @guarded
    def save_checkpoints(self, stream: str,
                         moves: list[tuple[int, int, int, dict[str, dict[str, Any]]]]
                         ) -> list[bool]:
        results = execute_concurrent(
            self.s, [(self._move(stream, *move), ()) for move in moves],
            concurrency=max(len(moves), 1), raise_on_first_error=True)
        return [applied(result) for _, result in results]

    @guarded
    def partial(self, stream: str, shard: int, poll_id: str) -> dict[str, Any] | None:
        r = self.s.execute(self._partial, (stream, shard, poll_id)).one()
        return json.loads(r.state) if r and r.state else None

    @guarded
    def partials(self, stream: str, shards: int, poll_id: str) -> dict[int, dict[str, Any]]:
        results = execute_concurrent_with_args(
            self.s, self._partial, [(stream, shard, poll_id) for shard in range(shards)],
            concurrency=shards, raise_on_first_error=True)
        return {shard: json.loads(r.state) for shard, (_, rows) in enumerate(results)
                for r in rows if r.state}

    @guarded
    def withhold(self, poll_id: str, reason: str | None) -> None:
        self.s.execute(self._withhold, (reason, poll_id))

    @guarded
    def save_record(self, poll_id: str, chunks: dict[int, bytes],
                    tiles: dict[tuple[int, int], bytes], trackers: list[tuple[str, int]],
                    size: int, root: str) -> None:
        # Now: the bytes the log's last append wrote (its fence's timestamps are earlier),
        # or the record stored whole from the copy for a result from before the log.
        self._write_entries(poll_id, chunks, tiles, trackers, time.time_ns() // 1000)
        self.s.execute(self._head, (poll_id, size, root))  # last: the record is whole

    def _write_entries(self, poll_id: str, chunks: dict[int, bytes],
                       tiles: dict[tuple[int, int], bytes],
                       trackers: list[tuple[str, int]], at: int) -> None:
        """The entries' chunks, tiles and trackers, each row written at ``at`` (the
        write's timestamp: the latest one wins)."""
        write_grouped(self.s, [(self._chunk, (poll_id, i // CHUNKS_PER_PARTITION, i, lines,
                                              at))
                               for i, lines in chunks.items()])
        write_grouped(self.s, [(self._tile, (poll_id, level, i // TILES_PER_PARTITION, i, h,
                                             at))
                               for (level, i), h in tiles.items()])
        # One row per tracker partition this record touches, keyed by the record's
        # first position (an append of later entries adds rows beside it).
        buckets: dict[int, list[str]] = {}
        for tracker, position in trackers:
            # The tracker as a JSON string: whatever it holds, no tab or newline.
            buckets.setdefault(_tracker_bucket(tracker), []).append(
                f"{json.dumps(tracker)}\t{position}\n")
        start = min((position for _, position in trackers), default=0)
        write_grouped(self.s, [(self._trackers, (poll_id, b, start, "".join(lines).encode(),
                                                 at))
                               for b, lines in buckets.items()])

    @guarded
    def record_head(self, poll_id: str) -> tuple[int, str] | None:
        r = self.s.execute(self._read_head, (poll_id,)).one()
        return (int(r.size), r.root) if r else None

    @guarded
    def record_chunks(self, poll_id: str, chunks: range) -> list[bytes]:
        if not chunks:
            return []
        buckets = range(chunks.start // CHUNKS_PER_PARTITION,
                        (chunks.stop - 1) // CHUNKS_PER_PARTITION + 1)
        results = execute_concurrent_with_args(
            self.s, self._chunks, [(poll_id, b, chunks.start, chunks.stop) for b in buckets],
            concurrency=len(buckets), raise_on_first_error=True)
        return [bytes(r.lines) for _, rows in results for r in rows]

    @guarded
    def record_tile(self, poll_id: str, level: int, index: int) -> bytes:
        r = self.s.execute(self._read_tile, (poll_id, level, index // TILES_PER_PARTITION,
                                             index)).one()
        if r is None:
            raise KeyError((level, index))
        return bytes(r.hashes)

    @guarded
    def tracker_position(self, poll_id: str, tracker: str) -> int | None:
        prefix = f"{json.dumps(tracker)}\t".encode()
        for r in self.s.execute(self._tracker_lines, (poll_id, _tracker_bucket(tracker))):
            for line in bytes(r.lines).split(b"\n"):
                if line.startswith(prefix):
                    return int(line[len(prefix):])
        return None

    @guarded
    def save_result(self, poll_id: str, signed: dict[str, Any]) -> bool:
        return applied(self.s.execute(self._save_result, (poll_id, json.dumps(signed))))

    @guarded
    def result(self, poll_id: str) -> dict[str, Any] | None:
        r = self.s.execute(self._result, (poll_id,)).one()
        return json.loads(r.signed) if r else None

    @guarded
    def awaiting(self) -> list[str]:
        return sorted(r.poll_id for r in self.s.execute(self._awaiting))

    @guarded
    def done_awaiting(self, poll_id: str) -> None:
        self.s.execute(self._done, (poll_id,))
        self.s.execute(self._log_off, (poll_id,))  # published: its log is whole

    # --- the growing log ---------------------------------------------------
    @guarded
    def logging(self) -> list[str]:
        return sorted(r.poll_id for r in self.s.execute(self._logging))

    @guarded
    def log_state(self, poll_id: str) -> LogState | None:
        r = self.s.execute(self._log_state, (poll_id,)).one()
        if r is None or not r.size:
            return None
        return LogState(int(r.size), r.root, r.parent, tuple(json.loads(r.intervals)),
                        json.loads(r.cursor))

    @guarded
    def log_pending(self, poll_id: str, cursor: dict[str, int], stream: str, shards: int
                    ) -> tuple[list[StoredBallot], dict[str, int]]:
        # Up to each shard's checkpoint: a worker writes a batch's rows before it moves
        # the checkpoint past them, so every row below it is there, and a row keeps the
        # position of the message that first brought it.
        bounds = execute_concurrent_with_args(
            self.s, self._bound, [(stream, shard) for shard in range(shards)],
            concurrency=shards, raise_on_first_error=True)
        moved = dict(cursor)
        reads = []
        for shard, (_, rows) in enumerate(bounds):
            row = rows.one() if hasattr(rows, "one") else next(iter(rows), None)
            bound = int(row.position or 0) if row is not None else 0
            since = cursor.get(str(shard), 0)
            if bound <= since:
                continue
            moved[str(shard)] = bound
            reads += [(poll_id, bucket, since, bound)
                      for bucket in range(shard, BUCKETS, shards)]
        results = execute_concurrent_with_args(self.s, self._since, reads, concurrency=64,
                                               raise_on_first_error=True) if reads else []
        return [_ballot(r) for _, rows in results for r in rows], moved

    @guarded
    def hold_log(self, poll_id: str, holder: str, until: datetime, now: datetime) -> bool:
        held = applied(self.s.execute(self._new_log, (poll_id, holder, until))) or \
            applied(self.s.execute(self._renew_log, (until, poll_id, holder))) or \
            applied(self.s.execute(self._take_log, (holder, until, poll_id, now)))
        if held:
            self._holds[(poll_id, holder)] = (write_time(now), write_time(until))
        else:
            self._holds.pop((poll_id, holder), None)
        return held

    def _fence(self, poll_id: str, holder: str) -> int | None:
        """The timestamp this holder's next entries are written at: after every write
        it made before, within its hold (after the time it was taken or renewed, before
        the time it runs out); None if it holds nothing here.

        Why: entries are written before the compare-and-set that moves the log, so a
        holder that stalled past its hold may still write them after another process
        took the log over and appended. Another takes it over only after the hold ran
        out (``IF held_until < now``), and writes at or after that time: the stalled
        holder's entries, written earlier than its hold's end, are older than the new
        holder's in every cell, and lose to them whatever order they arrive in.

        A clock stepped back by more than a hold finds its last fence past its hold's
        end: nothing is written until it catches up (its earlier entries would win)."""
        hold = self._holds.get((poll_id, holder))
        if hold is None:
            return None
        taken, until = hold
        at = max(taken, self._fences.get(poll_id, 0) + 1)
        if at >= until:
            log.warning("the poll's log is not appended to: this process wrote it later "
                        "than its hold now ends (its clock went back)",
                        extra=log_fields(poll_id=poll_id))
            return None
        self._fences[poll_id] = at
        return at

    @guarded
    def append_log(self, poll_id: str, holder: str, previous: int, appended: Appended
                   ) -> bool:
        # The entries first, then the state that covers them, if this holder still holds
        # the log at ``previous``: a reader of the state always finds its entries.
        at = self._fence(poll_id, holder)
        if at is None:
            return False  # not held here: the next check holds it first
        self._write_entries(poll_id, appended.chunks, appended.tiles, appended.trackers, at)
        state = appended.state
        return applied(self.s.execute(self._move_log, (
            state.size, state.root, state.parent, json.dumps(list(state.intervals)),
            json.dumps(state.cursor), poll_id, previous, holder)))

    @guarded
    def save_tree_head(self, poll_id: str, size: int, signed: dict[str, Any]) -> None:
        self.s.execute(self._save_head, (poll_id, size, json.dumps(signed)))

    @guarded
    def tree_heads(self, poll_id: str) -> list[dict[str, Any]]:
        return [json.loads(r.signed) for r in self.s.execute(self._heads, (poll_id,))]

    @guarded
    def copies_to_purge(self, before: datetime) -> list[str]:
        # Whole tables, but small ones: a row per poll ever signed.
        purged = {r.poll_id for r in self.s.execute(self._purged)}
        return sorted(r.poll_id for r in self.s.execute(self._signed)
                      if r.poll_id not in purged and signed_before(r.signed, before))

    @guarded
    def purge_copy(self, poll_id: str, now: datetime, stream: str, shards: int) -> None:
        # A partition delete per bucket: tombstones for whole partitions, not per row.
        execute_concurrent_with_args(self.s, self._drop_bucket,
                                     [(poll_id, b) for b in range(BUCKETS)],
                                     raise_on_first_error=True)
        # A row in each shard's checkpoint partition; its static position stays.
        execute_concurrent_with_args(self.s, self._drop_partial,
                                     [(stream, shard, poll_id) for shard in range(shards)],
                                     raise_on_first_error=True)
        self.s.execute(self._mark_purged, (poll_id, now))

    @guarded
    def generations(self, stream: str) -> list[Generation]:
        return [Generation(r.generation, utc(r.opened_at), bool(r.bound))
                for r in self.s.execute(self._generations, (stream,))]

    @guarded
    def open_generation(self, stream: str, generation: int, at: datetime) -> bool:
        return applied(self.s.execute(self._open_generation, (stream, generation, at)))

    @guarded
    def generation_bound(self, stream: str, generation: int) -> None:
        self.s.execute(self._generation_bound, (stream, generation))

    @guarded
    def forget_generation(self, stream: str, generation: int) -> None:
        self.s.execute(self._forget_generation, (stream, generation))

    @guarded
    def positions(self, stream: str, shards: int) -> list[int]:
        found = execute_concurrent_with_args(
            self.s, self._bound, [(stream, shard) for shard in range(shards)],
            concurrency=shards, raise_on_first_error=True)
        positions = []
        for _, rows in found:
            row = next(iter(rows), None)
            positions.append(int(row.position or 0) if row is not None else 0)
        return positions

    @guarded
    def ping(self) -> None:
        ping(self.s)


def _ballot(r: Any) -> StoredBallot:
    return StoredBallot(r.poll_id, r.voter_key, r.sequence, r.ballot_id, r.tracker,
                        json.loads(r.choice), r.channel, utc(r.recorded_at), r.position or 0,
                        r.agent)
