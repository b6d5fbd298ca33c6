"""The census in identity's stores, the same on SQLite and on Cassandra: entries are
updated without losing their claim, and one entry goes to one account, one account to
one entry, even when claims race (a lightweight transaction in Cassandra)."""

from __future__ import annotations

import uuid
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import CassandraRun
from urne.runtime.registry import SERVICES
from urne.services.identity.buckets import EARLIER_BUCKETS
from urne.services.identity.census import SHARED, CensusEntry, bucket
from urne.services.identity.domain import Person

pytestmark = pytest.mark.integration


def test_entries_are_added_updated_and_keep_their_claim(backend: Any) -> None:
    store = backend("identity")
    c = uuid.uuid4().hex
    store.save_census([CensusEntry(c, "k1", "nord", True), CensusEntry(c, "k2", None, False)],
                      [("e1", "k1")])
    assert store.census_entry(c, "k1") == CensusEntry(c, "k1", "nord", True, None)
    assert store.census_entry(c, "k2") == CensusEntry(c, "k2", None, False, None)
    assert store.census_entry(c, "k3") is None
    assert store.census_entry("another", "k1") is None  # per consultation
    assert store.census_entry_key_by_email(c, "e1") == "k1"
    assert store.census_entry_key_by_email(c, "e2") is None

    assert store.claim_census_entry(c, "k1", "p1") == "p1"
    assert store.claim_census_entry(c, "k1", "p1") == "p1"  # again: still theirs
    assert store.claim_census_entry(c, "k1", "p2") == "p1"  # taken
    store.save_census([CensusEntry(c, "k1", "sud", False)], [])
    assert store.census_entry(c, "k1") == CensusEntry(c, "k1", "sud", False, "p1")

    assert store.census_claim(c, "p1") is None
    assert store.add_census_claim(c, "p1", "k1") == "k1"
    assert store.add_census_claim(c, "p1", "k2") == "k1"  # one entry per account
    assert store.census_claim(c, "p1") == "k1"
    store.drop_census_claim(c, "p1", "k2")  # not the one it holds: nothing happens
    assert store.census_claim(c, "p1") == "k1"
    store.drop_census_claim(c, "p1", "k1")
    assert store.census_claim(c, "p1") is None


def test_an_address_kept_for_another_entry_becomes_shared(backend: Any) -> None:
    # Parts of one census (or later uploads) each know only their own rows: the store
    # tells an address already kept for someone else, and keeps it for nobody.
    store = backend("identity")
    c = uuid.uuid4().hex
    entries = [CensusEntry(c, k, None, True) for k in ("k1", "k2", "k3")]
    store.save_census(entries[:1], [("family", "k1"), ("own", "k1")])
    store.save_census(entries[1:2], [("family", "k2"), ("twins", SHARED)])
    assert store.census_entry_key_by_email(c, "family") == SHARED
    assert store.census_entry_key_by_email(c, "twins") == SHARED
    store.save_census(entries, [("family", "k1"), ("twins", "k3"), ("own", "k1")])
    assert [store.census_entry_key_by_email(c, e) for e in ("family", "twins", "own")] \
        == [SHARED, SHARED, "k1"]


def test_the_open_census_polls_of_a_consultation(backend: Any) -> None:
    store = backend("identity")
    c, other = uuid.uuid4().hex, uuid.uuid4().hex
    p1, p2, p3, p4 = (uuid.uuid4().hex for _ in range(4))
    assert store.open_census_polls(c) == []
    store.open_poll(p1, c, "census")
    store.open_poll(p2, c, "open")  # open to all: its census is not the question
    store.open_poll(p3, c, "census")
    store.open_poll(p4, other, "census")
    assert store.open_census_polls(c) == sorted([p1, p3])
    store.close_poll(p1, datetime.now(UTC))
    assert store.open_census_polls(c) == [p3]
    store.close_poll(p3, datetime.now(UTC))
    assert store.open_census_polls(c) == [] and store.open_census_polls(other) == [p4]


def test_racing_claims_give_an_entry_to_one_account(backend: Any) -> None:
    store = backend("identity")
    c = uuid.uuid4().hex
    store.save_census([CensusEntry(c, "k", "nord", True)], [])
    with ThreadPoolExecutor(8) as pool:
        holders = list(pool.map(lambda i: store.claim_census_entry(c, "k", f"p{i}"), range(8)))
    assert len(set(holders)) == 1 and holders[0] in {f"p{i}" for i in range(8)}
    assert Counter(holders)[holders[0]] == 8  # every racer learns who won
    assert store.census_entry(c, "k").claimed_by == holders[0]


