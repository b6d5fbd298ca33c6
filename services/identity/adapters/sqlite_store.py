"""IdentityStore on SQLite (embedded profile)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta

from urne.services.identity.census import SHARED, CensusEntry
from urne.services.identity.desk import DeskCode
from urne.services.identity.domain import (
    LoginCodes,
    Person,
    VotingStatus,
    pending_from_json,
    pending_json,
    voting_status,
)
from urne.services.identity.limits import LONGEST_WINDOW, Counter
from urne.services.identity.sign_in_list import Mark
from urne.storage.action_log import SqliteActionLog
from urne.storage.sqlite import SqliteDb


class SqliteIdentityStore:
    def __init__(self, db: SqliteDb):
        self.db = db
        self.actions = SqliteActionLog(db)

    def delete_person(self, person: Person, departed_key: str | None, now: datetime) -> None:
        with self.db.tx() as c:
            if departed_key is not None:
                c.execute("INSERT OR REPLACE INTO departed VALUES (?, ?, ?)",
                          (departed_key, person.person_id, now.isoformat()))
            c.execute("DELETE FROM persons WHERE person_id = ?", (person.person_id,))

    def departed(self, departed_key: str) -> str | None:
        row = self.db.one("SELECT person_id FROM departed WHERE address_key = ?",
                          (departed_key,))
        return str(row["person_id"]) if row else None

    def forget_departed(self, departed_key: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM departed WHERE address_key = ?", (departed_key,))

    def mark_seen(self, person: Person, month: str) -> None:
        with self.db.tx() as c:
            c.execute("UPDATE persons SET seen_month = ? WHERE person_id = ? AND "
                      "(seen_month IS NULL OR seen_month < ?)",
                      (month, person.person_id, month))

    def unseen_before(self, month: str, limit: int) -> list[Person]:
        # Registered before migration 014 and not seen since: from their registration.
        rows = self.db.query("SELECT * FROM persons WHERE COALESCE(seen_month, "
                             "substr(created_at, 1, 7)) < ? LIMIT ?", (month, limit))
        return [_person(r) for r in rows]

    def forget_months_before(self, month: str) -> None:
        pass  # the persons' own rows said when; they are gone

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

    def person_by_phone(self, phone: str) -> Person | None:
        row = self.db.one("SELECT * FROM persons WHERE phone = ?", (phone,))
        return _person(row) if row else None

    def add_person(self, person: Person) -> Person:
        with self.db.tx() as c:
            # The e-mail (or phone) is unique: on a race the first person stays, and is
            # returned.
            c.execute("INSERT OR IGNORE INTO persons (person_id, email, phone, role, "
                      "created_at, district) VALUES (?, ?, ?, ?, ?, ?)",
                      (person.person_id, person.email, person.phone, person.role,
                       person.created_at.isoformat(), person.district))
        assert person.email or person.phone, "desk people: add_desk_person"
        found = (self.person_by_email(person.email) if person.email is not None
                 else self.person_by_phone(person.phone or ""))
        assert found is not None
        return found

    def add_desk_person(self, person: Person, code: DeskCode) -> None:
        with self.db.tx() as c:
            # A second delivery of the same registration finds the person there.
            c.execute("INSERT OR IGNORE INTO persons (person_id, role, created_at, district) "
                      "VALUES (?, ?, ?, ?)", (person.person_id, person.role,
                                              person.created_at.isoformat(), person.district))
            self.save_desk_code(code)

    def save_desk_code(self, code: DeskCode) -> None:
        with self.db.tx() as c:
            c.execute("UPDATE persons SET desk_code_hash = ?, desk_code_expires_at = ? "
                      "WHERE person_id = ?",
                      (code.code_hash, code.expires_at.isoformat(), code.person_id))

    def desk_code_holder(self, code_hash: str) -> str | None:
        row = self.db.one("SELECT person_id FROM persons WHERE desk_code_hash = ?",
                          (code_hash,))
        return str(row["person_id"]) if row else None

    def spend_desk_code(self, person_id: str, code_hash: str, now: datetime) -> bool:
        # One statement: of two kiosks racing with one code, one signs in.
        with self.db.tx() as c:
            done = c.execute("UPDATE persons SET desk_code_hash = NULL, desk_code_expires_at = "
                             "NULL, desk_code_used = 1 WHERE person_id = ? AND "
                             "desk_code_hash = ? AND desk_code_expires_at > ?",
                             (person_id, code_hash, now.isoformat()))
        return done.rowcount == 1

    def desk_card_used(self, person_id: str) -> bool:
        row = self.db.one("SELECT desk_code_used FROM persons WHERE person_id = ?",
                          (person_id,))
        return bool(row and row["desk_code_used"])

    def save_district(self, person: Person) -> None:
        with self.db.tx() as c:
            c.execute("UPDATE persons SET district = ? WHERE person_id = ?",
                      (person.district, person.person_id))

    def login_codes(self, key: str) -> LoginCodes | None:
        row = self.db.one("SELECT * FROM sign_in_codes WHERE address_key = ?", (key,))
        if row is None:
            return None
        return LoginCodes(row["address_key"], pending_from_json(row["pending"]),
                          row["attempts_left"], row["version"])

    def swap_login_codes(self, previous: LoginCodes | None, codes: LoginCodes) -> bool:
        return self._swap("sign_in_codes", ("address_key", codes.key), {
            "pending": pending_json(codes.pending), "attempts_left": codes.attempts_left,
            "version": codes.version}, previous.version if previous else None)

    def counter(self, key: str) -> Counter | None:
        row = self.db.one("SELECT * FROM limit_counters WHERE key = ?", (key,))
        if row is None:
            return None
        return Counter(row["key"], datetime.fromisoformat(row["window_started_at"]),
                       row["count"], row["version"])

    def swap_counter(self, previous: Counter | None, counter: Counter, keep: timedelta) -> bool:
        # keep: how long the row matters (Cassandra's TTL); here old rows stay, one per
        # key, until the retention job of the electorate issue.
        return self._swap("limit_counters", ("key", counter.key), {
            "window_started_at": counter.window_started_at.isoformat(),
            "count": counter.count, "version": counter.version},
            previous.version if previous else None)

    def _swap(self, table: str, key: tuple[str, str], fields: dict[str, object],
              previous: int | None) -> bool:
        """Write the row if its version is still ``previous`` (None: if there is no row):
        the statement itself checks, so two processes cannot both win."""
        names, values = list(fields), list(fields.values())
        with self.db.tx() as c:
            if previous is None:
                done = c.execute(f"INSERT OR IGNORE INTO {table} ({key[0]}, {', '.join(names)}) "
                                 f"VALUES ({', '.join('?' * (len(names) + 1))})",
                                 (key[1], *values))
            else:
                done = c.execute(f"UPDATE {table} SET {', '.join(f'{n} = ?' for n in names)} "
                                 f"WHERE {key[0]} = ? AND version = ?",
                                 (*values, key[1], previous))
            return done.rowcount == 1

    def set_voting_status(self, poll_id: str, status: VotingStatus) -> None:
        with self.db.tx() as c:
            c.execute("INSERT INTO poll_status (poll_id, status) VALUES (?, ?) "
                      "ON CONFLICT (poll_id) DO UPDATE SET status = excluded.status",
                      (poll_id, status))

    def close_poll(self, poll_id: str, closed_at: datetime) -> None:
        with self.db.tx() as c:
            c.execute("INSERT INTO poll_status (poll_id, status, closed_at) VALUES "
                      "(?, 'closed', ?) ON CONFLICT (poll_id) DO UPDATE SET status = 'closed', "
                      "closed_at = excluded.closed_at", (poll_id, closed_at.isoformat()))

    def sign_in_list_purged(self, poll_id: str) -> bool:
        row = self.db.one("SELECT sign_in_list_purged FROM poll_status WHERE poll_id = ?",
                          (poll_id,))
        return bool(row and row["sign_in_list_purged"])

    def purge_sign_in_lists(self, closed_before: datetime) -> int:
        with self.db.tx() as c:
            polls = [r["poll_id"] for r in c.execute(
                "SELECT poll_id FROM poll_status WHERE closed_at < ? AND "
                "sign_in_list_purged = 0", (closed_before.isoformat(),))]
            c.executemany("DELETE FROM sign_in_list WHERE poll_id = ?", [(p,) for p in polls])
            c.executemany("UPDATE poll_status SET sign_in_list_purged = 1 WHERE poll_id = ?",
                          [(p,) for p in polls])
        return len(polls)

    def open_poll(self, poll_id: str, consultation_id: str, electorate: str) -> None:
        with self.db.tx() as c:  # a closed poll stays closed
            c.execute("INSERT INTO poll_status (poll_id, status, consultation_id, electorate) "
                      "VALUES (?, 'open', ?, ?) ON CONFLICT (poll_id) DO UPDATE SET "
                      "consultation_id = excluded.consultation_id, "
                      "electorate = excluded.electorate",
                      (poll_id, consultation_id, electorate))

    def electorate(self, poll_id: str) -> tuple[str, str] | None:
        row = self.db.one("SELECT consultation_id, electorate FROM poll_status "
                          "WHERE poll_id = ?", (poll_id,))
        if row is None or row["consultation_id"] is None:
            return None
        return row["consultation_id"], row["electorate"] or "open"

    def save_eligible(self, poll_id: str, eligible: int, counted_at: datetime
                      ) -> tuple[int, datetime]:
        with self.db.tx() as c:
            c.execute("UPDATE poll_status SET eligible = ?, eligible_counted_at = ? "
                      "WHERE poll_id = ? AND eligible IS NULL",
                      (eligible, counted_at.isoformat(), poll_id))
        kept = self.eligible(poll_id)
        assert kept is not None, f"no status for poll {poll_id}"
        return kept

    def eligible(self, poll_id: str) -> tuple[int, datetime] | None:
        row = self.db.one("SELECT eligible, eligible_counted_at FROM poll_status "
                          "WHERE poll_id = ?", (poll_id,))
        if row is None or row["eligible"] is None:
            return None
        return row["eligible"], datetime.fromisoformat(row["eligible_counted_at"])

    def open_census_polls(self, consultation_id: str) -> list[str]:
        return [r["poll_id"] for r in self.db.query(
            "SELECT poll_id FROM poll_status WHERE consultation_id = ? AND "
            "electorate = 'census' AND status = 'open' ORDER BY poll_id", (consultation_id,))]

    def censuses_to_purge(self, closed_before: datetime) -> list[str]:
        return [r["consultation_id"] for r in self.db.query(
            "SELECT consultation_id FROM poll_status WHERE electorate = 'census' "
            "GROUP BY consultation_id HAVING SUM(status != 'closed') = 0 "
            "AND MAX(closed_at) < ? AND consultation_id NOT IN "
            "(SELECT consultation_id FROM census_purges) AND EXISTS (SELECT 1 FROM "
            "census_entries e WHERE e.consultation_id = poll_status.consultation_id)",
            (closed_before.isoformat(),))]

    def purge_census(self, consultation_id: str, now: datetime) -> None:
        with self.db.tx() as c:
            for table in ("census_entries", "census_emails", "census_claims"):
                c.execute(f"DELETE FROM {table} WHERE consultation_id = ?", (consultation_id,))
            c.execute("INSERT OR REPLACE INTO census_purges VALUES (?, ?)",
                      (consultation_id, now.isoformat()))

    def count_eligible(self, consultation_id: str) -> int:
        row = self.db.one("SELECT COUNT(*) AS n FROM census_entries WHERE consultation_id = ? "
                          "AND eligible = 1", (consultation_id,))
        return int(row["n"]) if row else 0

    def save_census(self, entries: list[CensusEntry], emails: list[tuple[str, str]]) -> None:
        if not entries:
            return
        consultation_id = entries[0].consultation_id
        with self.db.tx() as c:
            c.executemany(
                "INSERT INTO census_entries (consultation_id, entry_key, district, eligible) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (consultation_id, entry_key) DO UPDATE SET "
                "district = excluded.district, eligible = excluded.eligible",
                [(e.consultation_id, e.entry_key, e.district, int(e.eligible))
                 for e in entries])
            # An address already kept for another entry is several people's: shared.
            c.executemany("INSERT INTO census_emails VALUES (?, ?, ?) ON CONFLICT "
                          "(consultation_id, email_key) DO UPDATE SET entry_key = CASE WHEN "
                          "census_emails.entry_key = excluded.entry_key THEN "
                          "census_emails.entry_key ELSE ? END",
                          [(consultation_id, email, entry, SHARED) for email, entry in emails])
            c.execute("DELETE FROM census_purges WHERE consultation_id = ?", (consultation_id,))

    def census_entry(self, consultation_id: str, entry_key: str) -> CensusEntry | None:
        row = self.db.one("SELECT * FROM census_entries WHERE consultation_id = ? AND "
                          "entry_key = ?", (consultation_id, entry_key))
        return CensusEntry(row["consultation_id"], row["entry_key"], row["district"],
                           bool(row["eligible"]), row["claimed_by"]) if row else None

    def census_entry_key_by_email(self, consultation_id: str, email_key: str) -> str | None:
        row = self.db.one("SELECT entry_key FROM census_emails WHERE consultation_id = ? AND "
                          "email_key = ?", (consultation_id, email_key))
        return row["entry_key"] if row else None

    def claim_census_entry(self, consultation_id: str, entry_key: str, person_id: str) -> str:
        with self.db.tx() as c:
            c.execute("UPDATE census_entries SET claimed_by = ? WHERE consultation_id = ? "
                      "AND entry_key = ? AND claimed_by IS NULL",
                      (person_id, consultation_id, entry_key))
            row = c.execute("SELECT claimed_by FROM census_entries WHERE consultation_id = ? "
                            "AND entry_key = ?", (consultation_id, entry_key)).fetchone()
        return str(row["claimed_by"]) if row else ""  # no such entry: nobody holds it

    def drop_census_claim(self, consultation_id: str, person_id: str, entry_key: str) -> None:
        with self.db.tx() as c:
            c.execute("DELETE FROM census_claims WHERE consultation_id = ? AND person_id = ? "
                      "AND entry_key = ?", (consultation_id, person_id, entry_key))

    def census_claim(self, consultation_id: str, person_id: str) -> str | None:
        row = self.db.one("SELECT entry_key FROM census_claims WHERE consultation_id = ? AND "
                          "person_id = ?", (consultation_id, person_id))
        return row["entry_key"] if row else None

    def add_census_claim(self, consultation_id: str, person_id: str, entry_key: str) -> str:
        with self.db.tx() as c:
            c.execute("INSERT OR IGNORE INTO census_claims VALUES (?, ?, ?)",
                      (consultation_id, person_id, entry_key))
            row = c.execute("SELECT entry_key FROM census_claims WHERE consultation_id = ? "
                            "AND person_id = ?", (consultation_id, person_id)).fetchone()
        return str(row["entry_key"])

    def mark_voters(self, marks: list[Mark]) -> None:
        with self.db.tx() as c:
            c.executemany("INSERT OR IGNORE INTO sign_in_list VALUES (?, ?, ?, ?)",
                          [(m.poll_id, m.voter_key, m.channel, m.district) for m in marks])

    def marks_of(self, poll_id: str, voter_key: str) -> list[Mark]:
        return [_mark(r) for r in self.db.query(
            "SELECT * FROM sign_in_list WHERE poll_id = ? AND voter_key = ?",
            (poll_id, voter_key))]

    def marks(self, poll_id: str) -> Iterator[Mark]:
        for r in self.db.query("SELECT * FROM sign_in_list WHERE poll_id = ?", (poll_id,)):
            yield _mark(r)

    def voting_status(self, poll_id: str) -> VotingStatus | None:
        row = self.db.one("SELECT status FROM poll_status WHERE poll_id = ?", (poll_id,))
        return voting_status(row["status"]) if row else None

    def purge_expired(self, now: datetime) -> dict[str, int]:
        # Cassandra's rows expire by themselves (TTL); here the job deletes them.
        rows = self.db.query("SELECT address_key, pending FROM sign_in_codes")
        spent = [row["address_key"] for row in rows
                 if not any(p.expires_at > now for p in pending_from_json(row["pending"]))]
        before = (now - LONGEST_WINDOW).isoformat()
        with self.db.tx() as c:
            c.executemany("DELETE FROM sign_in_codes WHERE address_key = ?",
                          [(k,) for k in spent])
            counters = c.execute("DELETE FROM limit_counters WHERE window_started_at < ?",
                                 (before,)).rowcount
            desk_codes = c.execute("UPDATE persons SET desk_code_hash = NULL, "
                                   "desk_code_expires_at = NULL WHERE desk_code_expires_at <= ?",
                                   (now.isoformat(),)).rowcount
        return {"sign_in_codes": len(spent), "limit_counters": counters,
                "desk_codes": desk_codes}

    def ping(self) -> None:
        self.db.ping()


def _person(row: sqlite3.Row) -> Person:
    return Person(row["person_id"], row["email"], row["role"],
                  datetime.fromisoformat(row["created_at"]), row["district"], row["phone"])


def _mark(row: sqlite3.Row) -> Mark:
    return Mark(row["poll_id"], row["voter_key"], row["channel"], row["district"])
