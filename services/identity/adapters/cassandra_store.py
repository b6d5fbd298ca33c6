"""IdentityStore on Cassandra (distributed profile)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import UNSET_VALUE, PreparedStatement

from urne.services.identity.census import BUCKETS as CENSUS_BUCKETS
from urne.services.identity.census import SHARED, CensusEntry
from urne.services.identity.census import bucket as census_bucket
from urne.services.identity.census import buckets as census_buckets
from urne.services.identity.desk import DeskCode
from urne.services.identity.domain import (
    CODE_TTL,
    LoginCodes,
    Person,
    VotingStatus,
    pending_from_json,
    pending_json,
    voting_status,
)
from urne.services.identity.limits import Counter
from urne.services.identity.sign_in_list import BUCKETS, MARK_TIMESTAMP, Mark, bucket, buckets
from urne.storage.action_log import CassandraActionLog
from urne.storage.cassandra import (
    applied,
    guard,
    guarded,
    ping,
    scan_buckets,
    utc,
    write_grouped,
    write_time,
)

# Where a person's row is (``_where``): their table, and the column that keys it.
# The write time of a poll's "open" status: below any close's (written at now).
OPENING_TIMESTAMP = 1
PERSON_TABLES = {"email": ("persons_by_email", "email"), "phone": ("persons_by_phone", "phone"),
                 "desk": ("persons_at_desk", "person_id")}


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
        # People registered by SMS (migration 006): the same, keyed by phone number.
        self._by_phone = session.prepare(f"SELECT * FROM {ks}.persons_by_phone WHERE phone = ?")
        self._phone_person_by_id = session.prepare(
            f"SELECT * FROM {ks}.persons_by_phone WHERE person_id = ?")
        self._add_phone_person = session.prepare(
            f"INSERT INTO {ks}.persons_by_phone (phone, person_id, role, created_at, "
            "district) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS")
        self._save_phone_role = session.prepare(
            f"UPDATE {ks}.persons_by_phone SET role = ? WHERE phone = ?")
        self._save_phone_district = session.prepare(
            f"UPDATE {ks}.persons_by_phone SET district = ? WHERE phone = ?")
        # People registered at a desk (migration 007): keyed by id, signed in by code.
        self._desk_person = session.prepare(
            f"SELECT * FROM {ks}.persons_at_desk WHERE person_id = ?")
        # Lightweight transactions on the row, all of them: the spend below is one, and
        # plain writes mixed with those on the same cells would not be ordered with them.
        self._add_desk_person = session.prepare(
            f"INSERT INTO {ks}.persons_at_desk (person_id, role, created_at, district) "
            "VALUES (?, ?, ?, ?) IF NOT EXISTS")
        # The code's columns go when it expires (a TTL), the person stays.
        self._save_desk_code = session.prepare(
            f"UPDATE {ks}.persons_at_desk USING TTL ? SET desk_code_hash = ?, "
            "desk_code_expires_at = ? WHERE person_id = ? IF EXISTS")
        self._add_desk_code = session.prepare(
            f"INSERT INTO {ks}.desk_codes (code_hash, person_id) VALUES (?, ?) USING TTL ?")
        self._desk_code = session.prepare(
            f"SELECT person_id FROM {ks}.desk_codes WHERE code_hash = ?")
        # Lightweight transaction: of two kiosks racing with one code, one signs in.
        self._spend_desk_code = session.prepare(
            f"UPDATE {ks}.persons_at_desk SET desk_code_hash = null, desk_code_used = true "
            "WHERE person_id = ? IF desk_code_hash = ? AND desk_code_expires_at > ?")
        self._save_desk_role = session.prepare(
            f"UPDATE {ks}.persons_at_desk SET role = ? WHERE person_id = ?")
        self._save_desk_district = session.prepare(
            f"UPDATE {ks}.persons_at_desk SET district = ? WHERE person_id = ?")
        self._codes = session.prepare(f"SELECT * FROM {ks}.sign_in_codes WHERE address_key = ?")
        # Deleted accounts (migration 013). The person rows are written by lightweight
        # transactions: their deletions are too, so the two are ordered.
        self._depart = session.prepare(
            f"INSERT INTO {ks}.departed (address_key, person_id, departed_at) VALUES (?, ?, ?)")
        self._departed = session.prepare(
            f"SELECT person_id FROM {ks}.departed WHERE address_key = ?")
        self._back = session.prepare(f"DELETE FROM {ks}.departed WHERE address_key = ?")
        self._drop_by_email = session.prepare(
            f"DELETE FROM {ks}.persons_by_email WHERE email = ? IF person_id = ?")
        self._drop_by_phone = session.prepare(
            f"DELETE FROM {ks}.persons_by_phone WHERE phone = ? IF person_id = ?")
        self._drop_at_desk = session.prepare(
            f"DELETE FROM {ks}.persons_at_desk WHERE person_id = ? IF EXISTS")
        # The month of the last sign-in (migration 014), in the person's row and in the
        # month's index, each written at a time that says no more (``_seen_at``).
        self._seen = {where: session.prepare(
            f"UPDATE {ks}.{table} USING TIMESTAMP ? SET seen_month = ? WHERE {column} = ?")
            for where, (table, column) in PERSON_TABLES.items()}
        self._add_seen = session.prepare(
            f"INSERT INTO {ks}.persons_seen (month, bucket, person_id) VALUES (?, ?, ?) "
            "USING TIMESTAMP ?")
        self._add_month = session.prepare(
            f"INSERT INTO {ks}.seen_months (shelf, month) VALUES (0, ?)")
        self._months = session.prepare(
            f"SELECT month FROM {ks}.seen_months WHERE shelf = 0 AND month < ?")
        self._seen_in = session.prepare(
            f"SELECT person_id FROM {ks}.persons_seen WHERE month = ? AND bucket = ?")
        self._drop_seen = session.prepare(
            f"DELETE FROM {ks}.persons_seen WHERE month = ? AND bucket = ?")
        self._drop_seen_one = session.prepare(
            f"DELETE FROM {ks}.persons_seen WHERE month = ? AND bucket = ? AND person_id = ?")
        self._drop_month = session.prepare(
            f"DELETE FROM {ks}.seen_months WHERE shelf = 0 AND month = ?")
        self._seen_month = {where: session.prepare(
            f"SELECT seen_month FROM {ks}.{table} WHERE {column} = ?")
            for where, (table, column) in PERSON_TABLES.items()}
        for stmt in (self._depart, self._departed, self._back, *self._seen.values(),
                     self._add_seen, self._add_month, self._months, self._seen_in,
                     self._drop_seen, self._drop_month, *self._seen_month.values(),
                     self._drop_seen_one):
            stmt.is_idempotent = True
        # The sign-in list (migration 009), every write at one fixed timestamp: no time.
        self._mark = session.prepare(
            f"INSERT INTO {ks}.sign_in_list (poll_id, bucket, voter_key, channel, district) "
            f"VALUES (?, ?, ?, ?, ?) USING TIMESTAMP {MARK_TIMESTAMP}")
        self._mark.is_idempotent = True
        self._marks_of = session.prepare(
            f"SELECT * FROM {ks}.sign_in_list WHERE poll_id = ? AND bucket IN ? "
            "AND voter_key = ?")
        self._marks = session.prepare(
            f"SELECT * FROM {ks}.sign_in_list WHERE poll_id = ? AND bucket = ?")
        self._counter = session.prepare(f"SELECT * FROM {ks}.limit_counters WHERE key = ?")
        # Lightweight transactions on `version`: limits hold across identity processes.
        self._first_codes, self._next_codes = _swaps(
            session, f"{ks}.sign_in_codes", "address_key",
            ("pending", "attempts_left", "version"))
        self._first_count, self._next_count = _swaps(
            session, f"{ks}.limit_counters", "key", ("window_started_at", "count", "version"))
        self._set_status = session.prepare(
            f"INSERT INTO {ks}.poll_status (poll_id, status) VALUES (?, ?)")
        self._status = session.prepare(f"SELECT status FROM {ks}.poll_status WHERE poll_id = ?")
        # An opening never overrides a close, whatever order they come in, and with no
        # read first (two identity processes may take the two events at once): its
        # status is written at the smallest write time, so any close's (written now)
        # is newer. Its other columns, at now: a late opening still brings them.
        self._open_poll = session.prepare(
            f"BEGIN UNLOGGED BATCH "
            f"UPDATE {ks}.poll_status USING TIMESTAMP {OPENING_TIMESTAMP} SET status = 'open' "
            "WHERE poll_id = ?; "
            f"UPDATE {ks}.poll_status SET consultation_id = ?, electorate = ? WHERE poll_id = ?; "
            "APPLY BATCH")
        self._close_poll = session.prepare(
            f"UPDATE {ks}.poll_status SET status = 'closed', closed_at = ? WHERE poll_id = ?")
        # Every poll, for the sign-in lists' retention: a row a poll, a few a day.
        self._closed_polls = session.prepare(
            f"SELECT poll_id, closed_at, sign_in_list_purged FROM {ks}.poll_status")
        self._was_purged = session.prepare(
            f"SELECT sign_in_list_purged FROM {ks}.poll_status WHERE poll_id = ?")
        self._purged = session.prepare(
            f"UPDATE {ks}.poll_status SET sign_in_list_purged = true WHERE poll_id = ?")
        self._drop_marks = session.prepare(
            f"DELETE FROM {ks}.sign_in_list WHERE poll_id = ? AND bucket = ?")
        self._electorate = session.prepare(
            f"SELECT consultation_id, electorate FROM {ks}.poll_status WHERE poll_id = ?")
        # The census (migration 005): plain writes leave ``claimed_by`` as it is; claims
        # are lightweight transactions, so one entry goes to one account only.
        self._save_entry = session.prepare(
            f"UPDATE {ks}.census_entries SET district = ?, eligible = ? "
            "WHERE consultation_id = ? AND entry_key = ?")
        # Migration 011: the census's eligible entries in buckets, to count at a close.
        self._add_eligible = session.prepare(
            f"INSERT INTO {ks}.census_eligible (consultation_id, bucket, entry_key) "
            "VALUES (?, ?, ?)")
        self._drop_eligible = session.prepare(
            f"DELETE FROM {ks}.census_eligible WHERE consultation_id = ? AND bucket = ? "
            "AND entry_key = ?")
        self._count_eligible = session.prepare(
            f"SELECT COUNT(*) AS n FROM {ks}.census_eligible WHERE consultation_id = ? "
            "AND bucket = ?")
        self._save_eligible = session.prepare(
            f"UPDATE {ks}.poll_status SET eligible = ?, eligible_counted_at = ? "
            "WHERE poll_id = ? IF eligible = null")
        self._eligible = session.prepare(
            f"SELECT eligible, eligible_counted_at FROM {ks}.poll_status WHERE poll_id = ?")
        # Migration 012: every census key, to find them all when the census goes.
        self._add_key = session.prepare(
            f"INSERT INTO {ks}.census_keys (consultation_id, bucket, kind, key) "
            "VALUES (?, ?, ?, ?)")
        self._keys = session.prepare(
            f"SELECT kind, key FROM {ks}.census_keys WHERE consultation_id = ? AND bucket = ?")
        self._drop_keys = session.prepare(
            f"DELETE FROM {ks}.census_keys WHERE consultation_id = ? AND bucket = ?")
        self._drop = {
            "entry": session.prepare(f"DELETE FROM {ks}.census_entries WHERE "
                                     "consultation_id = ? AND entry_key = ?"),
            "email": session.prepare(f"DELETE FROM {ks}.census_emails WHERE "
                                     "consultation_id = ? AND email_key = ?"),
            "claim": session.prepare(f"DELETE FROM {ks}.census_claims WHERE "
                                     "consultation_id = ? AND person_id = ?")}
        self._drop_eligible_bucket = session.prepare(
            f"DELETE FROM {ks}.census_eligible WHERE consultation_id = ? AND bucket = ?")
        self._census_polls = session.prepare(
            f"SELECT poll_id, consultation_id, electorate, status, closed_at "
            f"FROM {ks}.poll_status")
        self._census_purges = session.prepare(
            f"SELECT consultation_id FROM {ks}.census_purges")
        self._census_purged = session.prepare(
            f"INSERT INTO {ks}.census_purges (consultation_id, purged_at) VALUES (?, ?)")
        self._census_back = session.prepare(
            f"DELETE FROM {ks}.census_purges WHERE consultation_id = ?")
        self._save_email = session.prepare(
            f"INSERT INTO {ks}.census_emails (consultation_id, email_key, entry_key) "
            "VALUES (?, ?, ?)")
        self._entry = session.prepare(f"SELECT * FROM {ks}.census_entries "
                                      "WHERE consultation_id = ? AND entry_key = ?")
        self._entry_by_email = session.prepare(
            f"SELECT entry_key FROM {ks}.census_emails WHERE consultation_id = ? "
            "AND email_key = ?")
        self._claim_entry = session.prepare(
            f"UPDATE {ks}.census_entries SET claimed_by = ? WHERE consultation_id = ? "
            "AND entry_key = ? IF claimed_by = null")
        self._drop_claim = session.prepare(
            f"DELETE FROM {ks}.census_claims WHERE consultation_id = ? AND person_id = ? "
            "IF entry_key = ?")
        self._claim = session.prepare(f"SELECT entry_key FROM {ks}.census_claims "
                                      "WHERE consultation_id = ? AND person_id = ?")
        self._add_claim = session.prepare(
            f"INSERT INTO {ks}.census_claims (consultation_id, person_id, entry_key) "
            "VALUES (?, ?, ?) IF NOT EXISTS")
        for stmt in (self._person, self._person_by_id, self._save_district, self._by_phone,
                     self._phone_person_by_id, self._save_phone_role,
                     self._save_phone_district, self._desk_person, self._add_desk_code,
                     self._desk_code,
                     self._save_desk_role, self._save_desk_district, self._codes,
                     self._counter, self._set_status, self._status, self._open_poll,
                     self._electorate, self._save_entry, self._save_email, self._entry,
                     self._entry_by_email, self._claim, self._add_eligible,
                     self._drop_eligible, self._count_eligible, self._eligible,
                     self._add_key, self._keys, self._drop_keys, *self._drop.values(),
                     self._drop_eligible_bucket, self._census_polls, self._census_purges,
                     self._census_purged, self._census_back):
            stmt.is_idempotent = True

    @guarded
    def person_by_email(self, email: str) -> Person | None:
        row = self.s.execute(self._person, (email,)).one()
        return _person(row) if row else None

    @guarded
    def person_by_phone(self, phone: str) -> Person | None:
        row = self.s.execute(self._by_phone, (phone,)).one()
        return _person(row) if row else None

    @guarded
    def person(self, person_id: str) -> Person | None:
        # Most people registered by e-mail: their table first.
        row = self.s.execute(self._person_by_id, (person_id,)).one() \
            or self.s.execute(self._phone_person_by_id, (person_id,)).one() \
            or self.s.execute(self._desk_person, (person_id,)).one()
        return _person(row) if row else None

    @guarded
    def add_desk_person(self, person: Person, code: DeskCode) -> None:
        district = UNSET_VALUE if person.district is None else person.district
        self.s.execute(self._add_desk_person, (person.person_id, person.role,
                                               person.created_at, district))
        self.save_desk_code(code)

    @guarded
    def save_desk_code(self, code: DeskCode) -> None:
        ttl = max(int((code.expires_at - datetime.now(UTC)).total_seconds()) + 1, 1)
        # The lookup first: a crash in between leaves a code that finds no one current.
        self.s.execute(self._add_desk_code, (code.code_hash, code.person_id, ttl))
        self.s.execute(self._save_desk_code, (ttl, code.code_hash, code.expires_at,
                                              code.person_id))

    @guarded
    def desk_code_holder(self, code_hash: str) -> str | None:
        row = self.s.execute(self._desk_code, (code_hash,)).one()
        return str(row.person_id) if row else None

    @guarded
    def spend_desk_code(self, person_id: str, code_hash: str, now: datetime) -> bool:
        # Only the person's current code, unexpired, and once: a replaced code's lookup
        # row (desk_code_holder) outlives it, but no longer matches.
        return applied(self.s.execute(self._spend_desk_code, (person_id, code_hash, now)))

    @guarded
    def desk_card_used(self, person_id: str) -> bool:
        row = self.s.execute(self._desk_person, (person_id,)).one()
        return bool(row and row.desk_code_used)

    @guarded
    def delete_person(self, person: Person, departed_key: str | None, now: datetime) -> None:
        if departed_key is not None:
            self.s.execute(self._depart, (departed_key, person.person_id, now))
        if person.email is not None:
            self.s.execute(self._drop_by_email, (person.email, person.person_id))
        elif person.phone is not None:
            self.s.execute(self._drop_by_phone, (person.phone, person.person_id))
        else:
            self.s.execute(self._drop_at_desk, (person.person_id,))

    @staticmethod
    def _where(person: Person) -> tuple[str, str]:
        """The table a person's row is in, and its key there."""
        if person.email is not None:
            return "email", person.email
        if person.phone is not None:
            return "phone", person.phone
        return "desk", person.person_id

    @guarded
    def mark_seen(self, person: Person, month: str) -> None:
        table, key = self._where(person)
        row = self.s.execute(self._seen_month[table], (key,)).one()
        before = row.seen_month if row is not None else None
        if before == month:
            return  # seen this month already: nothing to write
        bucket = census_bucket(person.person_id)
        # The index first: a month in a row is always findable by the purge. Out of the
        # month before: a month's index holds only the people last seen in it.
        at = _seen_at(person, month)
        self.s.execute(self._add_month, (month,))
        self.s.execute(self._add_seen, (month, bucket, person.person_id, at))
        self.s.execute(self._seen[table], (at, month, key))
        if before is not None:
            # Where it is, or was before the buckets were widened (census.buckets).
            execute_concurrent_with_args(
                self.s, self._drop_seen_one,
                [(before, b, person.person_id) for b in census_buckets(person.person_id)],
                raise_on_first_error=True)

    def unseen_before(self, month: str, limit: int) -> list[Person]:
        found: list[Person] = []
        with guard():
            for past in [r.month for r in self.s.execute(self._months, (month,))]:
                for r in scan_buckets(self.s, self._seen_in, past, CENSUS_BUCKETS):
                    person = self.person(r.person_id)
                    if person is None:
                        continue  # deleted already
                    table, key = self._where(person)
                    row = self.s.execute(self._seen_month[table], (key,)).one()
                    if row is not None and row.seen_month == past:  # not seen since
                        found.append(person)
                        if len(found) >= limit:
                            return found
        return found

    def forget_months_before(self, month: str) -> None:
        with guard():
            for past in [r.month for r in self.s.execute(self._months, (month,))]:
                write_grouped(self.s, [(self._drop_seen, (past, b))
                                       for b in range(CENSUS_BUCKETS)])
                self.s.execute(self._drop_month, (past,))

    @guarded
    def departed(self, departed_key: str) -> str | None:
        row = self.s.execute(self._departed, (departed_key,)).one()
        return str(row.person_id) if row else None

    @guarded
    def forget_departed(self, departed_key: str) -> None:
        self.s.execute(self._back, (departed_key,))

    @guarded
    def add_person(self, person: Person) -> Person:
        # No district (the usual case) is left unset rather than written as a null.
        district = UNSET_VALUE if person.district is None else person.district
        if person.email is None:
            assert person.phone is not None, "desk people: add_desk_person"
            self.s.execute(self._add_phone_person, (person.phone, person.person_id,
                                                    person.role, person.created_at, district))
            found = self.person_by_phone(person.phone)
        else:
            self.s.execute(self._add_person, (person.email, person.person_id, person.role,
                                              person.created_at, district))
            found = self.person_by_email(person.email)
        assert found is not None
        return found

    @guarded
    def save_role(self, person: Person) -> None:
        self.s.execute(*self._by_key(person, self._save_role, self._save_phone_role,
                                     self._save_desk_role, person.role))

    @guarded
    def save_district(self, person: Person) -> None:
        # By the row's key; a plain write: the last declaration wins.
        self.s.execute(*self._by_key(person, self._save_district, self._save_phone_district,
                                     self._save_desk_district, person.district))

    @staticmethod
    def _by_key(person: Person, by_email: PreparedStatement, by_phone: PreparedStatement,
                at_desk: PreparedStatement, value: object
                ) -> tuple[PreparedStatement, tuple[object, str]]:
        """The statement that sets ``value`` in the person's row, and its values: the
        row is keyed by their e-mail, else their phone, else (registered at a desk) id."""
        if person.email is not None:
            return by_email, (value, person.email)
        if person.phone is not None:
            return by_phone, (value, person.phone)
        return at_desk, (value, person.person_id)

    @guarded
    def login_codes(self, key: str) -> LoginCodes | None:
        r = self.s.execute(self._codes, (key,)).one()
        if r is None:
            return None
        return LoginCodes(r.address_key, pending_from_json(r.pending), r.attempts_left,
                          r.version)

    @guarded
    def swap_login_codes(self, previous: LoginCodes | None, codes: LoginCodes) -> bool:
        # The row outlives its last code by nothing: every code expires CODE_TTL after
        # it was sent, and each write comes after the last send.
        return self._swap(self._first_codes, self._next_codes, codes.key, (
            pending_json(codes.pending), codes.attempts_left, codes.version),
            previous.version if previous else None, CODE_TTL)

    @guarded
    def counter(self, key: str) -> Counter | None:
        r = self.s.execute(self._counter, (key,)).one()
        return Counter(r.key, utc(r.window_started_at), r.count, r.version) if r else None

    @guarded
    def swap_counter(self, previous: Counter | None, counter: Counter, keep: timedelta) -> bool:
        return self._swap(self._first_count, self._next_count, counter.key, (
            counter.window_started_at, counter.count, counter.version),
            previous.version if previous else None, keep)

    def _swap(self, first: PreparedStatement, then: PreparedStatement, key: str,
              row: tuple[Any, ...], previous: int | None, keep: timedelta) -> bool:
        """A lightweight transaction: ``first`` inserts if there is no row, ``then``
        updates if its version is still ``previous``; the row expires after ``keep``."""
        ttl = max(1, int(keep.total_seconds()))
        if previous is None:
            return applied(self.s.execute(first, (key, *row, ttl)))
        return applied(self.s.execute(then, (ttl, *row, key, previous)))

    @guarded
    def set_voting_status(self, poll_id: str, status: VotingStatus) -> None:
        self.s.execute(self._set_status, (poll_id, status))

    @guarded
    def voting_status(self, poll_id: str) -> VotingStatus | None:
        row = self.s.execute(self._status, (poll_id,)).one()
        return voting_status(row.status) if row else None

    @guarded
    def close_poll(self, poll_id: str, closed_at: datetime) -> None:
        self.s.execute(self._close_poll, (closed_at, poll_id))

    @guarded
    def sign_in_list_purged(self, poll_id: str) -> bool:
        row = self.s.execute(self._was_purged, (poll_id,)).one()
        return bool(row and row.sign_in_list_purged)

    @guarded
    def purge_sign_in_lists(self, closed_before: datetime) -> int:
        polls = [r.poll_id for r in self.s.execute(self._closed_polls)
                 if r.closed_at is not None and utc(r.closed_at) < closed_before
                 and not r.sign_in_list_purged]
        for poll_id in polls:
            # A deletion's time is now, after the marks' fixed one: it shadows them all.
            execute_concurrent_with_args(self.s, self._drop_marks,
                                         [(poll_id, b) for b in range(BUCKETS)],
                                         concurrency=16, raise_on_first_error=True)
            self.s.execute(self._purged, (poll_id,))
        return len(polls)

    @guarded
    def open_poll(self, poll_id: str, consultation_id: str, electorate: str) -> None:
        self.s.execute(self._open_poll, (poll_id, consultation_id, electorate, poll_id))

    @guarded
    def electorate(self, poll_id: str) -> tuple[str, str] | None:
        row = self.s.execute(self._electorate, (poll_id,)).one()
        if row is None or row.consultation_id is None:
            return None
        return row.consultation_id, row.electorate or "open"

    @guarded
    def save_census(self, entries: list[CensusEntry], emails: list[tuple[str, str]]) -> None:
        if not entries:
            return
        consultation_id = entries[0].consultation_id
        # The keys first: whatever is written is findable by the purge.
        write_grouped(self.s, [(self._add_key, (consultation_id, census_bucket(key), kind, key))
                               for kind, keys in (("entry", [e.entry_key for e in entries]),
                                                  ("email", [m for m, _ in emails]))
                               for key in keys])
        write_grouped(self.s, [(self._save_entry, (e.district, e.eligible, e.consultation_id,
                                                   e.entry_key)) for e in entries]
                      + [(self._add_eligible, (e.consultation_id, census_bucket(e.entry_key),
                                                e.entry_key)) for e in entries if e.eligible]
                      # An entry no longer eligible leaves its bucket, or the one it had
                      # before the buckets were widened (census.buckets).
                      + [(self._drop_eligible, (e.consultation_id, b, e.entry_key))
                         for e in entries if not e.eligible for b in census_buckets(e.entry_key)]
                      + [(self._save_email, (consultation_id, email, entry))
                         for email, entry in self._sharing(consultation_id, emails)])
        self.s.execute(self._census_back, (consultation_id,))

    def _sharing(self, consultation_id: str, emails: list[tuple[str, str]]
                 ) -> list[tuple[str, str]]:
        """``emails``, those already kept for another entry (an earlier part or upload)
        made SHARED. Read, then written: two uploads of one consultation's census at the
        same moment could each miss the other's address (docs/api.md, "The census")."""
        if not emails:
            return []
        kept = execute_concurrent_with_args(
            self.s, self._entry_by_email, [(consultation_id, email) for email, _ in emails],
            concurrency=128, raise_on_first_error=True)
        merged = []
        for (email, entry), (_, rows) in zip(emails, kept, strict=True):
            before = rows.one()
            merged.append((email, entry if before is None or before.entry_key == entry
                           else SHARED))
        return merged

    @guarded
    def open_census_polls(self, consultation_id: str) -> list[str]:
        # Every poll's status, a row a poll: a census upload's parts each read them (a
        # city's thousands of polls, against its 2,000 rows' writes).
        return sorted(r.poll_id for r in self.s.execute(self._census_polls)
                      if r.consultation_id == consultation_id and r.electorate == "census"
                      and r.status == "open")

    @guarded
    def censuses_to_purge(self, closed_before: datetime) -> list[str]:
        # Every poll's status, a row a poll (as for the sign-in lists' retention).
        polls: dict[str, list[Any]] = {}
        for r in self.s.execute(self._census_polls):
            if r.consultation_id is not None and r.electorate == "census":
                polls.setdefault(r.consultation_id, []).append(r)
        purged = {r.consultation_id for r in self.s.execute(self._census_purges)}
        return sorted(c for c, rows in polls.items() if c not in purged
                      and all(r.status == "closed" for r in rows)
                      and any(r.closed_at is not None for r in rows)
                      and max(utc(r.closed_at) for r in rows if r.closed_at is not None)
                      < closed_before)

    def purge_census(self, consultation_id: str, now: datetime) -> None:
        with guard():
            keys = list(scan_buckets(self.s, self._keys, consultation_id, CENSUS_BUCKETS))
            # The rows first, the keys that find them after: a stop midway leaves every
            # remaining row findable by the next purge.
            write_grouped(self.s, [(self._drop[r.kind], (consultation_id, r.key))
                                   for r in keys if r.kind in self._drop])
            write_grouped(self.s, [(stmt, (consultation_id, b))
                                   for stmt in (self._drop_eligible_bucket, self._drop_keys)
                                   for b in range(CENSUS_BUCKETS)])
            self.s.execute(self._census_purged, (consultation_id, now))

    @guarded
    def count_eligible(self, consultation_id: str) -> int:
        return sum(r.n for r in scan_buckets(self.s, self._count_eligible, consultation_id,
                                             CENSUS_BUCKETS))

    @guarded
    def save_eligible(self, poll_id: str, eligible: int, counted_at: datetime
                      ) -> tuple[int, datetime]:
        self.s.execute(self._save_eligible, (eligible, counted_at, poll_id))
        kept = self.eligible(poll_id)
        assert kept is not None, f"no status for poll {poll_id}"
        return kept

    @guarded
    def eligible(self, poll_id: str) -> tuple[int, datetime] | None:
        row = self.s.execute(self._eligible, (poll_id,)).one()
        if row is None or row.eligible is None:
            return None
        return row.eligible, utc(row.eligible_counted_at)

    @guarded
    def census_entry(self, consultation_id: str, entry_key: str) -> CensusEntry | None:
        r = self.s.execute(self._entry, (consultation_id, entry_key)).one()
        return CensusEntry(r.consultation_id, r.entry_key, r.district, bool(r.eligible),
                           r.claimed_by) if r else None

    @guarded
    def census_entry_key_by_email(self, consultation_id: str, email_key: str) -> str | None:
        r = self.s.execute(self._entry_by_email, (consultation_id, email_key)).one()
        return r.entry_key if r else None

    @guarded
    def claim_census_entry(self, consultation_id: str, entry_key: str, person_id: str) -> str:
        # The caller has read the entry: on a missing row the condition (a null
        # claimed_by) would hold, and the update would make a row of it.
        result = self.s.execute(self._claim_entry, (person_id, consultation_id, entry_key))
        if applied(result):
            return person_id
        # Not applied: the row as it is shows who holds the entry.
        return str(result.one().claimed_by)

    @guarded
    def drop_census_claim(self, consultation_id: str, person_id: str, entry_key: str) -> None:
        self.s.execute(self._drop_claim, (consultation_id, person_id, entry_key))

    @guarded
    def census_claim(self, consultation_id: str, person_id: str) -> str | None:
        r = self.s.execute(self._claim, (consultation_id, person_id)).one()
        return r.entry_key if r else None

    @guarded
    def add_census_claim(self, consultation_id: str, person_id: str, entry_key: str) -> str:
        self.s.execute(self._add_key, (consultation_id, census_bucket(person_id), "claim",
                                       person_id))
        result = self.s.execute(self._add_claim, (consultation_id, person_id, entry_key))
        return entry_key if applied(result) else str(result.one().entry_key)

    @guarded
    def mark_voters(self, marks: list[Mark]) -> None:
        write_grouped(self.s, [(self._mark, (m.poll_id, bucket(m.voter_key), m.voter_key,
                                             m.channel, m.district)) for m in marks])

    @guarded
    def marks_of(self, poll_id: str, voter_key: str) -> list[Mark]:
        return [_mark(r) for r in self.s.execute(
            self._marks_of, (poll_id, buckets(voter_key), voter_key))]

    def marks(self, poll_id: str) -> Iterator[Mark]:
        # A generator: scan_buckets guards where the pages are fetched.
        return (_mark(r) for r in scan_buckets(self.s, self._marks, poll_id, BUCKETS))

    def purge_expired(self, now: datetime) -> dict[str, int]:
        # Nothing to do: codes and counters are written with a TTL (``_swap``), and
        # Cassandra drops them when it runs out.
        return {}

    @guarded
    def ping(self) -> None:
        ping(self.s)