def test_racing_claims_of_one_account_record_one_entry(backend: Any) -> None:
    store = backend("identity")
    c = uuid.uuid4().hex
    with ThreadPoolExecutor(8) as pool:
        kept = list(pool.map(lambda i: store.add_census_claim(c, "p", f"k{i}"), range(8)))
    assert len(set(kept)) == 1
    assert store.census_claim(c, "p") == kept[0]


def test_a_poll_is_open_to_its_electorate(backend: Any) -> None:
    store = backend("identity")
    poll = uuid.uuid4().hex
    assert store.electorate(poll) is None
    store.open_poll(poll, "c1", "census")
    assert (store.voting_status(poll), store.electorate(poll)) == ("open", ("c1", "census"))
    store.set_voting_status(poll, "closed")
    assert (store.voting_status(poll), store.electorate(poll)) == ("closed", ("c1", "census"))
    older = uuid.uuid4().hex  # opened before electorates: status only
    store.set_voting_status(older, "open")
    assert store.electorate(older) is None


def test_a_census_polls_eligible_people_are_counted_and_kept_once(backend: Any) -> None:
    """The eligible entries of a census, however often uploaded (an entry uploaded again
    as not eligible no longer counts), and a poll's count at its close: the first kept."""
    store = backend("identity")
    c, other = uuid.uuid4().hex, uuid.uuid4().hex
    keys = [uuid.uuid4().hex for _ in range(300)]
    store.save_census([CensusEntry(c, k, "nord", i % 3 != 0) for i, k in enumerate(keys)], [])
    store.save_census([CensusEntry(other, keys[0], "nord", True)], [])
    assert store.count_eligible(c) == 200
    store.save_census([CensusEntry(c, keys[1], "nord", False),  # no longer eligible
                       CensusEntry(c, keys[0], "sud", True)], [])  # now eligible
    assert store.count_eligible(c) == 200
    assert store.count_eligible(uuid.uuid4().hex) == 0

    poll = uuid.uuid4().hex
    store.open_poll(poll, c, "census")
    assert store.eligible(poll) is None
    at = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert store.save_eligible(poll, 200, at) == (200, at)
    assert store.save_eligible(poll, 199, at + timedelta(minutes=1)) == (200, at)
    assert store.eligible(poll) == (200, at)


def test_an_opening_after_the_close_keeps_the_poll_closed(backend: Any) -> None:
    store = backend("identity")
    poll = uuid.uuid4().hex
    store.close_poll(poll, datetime(2026, 3, 1, 18, 0, tzinfo=UTC))
    store.open_poll(poll, "c1", "census")
    assert (store.voting_status(poll), store.electorate(poll)) == ("closed", ("c1", "census"))


def test_a_census_goes_once_its_last_census_poll_closed_long_enough_ago(
        backend: Any) -> None:
    """The retention (docs/privacy.md): a census whose census polls are all closed, the
    last before the given time, is deleted (entries, e-mail keys, claims, its count),
    once; a census with a census poll still open, or with no census poll (one may still
    come), stays. Uploaded again, it is a census again."""
    store = backend("identity")
    done, running, unused = (uuid.uuid4().hex for _ in range(3))
    at = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    keys = [uuid.uuid4().hex for _ in range(100)]
    for c in (done, running, unused):
        store.save_census([CensusEntry(c, k, "nord", True) for k in keys],
                          [(f"e-{k}", k) for k in keys[:10]])
        assert store.add_census_claim(c, "p1", keys[0]) == keys[0]
        assert store.claim_census_entry(c, keys[0], "p1") == "p1"
    polls = {c: [uuid.uuid4().hex, uuid.uuid4().hex] for c in (done, running)}
    for c, ids in polls.items():
        for poll in ids:
            store.open_poll(poll, c, "census")
    open_to_all = uuid.uuid4().hex
    store.open_poll(open_to_all, unused, "open")
    store.close_poll(open_to_all, at)
    store.close_poll(polls[done][0], at - timedelta(days=3))
    assert done not in store.censuses_to_purge(at + timedelta(days=1))  # one still open
    store.close_poll(polls[done][1], at)
    store.close_poll(polls[running][0], at - timedelta(days=3))
    assert done not in store.censuses_to_purge(at)  # its last close is not before it
    due = store.censuses_to_purge(at + timedelta(seconds=1))
    assert done in due and running not in due and unused not in due

    store.purge_census(done, at + timedelta(seconds=1))
    assert all(store.census_entry(done, k) is None for k in keys)
    assert store.census_entry_key_by_email(done, f"e-{keys[0]}") is None
    assert store.census_claim(done, "p1") is None
    assert store.count_eligible(done) == 0
    assert done not in store.censuses_to_purge(at + timedelta(days=365))  # once
    for c in (running, unused):  # the others keep everything
        assert store.census_entry(c, keys[0]).claimed_by == "p1"
        assert store.census_entry_key_by_email(c, f"e-{keys[1]}") == keys[1]
        assert store.count_eligible(c) == 100

    store.save_census([CensusEntry(done, keys[0], "sud", True)], [])  # a census again
    assert done in store.censuses_to_purge(at + timedelta(seconds=1))


