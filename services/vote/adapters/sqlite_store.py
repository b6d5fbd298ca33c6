"""VoteStore on SQLite (embedded profile)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

from urne.counting.rules import rules_adapter
from urne.services.vote.domain import Ballot, BallotBox
from urne.storage.sqlite import SqliteDb


class SqliteVoteStore:
    def __init__(self, db: SqliteDb):
        self.db = db

    def save_ballot_box(self, poll: BallotBox) -> None:
        rules = rules_adapter.dump_json(poll.rules).decode() if poll.rules else None
        with self.db.tx() as tx:
            tx.execute("INSERT OR REPLACE INTO polls VALUES (?, ?, ?, ?)",
                       (poll.poll_id, rules, poll.rules_hash, poll.status))

    def ballot_box(self, poll_id: str) -> BallotBox | None:
        r = self.db.one("SELECT * FROM polls WHERE poll_id = ?", (poll_id,))
        if r is None:
            return None
        rules = rules_adapter.validate_json(r["rules"]) if r["rules"] else None
        return BallotBox(r["poll_id"], rules, r["rules_hash"], r["status"])

    def latest_sequence(self, poll_id: str, voter_key: str) -> int:
        r = self.db.one("SELECT MAX(sequence) AS s FROM ballots "
                        "WHERE poll_id = ? AND voter_key = ?", (poll_id, voter_key))
        return int(r["s"] or 0) if r else 0

    def insert_ballot(self, b: Ballot) -> bool:
        try:
            with self.db.tx() as tx:
                tx.execute("INSERT INTO ballots VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (b.poll_id, b.voter_key, b.sequence, b.ballot_id, b.tracker,
                            json.dumps(b.choice), b.channel, b.recorded_at.isoformat()))
        except sqlite3.IntegrityError:
            return False
        return True

    def ballot_ids(self, poll_id: str) -> Iterator[str]:
        for r in self.db.query("SELECT ballot_id FROM ballots WHERE poll_id = ?", (poll_id,)):
            yield r["ballot_id"]

    def ping(self) -> None:
        self.db.ping()
