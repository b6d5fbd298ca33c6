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
from urne.services.identity.sign_in_list import BUCKETS, Mark, bucket

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
