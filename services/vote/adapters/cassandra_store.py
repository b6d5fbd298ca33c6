"""VoteStore on Cassandra (distributed profile).

A batch reads the partitions of its voters and writes its ballots concurrently: one
round of reads, one round of writes, whatever the batch size. Every statement is
idempotent (the edge names the ballot), so the driver may retry it, and a batch
redelivered after a crash writes the same rows again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from urne.counting.rules import rules_adapter
from urne.platform.logging import log_fields
from urne.services.vote.domain import (
    ENUMERATION_BUCKETS,
    PAPER_MARK,
    Ballot,
    BallotBox,
    Seal,
    enumeration_bucket,
)
from urne.storage.cassandra import (
    GROUP_ROWS,
    applied,
    guard,
    guarded,
    ping,
    scan_buckets,
    utc,
    write_grouped,
    write_time,
)

CONCURRENCY = 128  # requests in flight per batch
# Voters per read: a multi-partition IN is a coordinator's fan-out, so it stays small.
VOTERS_PER_READ = 32

log = logging.getLogger(__name__)


class CassandraVoteStore:
    def __init__(self, session: Session, keyspace: str):
        self.s = session
        ks = keyspace
        p = session.prepare
        self._save_box = p(f"INSERT INTO {ks}.ballot_boxes (poll_id, rules, rules_hash, status, "
                           "cross_channel) VALUES (?, ?, ?, ?, ?)")
        self._box = p(f"SELECT * FROM {ks}.ballot_boxes WHERE poll_id = ?")
        self._closes_at = p(f"SELECT closes_at FROM {ks}.ballot_boxes WHERE poll_id = ?")
        self._extend = p(f"UPDATE {ks}.ballot_boxes USING TIMESTAMP ? SET closes_at = ? "
                         "WHERE poll_id = ?")
        # One request for many voters' partitions (a batch's voters): the Python driver's
        # cost is per request, far more than per row.
        self._voters = p(f"SELECT * FROM {ks}.voter_ballots WHERE poll_id = ? "
                         "AND voter_key IN ?")
        # A ballot's rows (here, in ballot_ids and in paper_marks) are written at its
        # recorded time (``write_time``), not now: Cassandra keeps a write time with every
        # cell, which would otherwise keep the ballot's time to the microsecond
        # (docs/privacy.md, "Times").
        self._add = p(
            f"INSERT INTO {ks}.voter_ballots (poll_id, voter_key, sequence, ballot_id, tracker, "
            "choice, channel, recorded_at, idempotency_key, request_digest, agent) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?")
        self._add_id = p(f"INSERT INTO {ks}.ballot_ids (poll_id, bucket, ballot_id, voter_key) "
                         "VALUES (?, ?, ?, ?) USING TIMESTAMP ?")
        self._ids = p(f"SELECT ballot_id, voter_key FROM {ks}.ballot_ids WHERE poll_id = ? "
                      "AND bucket = ?")
        self._closed = p(f"SELECT shard FROM {ks}.closed_shards WHERE poll_id = ?")
        self._close = p(f"INSERT INTO {ks}.closed_shards (poll_id, shard) VALUES (?, ?)")
        # The only lightweight transaction, once per poll: two workers passing the last
        # markers together both seal, and both publish the seal stored first.
        self._save_seal = p(f"INSERT INTO {ks}.seals (poll_id, ballots_recorded, ballots_digest, "
                            "sealed_at) VALUES (?, ?, ?, ?) IF NOT EXISTS")
        # Retention (migration 007): the boxes, a row a poll, are read whole to find the
        # polls to purge; a purge deletes each voter's partition, found through
        # ballot_ids and paper_marks, then those indexes' buckets.
        self._add_mark = p(f"INSERT INTO {ks}.paper_marks (poll_id, bucket, voter_key) "
                           "VALUES (?, ?, ?) USING TIMESTAMP ?")
        self._marks = p(f"SELECT voter_key FROM {ks}.paper_marks WHERE poll_id = ? "
                        "AND bucket = ?")
        self._signed = p(f"UPDATE {ks}.ballot_boxes SET result_signed_at = ? WHERE poll_id = ?")
        self._boxes = p(f"SELECT poll_id, result_signed_at, ballots_purged_at "
                        f"FROM {ks}.ballot_boxes")
        self._drop_voter = p(f"DELETE FROM {ks}.voter_ballots WHERE poll_id = ? "
                             "AND voter_key = ?")
        self._drop_ids = p(f"DELETE FROM {ks}.ballot_ids WHERE poll_id = ? AND bucket = ?")
        self._drop_marks = p(f"DELETE FROM {ks}.paper_marks WHERE poll_id = ? AND bucket = ?")
        self._purged = p(f"UPDATE {ks}.ballot_boxes SET ballots_purged_at = ? WHERE poll_id = ?")
        for stmt in (self._save_box, self._box, self._closes_at, self._extend, self._voters,
                     self._add, self._add_id, self._ids, self._closed, self._close, self._add_mark,
                     self._marks, self._signed, self._boxes, self._drop_voter, self._drop_ids,
                     self._drop_marks, self._purged):
            stmt.is_idempotent = True

    @guarded
    def save_ballot_box(self, box: BallotBox) -> None:
        rules = rules_adapter.dump_json(box.rules).decode() if box.rules else None
        self.s.execute(self._save_box, (box.poll_id, rules, box.rules_hash, box.status,
                                        box.cross_channel))

    @guarded
    def ballot_box(self, poll_id: str) -> BallotBox | None:
        r = self.s.execute(self._box, (poll_id,)).one()
        if r is None:
            return None
        rules = rules_adapter.validate_json(r.rules) if r.rules else None
        # No status: only an extension arrived yet, before "opened".
        # No cross_channel: a box from before migration 005, where any later ballot counted.
        return BallotBox(r.poll_id, rules, r.rules_hash, r.status or "open", utc(r.closes_at),
                         r.cross_channel or "latest_wins")

    @guarded
    def extend_close(self, poll_id: str, closes_at: datetime) -> None:
        # The close time as the write's timestamp: the latest one wins.
        self.s.execute(self._extend, (write_time(closes_at), closes_at, poll_id))

    @guarded
    def ballots_of(self, poll_id: str, voter_keys: Iterable[str]) -> dict[str, list[Ballot]]:
        keys = list(voter_keys)
        chunks = [(poll_id, keys[i:i + VOTERS_PER_READ])
                  for i in range(0, len(keys), VOTERS_PER_READ)]
        results = execute_concurrent_with_args(self.s, self._voters, chunks,
                                               concurrency=CONCURRENCY, raise_on_first_error=True)
        found: dict[str, list[Ballot]] = {}
        for _, rows in results:
            for r in rows:
                found.setdefault(r.voter_key, []).append(_ballot(r))
        return found

    @guarded
    def add_ballots(self, ballots: list[Ballot], again: Sequence[Ballot] = ()) -> None:
        timed = [(b, write_time(b.recorded_at)) for b in ballots]
        statements: list[tuple[Any, tuple[Any, ...]]] = [(self._add, (
            b.poll_id, b.voter_key, b.sequence, b.ballot_id, b.tracker, json.dumps(b.choice),
            b.channel, b.recorded_at, b.idempotency_key, b.request_digest, b.agent, at))
            for b, at in timed]
        # Not atomic across the tables: the batch is acked only after every write
        # succeeded, and a batch that failed halfway is decided again; its ballots found
        # stored then come back as ``again``, and their index rows are written again.
        timed += [(b, write_time(b.recorded_at)) for b in again]
        write_grouped(self.s, statements + self._index_rows(timed), concurrency=CONCURRENCY)

    def _index_rows(self, timed: list[tuple[Ballot, int]]) -> list[tuple[Any, tuple[Any, ...]]]:
        """The index rows of ballots (each with its write time): a paper mark's in
        paper_marks, a ballot's id in ballot_ids."""
        statements: list[tuple[Any, tuple[Any, ...]]] = []
        indexed: dict[str, list[tuple[Ballot, int]]] = {}  # poll -> its ballots
        for b, at in timed:
            if b.sequence == PAPER_MARK:  # no ballot: not in the index the seal enumerates
                statements.append((self._add_mark, (b.poll_id, enumeration_bucket(b.voter_key),
                                                    b.voter_key, at)))
            else:
                indexed.setdefault(b.poll_id, []).append((b, at))
        # The ids go in runs of GROUP_ROWS, each run in one bucket (its first voter's):
        # a run is one partition, one mutation for Cassandra instead of one an id (a
        # third of a ballot's writes; measured in docs/performance.md). The seal scans
        # every bucket and reads the voter key from the row, so any bucket will do; runs
        # of 32 keep the buckets nearly as even as the voter keys did (~7,800 rows each
        # at a million, the fullest about 10,000 with revotes: docs/architecture.md). An
        # id written again (``again``) may land in a second bucket: the readers
        # below take each id once.
        for poll_ballots in indexed.values():
            for start in range(0, len(poll_ballots), GROUP_ROWS):
                run = poll_ballots[start:start + GROUP_ROWS]
                bucket = enumeration_bucket(run[0][0].voter_key)
                statements.extend((self._add_id, (b.poll_id, bucket, b.ballot_id, b.voter_key, at))
                                  for b, at in run)
        return statements

    @guarded
    def closed_shards(self, poll_id: str) -> set[int]:
        return _shards(self.s.execute(self._closed, (poll_id,)))

    @guarded
    def voters_and_box(self, poll_id: str, voter_keys: Iterable[str]
                       ) -> tuple[dict[str, list[Ballot]], set[int], datetime | None]:
        # The closed shards' and the close time's reads travel while the voters' are
        # read: a batch waited for one round trip to Cassandra, then for the others.
        closed = self.s.execute_async(self._closed, (poll_id,))
        box = self.s.execute_async(self._closes_at, (poll_id,))
        found = self.ballots_of(poll_id, voter_keys)
        row = box.result().one()
        return found, _shards(closed.result()), utc(row.closes_at) if row else None

    @guarded
    def close_shards(self, poll_id: str, shards: Iterable[int]) -> None:
        execute_concurrent_with_args(self.s, self._close, [(poll_id, s) for s in shards],
                                     raise_on_first_error=True)

    @guarded
    def save_seal(self, seal: Seal) -> Seal:
        result = self.s.execute(self._save_seal, (seal.poll_id, seal.ballots_recorded,
                                                  seal.ballots_digest, seal.sealed_at))
        if applied(result):
            return seal
        row = result.one()  # the seal another worker stored first
        return Seal(seal.poll_id, row.ballots_recorded, row.ballots_digest, utc(row.sealed_at))

    def stored_ballots(self, poll_id: str, chunk: int,
                       voters: Callable[[str], bool] | None = None
                       ) -> Iterator[list[Ballot]]:
        indexed: dict[str, str] = {}  # ballot id -> voter key, from the id index
        with guard():
            for r in scan_buckets(self.s, self._ids, poll_id, ENUMERATION_BUCKETS):
                if r.voter_key is None:  # written before migration 004
                    log.error("a ballot id without its voter key cannot be read back",
                              extra=log_fields(poll_id=poll_id, ballot_id=r.ballot_id))
                elif voters is None or voters(r.voter_key):
                    indexed[r.ballot_id] = r.voter_key
        ordered = sorted(set(indexed.values()))
        rows: set[str] = set()
        for start in range(0, len(ordered), chunk):
            found = self.ballots_of(poll_id, ordered[start:start + chunk])
            # A voter with a paper mark has no ballot; filtered all the same.
            ballots = [b for key in sorted(found) for b in found[key]
                       if b.sequence != PAPER_MARK]
            rows.update(b.ballot_id for b in ballots)
            yield ballots
        for ballot_id in sorted(set(indexed) - rows):
            # An id whose voter's rows do not hold it: its row was never written, or
            # another decision overwrote it. Not counted; said, with what to look for.
            log.error("a ballot id in the index has no ballot row", extra=log_fields(
                poll_id=poll_id, ballot_id=ballot_id, voter_key=indexed[ballot_id]))

    def ballot_ids(self, poll_id: str) -> Iterator[str]:
        for r in self._indexed(poll_id):
            yield r.ballot_id

    def ballot_voters(self, poll_id: str) -> Iterator[str]:
        for r in self._indexed(poll_id):
            if r.voter_key is not None:  # written before migration 004: unknown
                yield r.voter_key

    def _indexed(self, poll_id: str) -> Iterator[Any]:
        """The id index's rows of the poll, each id once."""
        seen: set[str] = set()  # an id a redelivered batch wrote in a second bucket
        with guard():
            for r in scan_buckets(self.s, self._ids, poll_id, ENUMERATION_BUCKETS):
                if r.ballot_id not in seen:
                    seen.add(r.ballot_id)
                    yield r

    @guarded
    def save_result_signed(self, poll_id: str, signed_at: datetime) -> None:
        self.s.execute(self._signed, (signed_at, poll_id))

    @guarded
    def ballots_to_purge(self, signed_before: datetime) -> list[str]:
        return [r.poll_id for r in self.s.execute(self._boxes)
                if r.result_signed_at is not None and r.ballots_purged_at is None
                and utc(r.result_signed_at) < signed_before]

    def purge_ballots(self, poll_id: str, now: datetime) -> None:
        with guard():
            voters = {r.voter_key for r in scan_buckets(self.s, self._ids, poll_id,
                                                        ENUMERATION_BUCKETS)
                      if r.voter_key is not None}
            voters.update(r.voter_key for r in scan_buckets(self.s, self._marks, poll_id,
                                                            ENUMERATION_BUCKETS))
            # The voters' rows first, the indexes that find them after: a stop midway
            # leaves every remaining row findable by the next purge.
            write_grouped(self.s, [(self._drop_voter, (poll_id, v)) for v in sorted(voters)],
                          concurrency=CONCURRENCY)
            write_grouped(self.s, [(stmt, (poll_id, b)) for stmt in (self._drop_ids,
                                                                     self._drop_marks)
                                   for b in range(ENUMERATION_BUCKETS)],
                          concurrency=CONCURRENCY)
            self.s.execute(self._purged, (now, poll_id))

    @guarded
    def ping(self) -> None:
        ping(self.s)


def _shards(rows: Iterable[Any]) -> set[int]:
    return {int(r.shard) for r in rows}


def _ballot(r: Any) -> Ballot:
    return Ballot(r.poll_id, r.voter_key, r.sequence, r.ballot_id, r.tracker,
                  json.loads(r.choice), r.channel, utc(r.recorded_at), r.idempotency_key,
                  r.request_digest, r.agent)
