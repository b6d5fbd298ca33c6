"""The sign-in list in identity's stores, the same on SQLite and on Cassandra: one mark per
voter and channel, however often it is written; every mark of a poll found, across the
Cassandra partitions; and nothing that says when (a fixed write time in Cassandra)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import CassandraRun
from urne.runtime.registry import SERVICES
from urne.services.identity.buckets import EARLIER_BUCKETS
from urne.services.identity.sign_in_list import BUCKETS, Mark, bucket, count

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def key(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_marks_are_kept_once_and_found_by_voter_and_by_poll(backend: Any) -> None:
    store = backend("identity")
    poll, other = uuid.uuid4().hex, uuid.uuid4().hex
    marks = [Mark(poll, key(n), "online", f"d{n % 3}") for n in range(600)]
    assert len({bucket(m.voter_key) for m in marks}) == BUCKETS  # every partition used
    store.mark_voters(marks)
    store.mark_voters(marks[:100])  # a batch sent again
    store.mark_voters([Mark(poll, key(0), "paper", "d0"), Mark(other, key(0), "online", None)])
    assert sorted(store.marks(poll), key=lambda m: (m.voter_key, m.channel)) == sorted(
        [*marks, Mark(poll, key(0), "paper", "d0")], key=lambda m: (m.voter_key, m.channel))
    assert sorted(store.marks_of(poll, key(0)), key=lambda m: m.channel) == [
        Mark(poll, key(0), "online", "d0"), Mark(poll, key(0), "paper", "d0")]
    assert store.marks_of(poll, key(999)) == []
    assert list(store.marks(uuid.uuid4().hex)) == []


def test_cassandra_keeps_no_write_time_of_a_mark(cassandra: CassandraRun) -> None:
    ks = cassandra.keyspaces["identity"]
    store = SERVICES["identity"].cassandra_store(cassandra.session, ks)
    poll = uuid.uuid4().hex
    store.mark_voters([Mark(poll, key(1), "online", "nord")])
    row = cassandra.session.execute(
        f"SELECT WRITETIME(district) AS at FROM {ks}.sign_in_list WHERE poll_id = %s AND "
        "bucket = %s AND voter_key = %s AND channel = 'online'",
        (poll, bucket(key(1)), key(1))).one()
    assert row.at == 0


def test_the_lists_of_polls_closed_long_enough_are_deleted_once(backend: Any) -> None:
    store = backend("identity")
    old, recent, still_open = (uuid.uuid4().hex for _ in range(3))
    for poll in (old, recent, still_open):
        store.open_poll(poll, "c1", "open")
        store.mark_voters([Mark(poll, key(n), "online", None) for n in range(200)])
    store.close_poll(old, NOW - timedelta(days=91))
    store.close_poll(recent, NOW - timedelta(days=1))
    assert store.voting_status(old) == store.voting_status(recent) == "closed"
    # Other tests' polls share the store: count ours only.
    store.purge_sign_in_lists(NOW - timedelta(days=90))
    assert list(store.marks(old)) == []
    assert len(list(store.marks(recent))) == len(list(store.marks(still_open))) == 200
    assert store.sign_in_list_purged(old) and not store.sign_in_list_purged(recent)
    assert not store.sign_in_list_purged(uuid.uuid4().hex)
    store.mark_voters([Mark(old, key(1), "online", None)])  # a mark come very late
    assert store.purge_sign_in_lists(NOW - timedelta(days=90)) == 0  # done once


def test_marks_written_over_the_earlier_64_partitions_are_still_found(
        cassandra: CassandraRun) -> None:
    """Lists written before the partitions were widened to 128 (migration-free: each of
    the 64 earlier partitions is one of today's): a voter's earlier mark is found, the
    scan counts it once beside a new one, and the purge takes it."""
    ks = cassandra.keyspaces["identity"]
    store = SERVICES["identity"].cassandra_store(cassandra.session, ks)
    poll = uuid.uuid4().hex
    moved = [key(n) for n in range(40) if bucket(key(n)) >= EARLIER_BUCKETS][:5]
    assert len(moved) == 5  # keys whose partition is not the one they had
    for k in moved:
        cassandra.session.execute(
            f"INSERT INTO {ks}.sign_in_list (poll_id, bucket, voter_key, channel, district) "
            "VALUES (%s, %s, %s, 'online', 'nord') USING TIMESTAMP 0",
            (poll, int(k[:8], 16) % EARLIER_BUCKETS, k))
    store.mark_voters([Mark(poll, moved[0], "online", "nord"),  # again, in today's layout
                       Mark(poll, moved[1], "paper", "nord")])
    assert store.marks_of(poll, moved[2]) == [Mark(poll, moved[2], "online", "nord")]
    assert {m.channel for m in store.marks_of(poll, moved[1])} == {"online", "paper"}
    turnout = count(store.marks(poll))
    assert turnout.voters == 5 and turnout.channels == {"online": 5, "paper": 1}

    store.open_poll(poll, "c1", "open")
    store.close_poll(poll, NOW - timedelta(days=200))  # before any other test's polls
    store.purge_sign_in_lists(NOW - timedelta(days=199))
    assert store.sign_in_list_purged(poll)
    assert list(store.marks(poll)) == [] and store.marks_of(poll, moved[2]) == []
