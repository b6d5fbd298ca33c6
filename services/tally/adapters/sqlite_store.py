"""TallyStore on SQLite (embedded profile)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from urne.contracts.fields import ResultsVisibility
from urne.counting.rules import PollRules, rules_adapter
from urne.services.tally.domain import StoredBallot, TallySheet
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
                   visibility: ResultsVisibility) -> None:
        self._upsert(poll_id, {"rules": rules_adapter.dump_json(rules).decode(),
                               "rules_hash": rules_hash, "results_visibility": visibility})

    def save_seal(self, poll_id: str, sealed_count: int, sealed_digest: str | None) -> None:
        self._upsert(poll_id, {"sealed_count": sealed_count, "sealed_digest": sealed_digest})

    def release(self, poll_id: str, released_at: datetime) -> None:
        self._upsert(poll_id, {"released_at": released_at.isoformat()})

    def sheet(self, poll_id: str) -> TallySheet | None:
        r = self.db.one("SELECT * FROM polls WHERE poll_id = ?", (poll_id,))
        if r is None:
            return None
        rules = rules_adapter.validate_json(r["rules"]) if r["rules"] else None
        return TallySheet(r["poll_id"], rules, r["rules_hash"], r["sealed_count"],
                          r["sealed_digest"], r["results_visibility"] or "after_close",
                          datetime.fromisoformat(r["released_at"]) if r["released_at"] else None)

    def add_ballots(self, ballots: list[StoredBallot]) -> None:
        with self.db.tx() as tx:
            tx.executemany("INSERT OR IGNORE INTO ballots VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(b.poll_id, b.voter_key, b.sequence, b.ballot_id, b.tracker,
                             json.dumps(b.choice), b.channel, b.recorded_at.isoformat())
                            for b in ballots])

    def ballots(self, poll_id: str) -> Iterator[StoredBallot]:
        for r in self.db.query("SELECT * FROM ballots WHERE poll_id = ?", (poll_id,)):
            yield _ballot(r)

    def count_ballots(self, poll_id: str) -> int:
        r = self.db.one("SELECT COUNT(*) AS n FROM ballots WHERE poll_id = ?", (poll_id,))
        return int(r["n"]) if r else 0

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

    def ping(self) -> None:
        self.db.ping()


def _ballot(r: sqlite3.Row) -> StoredBallot:
    return StoredBallot(r["poll_id"], r["voter_key"], r["sequence"], r["ballot_id"], r["tracker"],
                        json.loads(r["choice"]), r["channel"],
                        datetime.fromisoformat(r["recorded_at"]))
