"""Cassandra keeps a write time with every cell. The rows that say when someone voted or
signed in are written at a time that says no more than their own columns: a ballot's
rows at its recorded minute (its day, at a desk), a sign-in's month at the month's
first instant (or the person's registration, if later). docs/privacy.md, "Times"."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import CassandraRun
from urne.runtime.registry import SERVICES
from urne.services.identity.domain import Person
from urne.services.tally.domain import StoredBallot
from urne.services.vote.domain import Ballot, recorded_time, request_digest
from urne.storage.cassandra import write_time

pytestmark = pytest.mark.integration

# A moment with seconds and microseconds, as a ballot arrives.
ARRIVED = datetime(2026, 3, 14, 15, 9, 26, 535_897, tzinfo=UTC)


def key(n: int) -> str:
    return hashlib.sha256(f"{uuid.uuid4()}{n}".encode()).hexdigest()


def test_a_ballots_rows_are_written_at_its_recorded_time(cassandra: CassandraRun) -> None:
    ks = cassandra.keyspaces["vote"]
    store = SERVICES["vote"].cassandra_store(cassandra.session, ks)
    poll = uuid.uuid4().hex
    choice = {"answer": "yes"}
    online = Ballot(poll, key(1), 1, uuid.uuid4().hex, uuid.uuid4().hex[:14], choice, "online",
                    recorded_time(ARRIVED, "online"),
                    request_digest=request_digest(choice, "online"))
    at_desk = replace(online, voter_key=key(2), ballot_id=uuid.uuid4().hex, channel="desk",
                      recorded_at=recorded_time(ARRIVED, "desk"), agent="e" * 32)
    store.add_ballots([online, at_desk])
    for ballot, kept in ((online, datetime(2026, 3, 14, 15, 9, tzinfo=UTC)),
                         (at_desk, datetime(2026, 3, 14, tzinfo=UTC))):
        row = cassandra.session.execute(
            f"SELECT WRITETIME(choice) AS choice_at, WRITETIME(ballot_id) AS id_at "
            f"FROM {ks}.voter_ballots WHERE poll_id = %s AND voter_key = %s AND sequence = 1",
            (poll, ballot.voter_key)).one()
        assert row.choice_at == row.id_at == write_time(kept)
    ids = cassandra.session.execute(
        f"SELECT ballot_id, WRITETIME(voter_key) AS at FROM {ks}.ballot_ids WHERE poll_id = %s "
        "ALLOW FILTERING", (poll,))
    assert {(r.ballot_id, r.at) for r in ids} == {
        (online.ballot_id, write_time(online.recorded_at)),
        (at_desk.ballot_id, write_time(at_desk.recorded_at))}
    # Read back as written: the write time changes nothing a reader sees.
    assert store.ballots_of(poll, [online.voter_key])[online.voter_key] == [online]


def test_the_tallys_copy_is_written_at_each_ballots_recorded_time(
        cassandra: CassandraRun) -> None:
    ks = cassandra.keyspaces["tally"]
    store = SERVICES["tally"].cassandra_store(cassandra.session, ks)
    poll = uuid.uuid4().hex
    minute = recorded_time(ARRIVED, "online")
    ballot = StoredBallot(poll, key(3), 1, uuid.uuid4().hex, uuid.uuid4().hex[:14],
                          {"answer": "no"}, "online", minute, position=7)
    store.add_ballots([ballot])
    store.add_ballots([ballot])  # counted again from a checkpoint: the same row
    rows = list(cassandra.session.execute(
        f"SELECT WRITETIME(choice) AS at FROM {ks}.counted WHERE poll_id = %s ALLOW FILTERING",
        (poll,)))
    assert [r.at for r in rows] == [write_time(minute)]
    assert list(store.ballots(poll)) == [ballot]


def test_a_sign_ins_month_keeps_no_finer_time(cassandra: CassandraRun) -> None:
    ks = cassandra.keyspaces["identity"]
    store = SERVICES["identity"].cassandra_store(cassandra.session, ks)
    registered = datetime(2001, 1, 15, 8, 30, 12, tzinfo=UTC)
    person = store.add_person(Person(uuid.uuid4().hex, f"{uuid.uuid4().hex}@example.org",
                                     "participant", registered))
    store.mark_seen(person, "2001-01")  # the month of the registration: its time
    assert _seen_at(cassandra, ks, person) == write_time(registered)
    store.mark_seen(person, "2001-02")  # a later month: its first instant
    assert _seen_at(cassandra, ks, person) == write_time(datetime(2001, 2, 1, tzinfo=UTC))
    # (Whether the month's index still finds the person is the next test's, on the
    # current month: other tests forget these old months' indexes, and a forgotten
    # month's tombstone is newer than a write at its first instant.)
    store.delete_person(person, None, registered)


def test_a_person_registered_again_in_the_same_month_is_seen(cassandra: CassandraRun) -> None:
    """The deletion's tombstone is written now; the new person's month is written at
    their registration, later, so the tombstone does not hide it."""
    ks = cassandra.keyspaces["identity"]
    store = SERVICES["identity"].cassandra_store(cassandra.session, ks)
    email = f"{uuid.uuid4().hex}@example.org"
    now = datetime.now(UTC)
    month = now.strftime("%Y-%m")
    first = store.add_person(Person(uuid.uuid4().hex, email, "participant", now))
    store.mark_seen(first, month)
    store.delete_person(first, None, now)
    again = store.add_person(Person(uuid.uuid4().hex, email, "participant",
                                    datetime.now(UTC) + timedelta(milliseconds=1)))
    store.mark_seen(again, month)
    assert _seen_at(cassandra, ks, again) == write_time(again.created_at)
    next_month = (now.replace(day=1) + timedelta(days=32)).strftime("%Y-%m")
    assert again.person_id in {p.person_id for p in store.unseen_before(next_month, 100_000)}
    store.delete_person(again, None, now)


def _seen_at(cassandra: CassandraRun, ks: str, person: Person) -> int:
    row = cassandra.session.execute(
        f"SELECT seen_month, WRITETIME(seen_month) AS at FROM {ks}.persons_by_email "
        "WHERE email = %s",
        (person.email,)).one()
    assert row.seen_month is not None
    return int(row.at)