def test_eligible_entries_of_the_earlier_64_buckets_are_counted_and_dropped(
        cassandra: CassandraRun) -> None:
    """A census saved before its buckets were widened to 128: its eligible entries are
    counted, and one no longer eligible leaves the bucket it was written in."""
    ks = cassandra.keyspaces["identity"]
    store = SERVICES["identity"].cassandra_store(cassandra.session, ks)
    c = uuid.uuid4().hex
    moved = [f"k{n}" for n in range(60) if bucket(f"k{n}") >= EARLIER_BUCKETS][:3]
    assert len(moved) == 3  # keys whose bucket is not the one they had
    for k in moved:
        cassandra.session.execute(
            f"INSERT INTO {ks}.census_eligible (consultation_id, bucket, entry_key) "
            "VALUES (%s, %s, %s)", (c, zlib.crc32(k.encode()) % EARLIER_BUCKETS, k))
    store.save_census([CensusEntry(c, "new", None, True)], [])
    assert store.count_eligible(c) == 4
    store.save_census([CensusEntry(c, moved[0], None, False)], [])
    assert store.count_eligible(c) == 3


def test_a_sign_in_month_of_the_earlier_64_buckets_lets_go_of_a_person_seen_again(
        cassandra: CassandraRun) -> None:
    """A person's sign-in month written before the buckets were widened to 128: when they
    sign in again in a later month, the row leaves the bucket it was written in, so the
    earlier month holds only the people last seen in it (what the retention job reads)."""
    ks = cassandra.keyspaces["identity"]
    s = cassandra.session
    store = SERVICES["identity"].cassandra_store(s, ks)
    now = datetime(2026, 12, 2, tzinfo=UTC)
    person = next(p for p in (Person(uuid.uuid4().hex, f"{uuid.uuid4().hex}@example.org",
                                     "participant", now) for _ in range(100))
                  if bucket(p.person_id) >= EARLIER_BUCKETS)  # a bucket it did not have
    store.add_person(person)
    store.mark_seen(person, "1999-01")
    earlier = bucket(person.person_id) % EARLIER_BUCKETS
    # As the earlier layout wrote it: the same row, in the earlier bucket.
    s.execute(f"DELETE FROM {ks}.persons_seen WHERE month = %s AND bucket = %s "
              "AND person_id = %s", ("1999-01", bucket(person.person_id), person.person_id))
    s.execute(f"INSERT INTO {ks}.persons_seen (month, bucket, person_id) VALUES (%s, %s, %s)",
              ("1999-01", earlier, person.person_id))
    assert [p.person_id for p in store.unseen_before("1999-02", 10)] == [person.person_id]

    store.mark_seen(person, "1999-03")

    left = s.execute(f"SELECT person_id FROM {ks}.persons_seen WHERE month = %s "
                     "AND bucket = %s", ("1999-01", earlier))
    assert person.person_id not in {r.person_id for r in left}
    seen = s.execute(f"SELECT person_id FROM {ks}.persons_seen WHERE month = %s "
                     "AND bucket = %s", ("1999-03", bucket(person.person_id)))
    assert person.person_id in {r.person_id for r in seen}
    store.delete_person(person, None, now)
    store.forget_months_before("1999-04")
