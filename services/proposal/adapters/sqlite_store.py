"""ProposalStore on SQLite (embedded profile)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from urne.counting.rules import rules_adapter
from urne.services.proposal.domain import Consultation, Poll, Proposal
from urne.storage.sqlite import SqliteDb


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class SqliteProposalStore:
    def __init__(self, db: SqliteDb):
        self.db = db

    def add_consultation(self, c: Consultation) -> None:
        with self.db.tx() as tx:
            tx.execute("INSERT INTO consultations VALUES (?, ?, ?, ?, ?)",
                       (c.consultation_id, c.title, c.description, c.created_by,
                        c.created_at.isoformat()))

    def consultation(self, consultation_id: str) -> Consultation | None:
        row = self.db.one("SELECT * FROM consultations WHERE consultation_id = ?",
                          (consultation_id,))
        return _consultation(row) if row else None

    def consultations(self, limit: int) -> list[Consultation]:
        rows = self.db.query("SELECT * FROM consultations ORDER BY created_at DESC LIMIT ?",
                             (limit,))
        return [_consultation(r) for r in rows]

    def add_proposal(self, p: Proposal) -> None:
        with self.db.tx() as tx:
            tx.execute("INSERT INTO proposals VALUES (?, ?, ?, ?, ?, ?)",
                       (p.proposal_id, p.consultation_id, p.title, p.body, p.author_id,
                        p.created_at.isoformat()))

    def proposals(self, consultation_id: str) -> list[Proposal]:
        rows = self.db.query("SELECT * FROM proposals WHERE consultation_id = ? "
                             "ORDER BY created_at", (consultation_id,))
        return [Proposal(r["proposal_id"], r["consultation_id"], r["title"], r["body"],
                         r["author_id"], datetime.fromisoformat(r["created_at"])) for r in rows]

    def save_poll(self, p: Poll) -> None:
        with self.db.tx() as tx:
            tx.execute("INSERT OR REPLACE INTO polls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (p.poll_id, p.consultation_id, p.proposal_id,
                        rules_adapter.dump_json(p.rules).decode(), p.status, p.rules_hash,
                        _iso(p.opened_at), _iso(p.closed_at), _iso(p.published_at)))

    def poll(self, poll_id: str) -> Poll | None:
        row = self.db.one("SELECT * FROM polls WHERE poll_id = ?", (poll_id,))
        return _poll(row) if row else None

    def polls(self, consultation_id: str) -> list[Poll]:
        rows = self.db.query("SELECT * FROM polls WHERE consultation_id = ? ORDER BY poll_id",
                             (consultation_id,))
        return [_poll(r) for r in rows]

    def ping(self) -> None:
        self.db.ping()


def _consultation(r: sqlite3.Row) -> Consultation:
    return Consultation(r["consultation_id"], r["title"], r["description"], r["created_by"],
                        datetime.fromisoformat(r["created_at"]))


def _poll(r: sqlite3.Row) -> Poll:
    return Poll(r["poll_id"], r["consultation_id"], r["proposal_id"],
                rules_adapter.validate_json(r["rules"]), r["status"], r["rules_hash"],
                _dt(r["opened_at"]), _dt(r["closed_at"]), _dt(r["published_at"]))
