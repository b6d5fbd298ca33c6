"""IdentityStore on Cassandra (distributed profile)."""

from __future__ import annotations

from typing import Any

from cassandra.cluster import Session
from cassandra.query import UNSET_VALUE

from urne.services.identity.domain import LoginCode, Person, VotingStatus, voting_status
from urne.storage.action_log import CassandraActionLog
from urne.storage.cassandra import guarded, ping, utc


class CassandraIdentityStore:
    def __init__(self, session: Session, keyspace: str):
        self.s = session
        self.actions = CassandraActionLog(session, keyspace)
        ks = keyspace
        self._save_role = session.prepare(
            f"UPDATE {ks}.persons_by_email SET role = ? WHERE email = ?")
        self._save_role.is_idempotent = True
        self._person = session.prepare(f"SELECT * FROM {ks}.persons_by_email WHERE email = ?")
        # Through the index on person_id (migration 002): at most one row.
        self._person_by_id = session.prepare(
            f"SELECT * FROM {ks}.persons_by_email WHERE person_id = ?")
        # Lightweight transaction: two first sign-ins racing on one e-mail make one person.
        self._add_person = session.prepare(
            f"INSERT INTO {ks}.persons_by_email (email, person_id, role, created_at, district) "
            "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS")
        self._save_district = session.prepare(
            f"UPDATE {ks}.persons_by_email SET district = ? WHERE email = ?")
        self._code = session.prepare(f"SELECT * FROM {ks}.login_codes WHERE email = ?")
        self._save_code = session.prepare(
            f"INSERT INTO {ks}.login_codes (email, code_hash, expires_at, attempts_left, "
            "window_started_at, sent_in_window) VALUES (?, ?, ?, ?, ?, ?)")
        self._set_status = session.prepare(
            f"INSERT INTO {ks}.poll_status (poll_id, status) VALUES (?, ?)")
        self._status = session.prepare(f"SELECT status FROM {ks}.poll_status WHERE poll_id = ?")
        for stmt in (self._person, self._person_by_id, self._save_district, self._code,
                     self._save_code, self._set_status, self._status):
            stmt.is_idempotent = True

    @guarded
    def person_by_email(self, email: str) -> Person | None:
        row = self.s.execute(self._person, (email,)).one()
        return _person(row) if row else None

    @guarded
    def person(self, person_id: str) -> Person | None:
        row = self.s.execute(self._person_by_id, (person_id,)).one()
        return _person(row) if row else None

    @guarded
    def add_person(self, person: Person) -> Person:
        # No district (the usual case) is left unset rather than written as a null.
        district = UNSET_VALUE if person.district is None else person.district
        self.s.execute(self._add_person, (person.email, person.person_id, person.role,
                                          person.created_at, district))
        found = self.person_by_email(person.email)
        assert found is not None
        return found

    @guarded
    def save_role(self, person: Person) -> None:
        self.s.execute(self._save_role, (person.role, person.email))

    @guarded
    def save_district(self, person: Person) -> None:
        # By e-mail, the row's key; a plain write: the last declaration wins.
        self.s.execute(self._save_district, (person.district, person.email))

    @guarded
    def login_code(self, email: str) -> LoginCode | None:
        r = self.s.execute(self._code, (email,)).one()
        if r is None:
            return None
        return LoginCode(r.email, r.code_hash, utc(r.expires_at), r.attempts_left,
                         utc(r.window_started_at), r.sent_in_window)

    @guarded
    def save_login_code(self, code: LoginCode) -> None:
        self.s.execute(self._save_code, (code.email, code.code_hash, code.expires_at,
                                         code.attempts_left, code.window_started_at,
                                         code.sent_in_window))

    @guarded
    def set_voting_status(self, poll_id: str, status: VotingStatus) -> None:
        self.s.execute(self._set_status, (poll_id, status))

    @guarded
    def voting_status(self, poll_id: str) -> VotingStatus | None:
        row = self.s.execute(self._status, (poll_id,)).one()
        return voting_status(row.status) if row else None

    @guarded
    def ping(self) -> None:
        ping(self.s)


def _person(row: Any) -> Person:
    return Person(row.person_id, row.email, row.role, utc(row.created_at), row.district)
