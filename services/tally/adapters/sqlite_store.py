"""TallyStore on SQLite (embedded profile)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from urne.contracts.fields import Electorate, ResultsVisibility
from urne.counting.rules import PollRules, rules_adapter
from urne.messaging.counting_rotation import Generation
from urne.services.tally.domain import (
    Appended,
    LogState,
    StoredBallot,
    TallySheet,
    signed_before,
)
from urne.storage.sqlite import SqliteDb


class SqliteTallyStore:
    def __init__(self, db: SqliteDb):
        self.db = db

    def _upsert(self, poll_id: str, values: dict[str, Any]) -> None:
        """Write these columns of the poll's row, creating it if need be, and no other."""
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{n} = excluded.{n}" for n in values)
        with self.db.tx() as tx:
            tx.execute(f"INSERT INTO polls (poll_id, {names}) VALUES (?, {marks}) "
                       f"ON CONFLICT (poll_id) DO UPDATE SET {updates}",
                       (poll_id, *values.values()))

    def save_rules(self, poll_id: str, rules: PollRules, rules_hash: str,
                   visibility: ResultsVisibility, electorate: Electorate = "open") -> None:
        self._upsert(poll_id, {"rules": rules_adapter.dump_json(rules).decode(),
                               "rules_hash": rules_hash, "results_visibility": visibility,
                               "electorate": electorate})

    def save_eligible(self, poll_id: str, eligible: int) -> None:
        self._upsert(poll_id, {"eligible": eligible})

    def save_seal(self, poll_id: str, sealed_count: int, sealed_digest: str | None) -> None:
        self._upsert(poll_id, {"sealed_count": sealed_count, "sealed_digest": sealed_digest})

    def release(self, poll_id: str, released_at: datetime) -> None:
        self._upsert(poll_id, {"released_at": released_at.isoformat()})

    def close(self, poll_id: str, closed_at: datetime) -> None:
        self._upsert(poll_id, {"closed_at": closed_at.isoformat()})

    def sheet(self, poll_id: str) -> TallySheet | None:
        r = self.db.one("SELECT * FROM polls WHERE poll_id = ?", (poll_id,))
        if r is None:
            return None
        rules = rules_adapter.validate_json(r["rules"]) if r["rules"] else None
        return TallySheet(r["poll_id"], rules, r["rules_hash"], r["sealed_count"],
                          r["sealed_digest"], r["results_visibility"] or "after_close",
                          datetime.fromisoformat(r["released_at"]) if r["released_at"] else None,
                          r["withheld"],
                          datetime.fromisoformat(r["closed_at"]) if r["closed_at"] else None,
                          r["electorate"] or "open", r["eligible"])

    def add_ballots(self, ballots: list[StoredBallot]) -> None:
        with self.db.tx() as tx:
            tx.executemany("INSERT OR IGNORE INTO ballots (poll_id, voter_key, sequence, "
                           "ballot_id, tracker, choice, channel, recorded_at, position, agent) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(b.poll_id, b.voter_key, b.sequence, b.ballot_id, b.tracker,
                             json.dumps(b.choice), b.channel, b.recorded_at.isoformat(),
                             b.position, b.agent) for b in ballots])

    def ballots(self, poll_id: str) -> Iterator[StoredBallot]:
        for r in self.db.query("SELECT * FROM ballots WHERE poll_id = ?", (poll_id,)):
            yield _ballot(r)

    def voter_ballots(self, poll_id: str, voter_keys: set[str]) -> list[StoredBallot]:
        keys = sorted(voter_keys)
        found: list[StoredBallot] = []
        for i in range(0, len(keys), 500):  # SQLite's bound parameters are limited
            chunk = keys[i:i + 500]
            found += map(_ballot, self.db.query(
                f"SELECT * FROM ballots WHERE poll_id = ? AND voter_key IN "
                f"({', '.join('?' for _ in chunk)})", (poll_id, *chunk)))
        return found

    def shard_ballots(self, poll_id: str, shard: int, shards: int) -> Iterator[StoredBallot]:
        return (b for b in self.ballots(poll_id) if int(b.voter_key[:8], 16) % shards == shard)

    def checkpoint(self, stream: str, shard: int) -> tuple[int, dict[str, dict[str, Any]]]:
        r = self.db.one("SELECT position FROM checkpoints WHERE stream = ? AND shard = ?",
                        (stream, shard))
        rows = self.db.query("SELECT poll_id, state FROM partials WHERE stream = ? AND "
                             "shard = ?", (stream, shard))
        return (int(r["position"]) if r else 0,
                {row["poll_id"]: json.loads(row["state"]) for row in rows})

    def save_partials(self, stream: str, shard: int, previous: int | None, position: int,
                      states: dict[str, dict[str, Any]]) -> bool:
        with self.db.tx() as tx:
            if previous is not None:
                r = tx.execute("SELECT position FROM checkpoints WHERE stream = ? AND "
                               "shard = ?", (stream, shard)).fetchone()
                if (int(r[0]) if r else 0) != previous:
                    return False
                tx.execute("INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (stream, "
                           "shard) DO UPDATE SET position = excluded.position",
                           (stream, shard, position))
            tx.executemany("INSERT INTO partials VALUES (?, ?, ?, ?) ON CONFLICT (stream, "
                           "shard, poll_id) DO UPDATE SET state = excluded.state",
                           [(stream, shard, p, json.dumps(st)) for p, st in states.items()])
        return True

    def save_checkpoints(self, stream: str,
                         moves: list[tuple[int, int, int, dict[str, dict[str, Any]]]]
                         ) -> list[bool]:
        return [self.save_partials(stream, shard, previous, position, states)
                for shard, previous, position, states in moves]

    def partial(self, stream: str, shard: int, poll_id: str) -> dict[str, Any] | None:
        r = self.db.one("SELECT state FROM partials WHERE stream = ? AND shard = ? AND "
                        "poll_id = ?", (stream, shard, poll_id))
        return json.loads(r["state"]) if r else None

    def partials(self, stream: str, shards: int, poll_id: str) -> dict[int, dict[str, Any]]:
        return {int(r["shard"]): json.loads(r["state"]) for r in self.db.query(
            "SELECT shard, state FROM partials WHERE stream = ? AND poll_id = ? AND shard < ?",
            (stream, poll_id, shards))}

    def withhold(self, poll_id: str, reason: str | None) -> None:
        self._upsert(poll_id, {"withheld": reason})

    def save_record(self, poll_id: str, chunks: dict[int, bytes],
                    tiles: dict[tuple[int, int], bytes], trackers: list[tuple[str, int]],
                    size: int, root: str) -> None:
        # One transaction: SQLite has no partial record to fear; the head still goes last.
        with self.db.tx() as tx:
            tx.executemany("INSERT OR REPLACE INTO record_chunks VALUES (?, ?, ?)",
                           [(poll_id, i, lines) for i, lines in chunks.items()])
            tx.executemany("INSERT OR REPLACE INTO record_tiles VALUES (?, ?, ?, ?)",
                           [(poll_id, lv, i, h) for (lv, i), h in tiles.items()])
            tx.executemany("INSERT OR REPLACE INTO record_trackers VALUES (?, ?, ?)",
                           [(poll_id, t, pos) for t, pos in trackers])
            tx.execute("INSERT OR REPLACE INTO record_heads VALUES (?, ?, ?)",
                       (poll_id, size, root))

    def record_head(self, poll_id: str) -> tuple[int, str] | None:
        r = self.db.one("SELECT size, root FROM record_heads WHERE poll_id = ?", (poll_id,))
        return (int(r["size"]), r["root"]) if r else None

    def record_chunks(self, poll_id: str, chunks: range) -> list[bytes]:
        if not chunks:
            return []
        return [bytes(r["lines"]) for r in self.db.query(
            "SELECT lines FROM record_chunks WHERE poll_id = ? AND chunk >= ? AND chunk < ? "
            "ORDER BY chunk", (poll_id, chunks.start, chunks.stop))]

    def record_tile(self, poll_id: str, level: int, index: int) -> bytes:
        r = self.db.one("SELECT hashes FROM record_tiles WHERE poll_id = ? AND level = ? AND "
                        "tile = ?", (poll_id, level, index))
        if r is None:
            raise KeyError((level, index))
        return bytes(r["hashes"])

    def tracker_position(self, poll_id: str, tracker: str) -> int | None:
        r = self.db.one("SELECT position FROM record_trackers WHERE poll_id = ? AND "
                        "tracker = ?", (poll_id, tracker))
        return int(r["position"]) if r else None

    def save_result(self, poll_id: str, signed: dict[str, Any]) -> bool:
        try:
            with self.db.tx() as tx:
                tx.execute("INSERT INTO results VALUES (?, ?)", (poll_id, json.dumps(signed)))
        except sqlite3.IntegrityError:
            return False
        return True

    def result(self, poll_id: str) -> dict[str, Any] | None:
        r = self.db.one("SELECT signed FROM results WHERE poll_id = ?", (poll_id,))
        return json.loads(r["signed"]) if r else None

    def awaiting(self) -> list[str]:
        rows = self.db.query("SELECT poll_id FROM polls WHERE sealed_count IS NOT NULL AND "
                             "poll_id NOT IN (SELECT poll_id FROM results) ORDER BY poll_id")
        return [r["poll_id"] for r in rows]

    def done_awaiting(self, poll_id: str) -> None:
        pass  # awaiting() asks the results table itself

    def logging(self) -> list[str]:
        rows = self.db.query("SELECT poll_id FROM polls WHERE rules IS NOT NULL AND poll_id "
                             "NOT IN (SELECT poll_id FROM results) ORDER BY poll_id")
        return [r["poll_id"] for r in rows]

    def log_state(self, poll_id: str) -> LogState | None:
        r = self.db.one("SELECT * FROM log_heads WHERE poll_id = ?", (poll_id,))
        if r is None:
            return None
        return LogState(int(r["size"]), r["root"], r["parent"],
                        tuple(json.loads(r["intervals"])), json.loads(r["cursor"]))

    def log_pending(self, poll_id: str, cursor: dict[str, int], stream: str, shards: int
                    ) -> tuple[list[StoredBallot], dict[str, int]]:
        # Embedded: the copy's rows are written in the transactions that count them, and
        # a rowid only grows, so the rowid of the last row read is the cursor.
        rows = self.db.query("SELECT rowid AS arrival, * FROM ballots WHERE poll_id = ? AND "
                             "rowid > ? ORDER BY rowid", (poll_id, cursor.get("rowid", 0)))
        if not rows:
            return [], cursor
        return [_ballot(r) for r in rows], {"rowid": int(rows[-1]["arrival"])}

    def hold_log(self, poll_id: str, holder: str, until: datetime, now: datetime) -> bool:
        return True  # one process holds an embedded store

    def append_log(self, poll_id: str, holder: str, previous: int, appended: Appended
                   ) -> bool:
        state = appended.state
        with self.db.tx() as tx:
            r = tx.execute("SELECT size FROM log_heads WHERE poll_id = ?", (poll_id,)).fetchone()
            if (int(r["size"]) if r else 0) != previous:
                return False
            tx.executemany("INSERT OR REPLACE INTO record_chunks VALUES (?, ?, ?)",
                           [(poll_id, i, lines) for i, lines in appended.chunks.items()])
            tx.executemany("INSERT OR REPLACE INTO record_tiles VALUES (?, ?, ?, ?)",
                           [(poll_id, lv, i, h) for (lv, i), h in appended.tiles.items()])
            tx.executemany("INSERT OR REPLACE INTO record_trackers VALUES (?, ?, ?)",
                           [(poll_id, t, pos) for t, pos in appended.trackers])
            tx.execute("INSERT OR REPLACE INTO log_heads VALUES (?, ?, ?, ?, ?, ?)",
                       (poll_id, state.size, state.root, state.parent,
                        json.dumps(list(state.intervals)), json.dumps(state.cursor)))
        return True

    def save_tree_head(self, poll_id: str, size: int, signed: dict[str, Any]) -> None:
        with self.db.tx() as tx:
            tx.execute("INSERT OR IGNORE INTO tree_heads VALUES (?, ?, ?)",
                       (poll_id, size, json.dumps(signed)))

    def tree_heads(self, poll_id: str) -> list[dict[str, Any]]:
        return [json.loads(r["signed"]) for r in self.db.query(
            "SELECT signed FROM tree_heads WHERE poll_id = ? ORDER BY size", (poll_id,))]

    def copies_to_purge(self, before: datetime) -> list[str]:
        rows = self.db.query("SELECT poll_id, signed FROM results WHERE poll_id NOT IN "
                             "(SELECT poll_id FROM purged_copies) ORDER BY poll_id")
        return [r["poll_id"] for r in rows if signed_before(r["signed"], before)]

    def purge_copy(self, poll_id: str, now: datetime, stream: str, shards: int) -> None:
        with self.db.tx() as tx:
            tx.execute("DELETE FROM ballots WHERE poll_id = ?", (poll_id,))
            tx.execute("DELETE FROM partials WHERE poll_id = ?", (poll_id,))
            tx.execute("INSERT OR IGNORE INTO purged_copies VALUES (?, ?)",
                       (poll_id, now.isoformat()))

    def generations(self, stream: str) -> list[Generation]:
        return [Generation(r["generation"], datetime.fromisoformat(r["opened_at"]),
                           bool(r["bound"])) for r in self.db.query(
            "SELECT generation, opened_at, bound FROM counting_generations WHERE stream = ? "
            "ORDER BY generation", (stream,))]

    def open_generation(self, stream: str, generation: int, at: datetime) -> bool:
        with self.db.tx() as tx:
            return tx.execute("INSERT OR IGNORE INTO counting_generations VALUES "
                              "(?, ?, ?, 0)", (stream, generation, at.isoformat())
                              ).rowcount == 1

    def generation_bound(self, stream: str, generation: int) -> None:
        with self.db.tx() as tx:
            tx.execute("UPDATE counting_generations SET bound = 1 WHERE stream = ? AND "
                       "generation = ?", (stream, generation))

    def forget_generation(self, stream: str, generation: int) -> None:
        with self.db.tx() as tx:
            tx.execute("DELETE FROM counting_generations WHERE stream = ? AND "
                       "generation = ?", (stream, generation))

    def positions(self, stream: str, shards: int) -> list[int]:
        found = {r["shard"]: int(r["position"]) for r in self.db.query(
            "SELECT shard, position FROM checkpoints WHERE stream = ?", (stream,))}
        return [found.get(shard, 0) for shard in range(shards)]

    def ping(self) -> None:
        self.db.ping()


def _ballot(r: sqlite3.Row) -> StoredBallot:
    return StoredBallot(r["poll_id"], r["voter_key"], r["sequence"], r["ballot_id"], r["tracker"],
                        json.loads(r["choice"]), r["channel"],
                        datetime.fromisoformat(r["recorded_at"]), r["position"], r["agent"])