def _seen_at(person: Person, month: str) -> int:
    """The write time of a sign-in's month: the month's first instant, or the person's
    registration if later (kept anyway), never the sign-in's own time, which Cassandra
    would otherwise keep with the cells to the microsecond. Not earlier than the
    registration: a person deleted and registered again in the same month must not have
    their new rows hidden by the deletion's tombstone."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    return write_time(max(start, utc(person.created_at)))


def _swaps(session: Session, table: str, key: str, columns: tuple[str, ...]
           ) -> tuple[PreparedStatement, PreparedStatement]:
    """The insert-if-absent and the update-if-same-version of a row (``_swap``)."""
    first = session.prepare(f"INSERT INTO {table} ({key}, {', '.join(columns)}) VALUES "
                            f"({', '.join('?' * (len(columns) + 1))}) IF NOT EXISTS USING TTL ?")
    then = session.prepare(f"UPDATE {table} USING TTL ? SET "
                           f"{', '.join(f'{c} = ?' for c in columns)} "
                           f"WHERE {key} = ? IF version = ?")
    return first, then


def _person(row: Any) -> Person:
    # A row of persons_by_email or of persons_by_phone.
    return Person(row.person_id, getattr(row, "email", None), row.role, utc(row.created_at),
                  row.district, getattr(row, "phone", None))


def _mark(row: Any) -> Mark:
    return Mark(row.poll_id, row.voter_key, row.channel, row.district)
