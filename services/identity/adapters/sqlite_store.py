"""IdentityStore on SQLite (embedded profile)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from urne.services.identity.domain import LoginCode, Person, VotingStatus, voting_status
from urne.storage.action_log import SqliteActionLog
from urne.storage.sqlite import SqliteDb


class SqliteIdentityStore:
    def __init__(self, db: SqliteDb):
        self.db = db
        self.actions = SqliteActionLog(db)

    def save_role(self, person: Person) -> None:
        with self.db.tx() as c:
            c.execute("UPDATE persons SET role = ? WHERE person_id = ?",
                      (person.role, person.person_id))

    def person_by_email(self, email: str) -> Person | None:
        row = self.db.one("SELECT * FROM persons WHERE email = ?", (email,))
        return _person(row) if row else None

    def person(self, person_id: str) -> Person | None:
        row = self.db.one("SELECT * FROM persons WHERE person_id = ?", (person_id,))
        return _person(row) if row else None

    def add_person(self, person: Person) -> Person:
        with self.db.tx() as c:
            # The e-mail is unique: on a race the first person stays, and is returned.
            c.execute("INSERT OR IGNORE INTO persons (person_id, email, role, created_at, "
                      "district) VALUES (?, ?, ?, ?, ?)",
                      (person.person_id, person.email, person.role,
                       person.created_at.isoformat(), person.district))
        found = self.person_by_email(person.email)
        assert found is not None
        return found

    def save_district(self, person: Person) -> None:
        with self.db.tx() as c:
            c.execute("UPDATE persons SET district = ? WHERE person_id = ?",
                      (person.district, person.person_id))

    def login_code(self, email: str) -> LoginCode | None:
        row = self.db.one("SELECT * FROM login_codes WHERE email = ?", (email,))
        if row is None:
            return None
        return LoginCode(row["email"], row["code_hash"], datetime.fromisoformat(row["expires_at"]),
                         row["attempts_left"], datetime.fromisoformat(row["window_started_at"]),
                         row["sent_in_window"])

    def save_login_code(self, code: LoginCode) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO login_codes VALUES (?, ?, ?, ?, ?, ?)",
                      (code.email, code.code_hash, code.expires_at.isoformat(),
                       code.attempts_left, code.window_started_at.isoformat(),
                       code.sent_in_window))

    def set_voting_status(self, poll_id: str, status: VotingStatus) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR REPLACE INTO poll_status VALUES (?, ?)", (poll_id, status))

    def voting_status(self, poll_id: str) -> VotingStatus | None:
        row = self.db.one("SELECT status FROM poll_status WHERE poll_id = ?", (poll_id,))
        return voting_status(row["status"]) if row else None

    def ping(self) -> None:
        self.db.ping()


def _person(row: sqlite3.Row) -> Person:
    return Person(row["person_id"], row["email"], row["role"],
                  datetime.fromisoformat(row["created_at"]), row["district"])
