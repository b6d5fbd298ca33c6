"""VoteStore on SQLite (embedded profile).

Every method runs in a transaction that joins the caller's: the group commit wraps a
whole batch (its ballots, its closed shards and the events they produce) in one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime

from urne.counting.rules import rules_adapter
from urne.services.vote.domain import Ballot, BallotBox, Seal
from urne.storage.sqlite import SqliteDb


class SqliteVoteStore:
    def __init__(self, db: SqliteDb):
        self.db = db

    def save_ballot_box(self, box: BallotBox) -> None:
        rules = rules_adapter.dump_json(box.rules).decode() if box.rules else None
        with self.db.tx() as tx:
            tx.execute("INSERT INTO ballot_boxes (poll_id, rules, rules_hash, status, "
                       "cross_channel) VALUES (?, ?, ?, ?, ?) ON CONFLICT (poll_id) DO UPDATE "
                       "SET rules = excluded.rules, rules_hash = excluded.rules_hash, "
                       "status = excluded.status, cross_channel = excluded.cross_channel",
                       (box.poll_id, rules, box.rules_hash, box.status, box.cross_channel))

    def extend_close(self, poll_id: str, closes_at: datetime) -> None:
        when = closes_at.astimezone(UTC).isoformat()
        with self.db.tx() as tx:
            tx.execute("INSERT INTO ballot_boxes (poll_id, status, closes_at) "
                       "VALUES (?, 'open', ?) ON CONFLICT (poll_id) DO UPDATE SET "
                       "closes_at = excluded.closes_at "
                       "WHERE closes_at IS NULL OR closes_at < excluded.closes_at",
                       (poll_id, when))

    def ballot_box(self, poll_id: str) -> BallotBox | None:
        r = self.db.one("SELECT * FROM ballot_boxes WHERE poll_id = ?", (poll_id,))
        if r is None:
            return None
        rules = rules_adapter.validate_json(r["rules"]) if r["rules"] else None
        closes_at = datetime.fromisoformat(r["closes_at"]) if r["closes_at"] else None
        return BallotBox(r["poll_id"], rules, r["rules_hash"], r["status"], closes_at,
                         r["cross_channel"])

    def ballots_of(self, poll_id: str, voter_keys: Iterable[str]) -> dict[str, list[Ballot]]:
        keys = list(voter_keys)
        found: dict[str, list[Ballot]] = {}
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.db.query(f"SELECT * FROM ballots WHERE poll_id = ? AND voter_key IN "
                                   f"({marks})", (poll_id, *chunk)):
                found.setdefault(r["voter_key"], []).append(_ballot(r))
        return found

    def add_ballots(self, ballots: list[Ballot], again: Sequence[Ballot] = ()) -> None:
        # ``again`` needs nothing: no index table, and a batch's writes are one
        # transaction, so a stored ballot's row is all there is of it.
        if not ballots:
            return
        # A plain INSERT: admit() only writes ballots that are not stored, and the batch
        # read them in this same transaction, so a conflict is a bug to surface.
        with self.db.tx() as tx:
            tx.executemany(
                "INSERT INTO ballots (poll_id, voter_key, sequence, ballot_id, tracker, choice, "
                "channel, recorded_at, idempotency_key, request_digest, agent) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(b.poll_id, b.voter_key, b.sequence, b.ballot_id, b.tracker,
                  json.dumps(b.choice), b.channel, b.recorded_at.isoformat(),
                  b.idempotency_key, b.request_digest, b.agent) for b in ballots])

    def closed_shards(self, poll_id: str) -> set[int]:
        rows = self.db.query("SELECT shard FROM closed_shards WHERE poll_id = ?", (poll_id,))
        return {int(r["shard"]) for r in rows}

    def voters_and_box(self, poll_id: str, voter_keys: Iterable[str]
                       ) -> tuple[dict[str, list[Ballot]], set[int], datetime | None]:
        r = self.db.one("SELECT closes_at FROM ballot_boxes WHERE poll_id = ?", (poll_id,))
        closes_at = datetime.fromisoformat(r["closes_at"]) if r and r["closes_at"] else None
        return self.ballots_of(poll_id, voter_keys), self.closed_shards(poll_id), closes_at

    def close_shards(self, poll_id: str, shards: Iterable[int]) -> None:
        with self.db.tx() as tx:
            tx.executemany("INSERT OR IGNORE INTO closed_shards VALUES (?, ?)",
                                [(poll_id, s) for s in shards])

    def save_seal(self, seal: Seal) -> Seal:
        with self.db.tx() as tx:
            tx.execute("INSERT OR IGNORE INTO seals VALUES (?, ?, ?, ?)",
                       (seal.poll_id, seal.ballots_recorded, seal.ballots_digest,
                        seal.sealed_at.isoformat()))
            r = tx.execute("SELECT * FROM seals WHERE poll_id = ?", (seal.poll_id,)).fetchone()
        return Seal(r["poll_id"], r["ballots_recorded"], r["ballots_digest"],
                    datetime.fromisoformat(r["sealed_at"]))

    def stored_ballots(self, poll_id: str, chunk: int,
                       voters: Callable[[str], bool] | None = None
                       ) -> Iterator[list[Ballot]]:
        # Paper marks (sequence 0) are no ballots: never sealed, never sent to the tally.
        rows = [r for r in self.db.query("SELECT * FROM ballots WHERE poll_id = ? AND "
                                         "sequence > 0 ORDER BY voter_key, sequence",
                                         (poll_id,))
                if voters is None or voters(r["voter_key"])]
        for start in range(0, len(rows), chunk):
            yield [_ballot(r) for r in rows[start:start + chunk]]

    def ballot_voters(self, poll_id: str) -> Iterator[str]:
        for r in self.db.query("SELECT voter_key FROM ballots WHERE poll_id = ? AND "
                               "sequence > 0", (poll_id,)):
            yield r["voter_key"]

    def ballot_ids(self, poll_id: str) -> Iterator[str]:
        for r in self.db.query("SELECT ballot_id FROM ballots WHERE poll_id = ? AND "
                               "sequence > 0", (poll_id,)):
            yield r["ballot_id"]

    def save_result_signed(self, poll_id: str, signed_at: datetime) -> None:
        with self.db.tx() as tx:
            tx.execute("UPDATE ballot_boxes SET result_signed_at = ? WHERE poll_id = ?",
                       (signed_at.astimezone(UTC).isoformat(), poll_id))

    def ballots_to_purge(self, signed_before: datetime) -> list[str]:
        return [r["poll_id"] for r in self.db.query(
            "SELECT poll_id FROM ballot_boxes WHERE result_signed_at < ? AND "
            "ballots_purged_at IS NULL", (signed_before.astimezone(UTC).isoformat(),))]

    def purge_ballots(self, poll_id: str, now: datetime) -> None:
        with self.db.tx() as tx:
            tx.execute("DELETE FROM ballots WHERE poll_id = ?", (poll_id,))
            tx.execute("UPDATE ballot_boxes SET ballots_purged_at = ? WHERE poll_id = ?",
                       (now.astimezone(UTC).isoformat(), poll_id))

    def ping(self) -> None:
        self.db.ping()


def _ballot(r: sqlite3.Row) -> Ballot:
    return Ballot(r["poll_id"], r["voter_key"], r["sequence"], r["ballot_id"], r["tracker"],
                  json.loads(r["choice"]), r["channel"], datetime.fromisoformat(r["recorded_at"]),
                  r["idempotency_key"], r["request_digest"], r["agent"])
