"""Behavioural contract of every service store, the same on SQLite and on Cassandra."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.integration.conftest import CassandraRun
from urne.contracts.steps import Step
from urne.counting import rules_adapter
from urne.counting.rules import YesNoAbstainRules, rules_hash
from urne.platform.settings import StoreSettings
from urne.record import merkle
from urne.record.tiles import TiledTree
from urne.runtime.registry import SERVICES
from urne.services.identity import desk, limits
from urne.services.identity import domain as identity_domain
from urne.services.identity.domain import Person
from urne.services.proposal.creations import Creation
from urne.services.proposal.domain import Consultation, Moderation, Poll, Proposal, Report
from urne.services.tally import domain
from urne.services.tally.domain import StoredBallot, TallySheet
from urne.services.vote.domain import (
    ENUMERATION_BUCKETS,
    Admitted,
    Ballot,
    BallotBox,
    Seal,
    enumeration_bucket,
    mark_paper,
    request_digest,
)
from urne.storage.cassandra import GROUP_ROWS
from urne.storage.migrations import migration_files
from urne.storage.sqlite import SqliteDb

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = YesNoAbstainRules(method="yes_no_abstain", question="Open the library on Sundays?")
# Millisecond precision: what both backends keep (Cassandra's timestamp is milliseconds).
NOW = datetime(2026, 11, 28, 10, 30, 15, 123000, tzinfo=UTC)
T = TypeVar("T")


def new_id() -> str:
    return uuid.uuid4().hex


def voter(i: int) -> str:
    """A 64-hex voter key whose enumeration bucket is ``i % 128``."""
    return (f"{i:08x}" + uuid.uuid5(uuid.NAMESPACE_OID, str(i)).hex * 2)[:64]


def race(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run ``fn(0..n-1)`` from n threads released together."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, range(n)))


def aware_utc(value: datetime | None) -> bool:
    return value is not None and value.utcoffset() == timedelta(0)


# --- identity -------------------------------------------------------------------------


def test_identity_persons(backend: Any) -> None:
    store = backend("identity")
    email = f"{new_id()}@example.org"
    assert store.person_by_email(email) is None
    first = store.add_person(Person(new_id(), email, "participant", NOW))
    assert first == Person(first.person_id, email, "participant", NOW)
    assert aware_utc(first.created_at)
    # A second registration of the same address gets the first person back.
    again = store.add_person(Person(new_id(), email, "organiser", NOW + timedelta(seconds=1)))
    assert again == first == store.person_by_email(email)
    assert store.person_by_email(f"other-{email}") is None


def test_identity_add_person_race_makes_one_person(backend: Any) -> None:
    store = backend("identity")
    email = f"{new_id()}@example.org"
    candidates = [Person(new_id(), email, "participant", NOW) for _ in range(6)]
    got = race(len(candidates), lambda i: store.add_person(candidates[i]))
    assert len(set(got)) == 1 and got[0] in candidates
    assert store.person_by_email(email) == got[0]


def test_identity_persons_by_id_and_their_district(backend: Any) -> None:
    store = backend("identity")
    email, other = f"{new_id()}@example.org", f"{new_id()}@example.org"
    person = store.add_person(Person(new_id(), email, "participant", NOW))
    bystander = store.add_person(Person(new_id(), other, "participant", NOW))
    assert person.district is None
    assert store.person(person.person_id) == person
    assert store.person(new_id()) is None
    north = replace(person, district="north")
    store.save_district(north)
    assert store.person(person.person_id) == north == store.person_by_email(email)
    store.save_district(replace(person, district="Quartier-2.sud"))  # a new declaration
    assert store.person(person.person_id).district == "Quartier-2.sud"
    assert store.person(bystander.person_id) == bystander  # nobody else's changed
    # Signing in again (add_person on a taken address) keeps the declared district.
    again = store.add_person(Person(new_id(), email, "participant", NOW))
    assert again.district == "Quartier-2.sud"
    declared = Person(new_id(), f"{new_id()}@example.org", "participant", NOW, "east")
    assert store.add_person(declared) == declared == store.person(declared.person_id)


def test_identity_persons_registered_by_phone(backend: Any) -> None:
    store = backend("identity")
    phone = f"+336{secrets.randbelow(10**8):08d}"
    assert store.person_by_phone(phone) is None
    person = Person(new_id(), None, "participant", NOW, phone=phone)
    assert store.add_person(person) == person == store.person_by_phone(phone)
    assert store.person(person.person_id) == person  # found by id, as e-mail people are
    # A second first sign-in of the number, even racing, gets the first person back.
    candidates = [Person(new_id(), None, "participant", NOW, phone=phone) for _ in range(4)]
    assert set(race(len(candidates), lambda i: store.add_person(candidates[i]))) == {person}
    # District and role are kept in the number's row; nobody else's changes.
    bystander = store.add_person(Person(new_id(), f"{new_id()}@example.org", "participant",
                                        NOW))
    store.save_district(replace(person, district="sud"))
    store.save_role(replace(person, district="sud", role="agent"))
    assert store.person(person.person_id) == replace(person, district="sud", role="agent")
    assert store.person(bystander.person_id) == bystander
    assert store.person_by_email(phone) is None and store.person_by_phone("+33600000000") is None
    # Codes are kept under the number's keyed hash as under an address's.
    key = identity_domain.codes_key("s", phone)
    codes = identity_domain.with_new_code("s", key, None, NOW, "123456")
    assert store.swap_login_codes(None, codes) and store.login_codes(key) == codes


def test_identity_a_deleted_person_leaves_their_id_under_a_keyed_hash(backend: Any) -> None:
    """Deleting a person (by e-mail, by phone, at a desk) deletes their row and keeps the
    departed key with their id, until they are back."""
    store = backend("identity")
    email, phone = f"{new_id()}@example.org", f"+3361{uuid.uuid4().int % 10**7:07d}"
    by_email = store.add_person(Person(new_id(), email, "participant", NOW, "north"))
    by_phone = store.add_person(Person(new_id(), None, "participant", NOW, phone=phone))
    at_desk = Person(new_id(), None, "participant", NOW)
    store.add_desk_person(at_desk, desk.issued("s", at_desk.person_id, desk.new_code(), NOW))
    keys = {p.person_id: new_id() for p in (by_email, by_phone)}
    for person in (by_email, by_phone, at_desk):
        store.delete_person(person, keys.get(person.person_id), NOW)
        assert store.person(person.person_id) is None
    assert store.person_by_email(email) is None and store.person_by_phone(phone) is None
    assert {store.departed(k) for k in keys.values()} == set(keys)
    store.forget_departed(keys[by_email.person_id])
    assert store.departed(keys[by_email.person_id]) is None
    assert store.departed(new_id()) is None


def test_identity_people_not_seen_for_long_are_found_by_month(backend: Any) -> None:
    """The month of each sign-in (nothing finer); the people last seen before a month,
    at most so many, whatever table they are in; once they are deleted, what found them
    may go."""
    store = backend("identity")
    idle = store.add_person(Person(new_id(), f"{new_id()}@example.org", "participant", NOW))
    back = store.add_person(Person(new_id(), None, "participant", NOW,
                                   phone=f"+3361{uuid.uuid4().int % 10**7:07d}"))
    at_desk = Person(new_id(), None, "participant", NOW)
    store.add_desk_person(at_desk, desk.issued("s", at_desk.person_id, desk.new_code(), NOW))
    for person, month in ((idle, "2001-01"), (back, "2001-01"), (at_desk, "2001-02"),
                          (back, "2001-05")):
        store.mark_seen(person, month)
    found = store.unseen_before("2001-03", 10)
    assert sorted(p.person_id for p in found) == sorted([idle.person_id, at_desk.person_id])
    assert len(store.unseen_before("2001-03", 1)) == 1
    for person in found:
        store.delete_person(person, None, NOW)
    store.forget_months_before("2001-03")
    assert store.unseen_before("2001-03", 10) == []
    assert [p.person_id for p in store.unseen_before("2001-06", 10)] == [back.person_id]
    store.delete_person(back, None, NOW)
    store.forget_months_before("2001-06")


def test_identity_persons_registered_at_desk(backend: Any) -> None:
    store = backend("identity")
    person = Person(new_id(), None, "participant", NOW, "nord")
    first = desk.issued("s", person.person_id, desk.new_code(), NOW)
    store.add_desk_person(person, first)
    assert store.person(person.person_id) == person
    # A new card voids the previous code; the current one signs in once, racing or not.
    second = desk.issued("s", person.person_id, desk.new_code(), NOW)
    store.save_desk_code(second)
    later = NOW + timedelta(minutes=1)
    pid = person.person_id
    assert store.desk_code_holder(second.code_hash) == pid
    assert not store.spend_desk_code(pid, first.code_hash, later)
    assert not store.desk_card_used(pid)
    assert store.desk_code_holder(second.code_hash) == pid  # a read: nothing spent
    assert not store.spend_desk_code(new_id(), second.code_hash, later)  # not theirs
    got = race(4, lambda _: store.spend_desk_code(pid, second.code_hash, later))
    assert (got.count(True), got.count(False)) == (1, 3)
    assert store.desk_card_used(person.person_id)
    # Registered again (a second delivery of the registration): the same person, a code.
    fourth = desk.issued("s", person.person_id, desk.new_code(), NOW)
    store.add_desk_person(replace(person, district="ailleurs"), fourth)
    assert store.person(person.person_id) == person
    assert store.spend_desk_code(pid, fourth.code_hash, later)
    assert not store.spend_desk_code(pid, second.code_hash, later)
    # Expired: refused, even unused.
    third = desk.issued("s", person.person_id, desk.new_code(), NOW)
    store.save_desk_code(third)
    assert not store.spend_desk_code(pid, third.code_hash, third.expires_at)
    # District and role in their row; never found by an address.
    store.save_district(replace(person, district="sud"))
    store.save_role(replace(person, district="sud", role="agent"))
    assert store.person(person.person_id) == replace(person, district="sud", role="agent")


def test_identity_login_codes_and_voting_status(backend: Any) -> None:
    store = backend("identity")
    key = identity_domain.codes_key("s", f"{new_id()}@example.org")
    assert store.login_codes(key) is None
    first = identity_domain.with_new_code("s", key, None, NOW, "123456")
    assert store.swap_login_codes(None, first)
    got = store.login_codes(key)
    assert got == first and aware_utc(got.pending[0].expires_at)
    second = identity_domain.with_new_code("s", key, first, NOW, "654321")
    assert store.swap_login_codes(first, second)
    assert store.login_codes(key) == second and len(second.pending) == 2
    # Conditional: a write from a stale read (another process wrote since) is refused,
    # and so is a second first write.
    assert not store.swap_login_codes(first, identity_domain.spent(first))
    assert not store.swap_login_codes(None, first)
    assert store.login_codes(key) == second

    counter = limits.Counter(f"t:{new_id()}", NOW, 1)
    assert store.counter(counter.key) is None
    assert store.swap_counter(None, counter, timedelta(hours=1))
    assert not store.swap_counter(None, counter, timedelta(hours=1))
    more = replace(counter, count=2, version=1)
    assert store.swap_counter(counter, more, timedelta(hours=1))
    assert not store.swap_counter(counter, replace(more, count=9), timedelta(hours=1))
    got_counter = store.counter(counter.key)
    assert got_counter == more and aware_utc(got_counter.window_started_at)

    poll = new_id()
    assert store.voting_status(poll) is None
    store.set_voting_status(poll, "open")
    assert store.voting_status(poll) == "open"
    store.set_voting_status(poll, "closed")
    assert store.voting_status(poll) == "closed"
    store.ping()


# --- proposal -------------------------------------------------------------------------


def test_proposal_consultations_and_proposals(backend: Any) -> None:
    store = backend("proposal")
    c = Consultation(new_id(), "Budget 2027", "Ideas for the parks", new_id(), NOW)
    store.add_consultation(c)
    assert store.consultation(c.consultation_id) == c
    assert c.status == "draft" and c.organisers == (c.created_by,)
    assert aware_utc(store.consultation(c.consultation_id).created_at)
    assert store.consultation(new_id()) is None
    assert c in store.consultations(500)

    proposals = [Proposal(new_id(), c.consultation_id, f"P{i}", "body", new_id(),
                          NOW + timedelta(seconds=i)) for i in range(3)]
    for p in reversed(proposals):
        store.add_proposal(p)
    got = list(store.proposals(c.consultation_id))
    assert got == proposals  # oldest first
    assert all(aware_utc(p.created_at) for p in got)
    assert list(store.proposals(new_id())) == []
    store.ping()


def test_proposal_consultations_newest_first_up_to_limit(backend: Any) -> None:
    store = backend("proposal")
    # Later than anything else this run stores, so they head the listing.
    base = datetime(2999, 1, 1, tzinfo=UTC)
    made = [Consultation(new_id(), f"C{i}", "", new_id(), base + timedelta(minutes=i))
            for i in range(3)]
    for c in (made[1], made[0], made[2]):
        store.add_consultation(c)
    assert store.consultations(2) == [made[2], made[1]]
    assert store.consultations(3) == [made[2], made[1], made[0]]
    # The limit counts what the filter keeps, however far down the listing that is.
    assert store.consultations(2, lambda c: c.title != "C1") == [made[2], made[0]]
    assert store.consultations(1, lambda c: c.title == "C0") == [made[0]]


STEPS = (Step(kind="proposals", starts_at=NOW, ends_at=NOW + timedelta(days=7)),
         Step(kind="vote", starts_at=NOW + timedelta(days=7, microseconds=1),
              ends_at=NOW + timedelta(days=9)))


def test_proposal_consultation_edits_write_what_changed(backend: Any) -> None:
    store = backend("proposal")
    # In the past, as every creation time is: Cassandra writes a consultation at it, so
    # the edits below (written now) come after.
    base = datetime(2001, 1, 1, tzinfo=UTC)
    c = Consultation(new_id(), "Parks", "Trees", new_id(), base, time_zone="Europe/Paris",
                     steps=STEPS)
    store.add_consultation(c)
    assert store.consultation(c.consultation_id) == c  # steps to the microsecond (JSON)
    # Two edits from the same stored state, of different fields: both stay.
    renamed, changed = c.edit(title="Parks and gardens")
    store.save_consultation(renamed, changed)
    rescheduled, changed = c.edit(steps=STEPS[1:], time_zone="UTC")
    store.save_consultation(rescheduled, changed)
    published = c.publish(NOW)
    store.save_consultation(published, ("status", "published_at"))
    expected = replace(c, title="Parks and gardens", steps=STEPS[1:], time_zone="UTC",
                       status="published", published_at=NOW)
    assert store.consultation(c.consultation_id) == expected
    assert store.consultations(1, lambda found: found.consultation_id == c.consultation_id) == [
        expected]  # the listing's copy too (Cassandra keeps one)
    store.save_consultation(expected, ())  # nothing to write


def test_proposal_organisers_added_concurrently_all_stay(backend: Any) -> None:
    store = backend("proposal")
    c = Consultation(new_id(), "Parks", "", "creator", NOW)
    store.add_consultation(c)
    people = [f"organiser-{i}" for i in range(6)]
    race(6, lambda i: store.add_organiser(c, people[i], NOW + timedelta(seconds=1 + i)))
    store.add_organiser(c, people[0], NOW + timedelta(hours=1))  # already there: no effect
    got = store.consultation(c.consultation_id)
    assert got.organisers[0] == "creator"
    assert sorted(got.organisers[1:]) == people and len(got.organisers) == 7
    assert store.consultations(500, lambda f: f.consultation_id == c.consultation_id)[
        0].organisers == got.organisers


def test_proposal_polls(backend: Any) -> None:
    store = backend("proposal")
    cid = new_id()
    store.add_consultation(Consultation(cid, "Parks", "", new_id(), NOW))
    poll = Poll(new_id(), cid, new_id(), RULES)
    assert store.poll(poll.poll_id) is None
    store.add_poll(poll)
    assert store.poll(poll.poll_id) == poll
    edited = poll.edit_rules(YesNoAbstainRules(method="yes_no_abstain", question="Mondays?"))
    assert store.replace_poll(edited, poll)
    opened = edited.open(NOW)
    # Made from what is no longer stored (the same status, but a change came since):
    # nothing written. An edit and an opening read at once cannot both be stored.
    assert not store.replace_poll(poll.open(NOW), poll)
    assert store.poll(poll.poll_id) == edited
    assert store.replace_poll(opened, store.poll(poll.poll_id))
    got = store.poll(poll.poll_id)
    assert got == opened and got.rules_hash == rules_hash(edited.rules)
    assert aware_utc(got.opened_at)
    assert not store.replace_poll(poll.edit_rules(RULES), poll)  # frozen: too late
    # Two extensions read at once: one is stored, the other decided again.
    first, second = (got.extend(NOW, NOW + timedelta(hours=h), "more time")
                     for h in (3, 2))
    assert store.replace_poll(first, got) and not store.replace_poll(second, got)
    assert store.poll(poll.poll_id) == first
    closed = first.close(NOW + timedelta(hours=1))
    assert store.replace_poll(closed, store.poll(poll.poll_id))
    done = closed.publish(NOW + timedelta(hours=2))
    assert store.replace_poll(done, store.poll(poll.poll_id))
    assert store.poll(poll.poll_id) == done
    stray = Poll(new_id(), cid, None, RULES)
    assert not store.replace_poll(stray.edit_rules(RULES), stray)  # no such poll
    other = Poll(new_id(), cid, None, RULES)
    store.add_poll(other)
    assert store.polls(cid) == sorted([done, other], key=lambda p: p.poll_id)
    assert store.polls(new_id()) == []
    store.ping()


def test_proposal_racing_openings_one_wins(backend: Any) -> None:
    store = backend("proposal")
    cid = new_id()
    store.add_consultation(Consultation(cid, "Parks", "", new_id(), NOW))
    poll = Poll(new_id(), cid, None, RULES)
    store.add_poll(poll)
    rivals = [poll.edit_rules(YesNoAbstainRules(method="yes_no_abstain", question=f"Q{i}?"))
              .open(NOW + timedelta(seconds=i)) for i in range(4)]
    won = race(4, lambda i: store.replace_poll(rivals[i], poll))
    assert won.count(True) == 1
    assert store.poll(poll.poll_id) == rivals[won.index(True)]


def test_proposal_results_visibility_and_signature(backend: Any) -> None:
    store = backend("proposal")
    cid = new_id()
    store.add_consultation(Consultation(cid, "Parks", "", new_id(), NOW))
    poll = Poll(new_id(), cid, None, RULES, results_visibility="embargoed")
    store.add_poll(poll)
    assert store.poll(poll.poll_id) == poll
    live = poll.edit_rules(RULES, "live")
    assert store.replace_poll(live, poll)
    assert store.poll(poll.poll_id).results_visibility == "live"
    embargoed = live.edit_rules(RULES, "embargoed").open(NOW).close(NOW)
    assert store.replace_poll(embargoed, store.poll(poll.poll_id))
    before = store.poll(poll.poll_id)
    # The signature is its own write, kept by later status changes and written once.
    store.mark_signed(poll.poll_id, NOW + timedelta(seconds=1))
    store.mark_signed(poll.poll_id, NOW + timedelta(seconds=2))
    signed = replace(embargoed, result_signed_at=NOW + timedelta(seconds=1))
    assert store.poll(poll.poll_id) == signed
    released = before.release(NOW + timedelta(hours=1))  # read before the signature
    assert store.replace_poll(released, before)
    assert store.poll(poll.poll_id) == replace(released, result_signed_at=signed.result_signed_at)
    assert aware_utc(store.poll(poll.poll_id).result_signed_at)


def test_proposal_electorate(backend: Any) -> None:
    store = backend("proposal")
    cid = new_id()
    store.add_consultation(Consultation(cid, "Parks", "", new_id(), NOW))
    default = Poll(new_id(), cid, None, RULES)
    store.add_poll(default)
    assert store.poll(default.poll_id) == default
    assert store.poll(default.poll_id).electorate == "open"
    poll = Poll(new_id(), cid, None, RULES, electorate="census")
    store.add_poll(poll)
    assert store.poll(poll.poll_id) == poll
    to_all = poll.edit_rules(RULES, electorate="open")
    assert store.replace_poll(to_all, poll)
    assert store.poll(poll.poll_id).electorate == "open"
    census = to_all.edit_rules(RULES, "live", "census").open(NOW)
    assert store.replace_poll(census, store.poll(poll.poll_id))
    got = store.poll(poll.poll_id)
    assert got == census and (got.electorate, got.results_visibility) == ("census", "live")
    closed = census.close(NOW + timedelta(hours=1))  # kept by later status changes
    assert store.replace_poll(closed, store.poll(poll.poll_id))
    assert store.poll(poll.poll_id) == closed
    assert store.polls(cid) == sorted([closed, default], key=lambda p: p.poll_id)
    # On the schedule's agenda too.
    scheduled = Poll(new_id(), cid, None, RULES, electorate="census",
                     opens_at=NOW + timedelta(days=1))
    store.add_poll(scheduled)
    assert [p for p, _ in store.agenda() if p.poll_id == scheduled.poll_id] == [scheduled]


def _consultation(store: Any) -> str:
    c = Consultation(new_id(), "Budget", "", new_id(), NOW)
    store.add_consultation(c)
    return c.consultation_id


def _proposal(cid: str, i: int, author: str | None = None, **fields: Any) -> Proposal:
    return Proposal(new_id(), cid, f"P{i}", f"Body {i}", author or new_id(),
                    NOW + timedelta(seconds=i), **fields)


def test_proposal_fields_status_and_moderation(backend: Any) -> None:
    store = backend("proposal")
    cid = _consultation(store)
    p = _proposal(cid, 0, category="parks", district="nord", estimated_cost=120_000,
                  status="submitted")
    assert store.add_proposal(p)
    assert store.proposal(p.proposal_id) == p and store.proposal(new_id()) is None
    published = p.move("published", NOW + timedelta(hours=1))
    assert not store.replace_proposal(published, expected=published)  # not what is stored
    assert store.replace_proposal(published, expected=p)
    hidden = published.hide("Insults", "moderator-1", NOW + timedelta(hours=2))
    assert store.replace_proposal(hidden, expected=published)
    got = store.proposal(p.proposal_id)
    assert got == hidden and got.moderation == Moderation("Insults", "moderator-1",
                                                          NOW + timedelta(hours=2))
    assert aware_utc(got.status_changed_at) and aware_utc(got.moderation.hidden_at)
    rejected = hidden.unhide().move("rejected", NOW + timedelta(hours=3), "Not feasible")
    assert store.replace_proposal(rejected, expected=hidden)
    assert store.proposal(p.proposal_id) == rejected
    assert list(store.proposals(cid)) == [rejected]
    # No such proposal: nothing written.
    assert not store.replace_proposal(_proposal(cid, 1), expected=_proposal(cid, 1))


def test_proposal_pages_in_order_after_a_key(backend: Any) -> None:
    store = backend("proposal")
    cid = _consultation(store)
    # Two at the same instant: ordered by id.
    made = [_proposal(cid, i // 2 if i < 2 else i) for i in range(250)]
    for p in reversed(made):
        store.add_proposal(p)
    ordered = sorted(made, key=lambda p: p.key)
    assert list(store.proposals(cid)) == ordered  # across the stores' own pages
    assert list(store.proposals(cid, after=ordered[0].key)) == ordered[1:]
    assert list(store.proposals(cid, after=ordered[210].key)) == ordered[211:]
    assert list(store.proposals(cid, after=ordered[-1].key)) == []
    first = next(iter(store.proposals(cid)))  # a reader may stop whenever it likes
    assert first == ordered[0]


def test_proposal_limit_holds_under_racing_submissions(backend: Any) -> None:
    store = backend("proposal")
    cid, author = _consultation(store), new_id()
    racing = [_proposal(cid, i, author, status="submitted") for i in range(8)]
    won = race(8, lambda i: store.add_proposal(racing[i], limit=3))
    assert won.count(True) == 3
    stored = {p.proposal_id for p in store.proposals(cid)}
    assert stored == {p.proposal_id for p, ok in zip(racing, won, strict=True) if ok}
    assert not store.add_proposal(_proposal(cid, 9, author, status="submitted"), limit=3)
    # An organiser's proposals do not count; another author, another consultation have
    # their own quota; a higher limit leaves room again.
    assert store.add_proposal(_proposal(cid, 10, author))
    assert store.add_proposal(_proposal(cid, 11, new_id(), status="submitted"), limit=3)
    assert store.add_proposal(_proposal(_consultation(store), 12, author, status="submitted"),
                              limit=3)
    assert store.add_proposal(_proposal(cid, 13, author, status="submitted"), limit=4)
    assert len(list(store.proposals(cid))) == 6


def test_proposal_a_creation_is_claimed_once_and_stored_once(backend: Any) -> None:
    """A creation retried (an Idempotency-Key): its id is claimed by the first of racing
    claims, whose digest and time every other one gets; the same consultation, proposal
    and poll stored again change nothing, and a proposal takes one slot of its author's
    limit however often it is stored."""
    store = backend("proposal")
    creation = new_id()
    claims = [Creation(f"digest-{i}", NOW + timedelta(seconds=i)) for i in range(6)]
    firsts = race(6, lambda i: store.claim_creation(creation, claims[i]))
    [winner] = [claims[i] for i, first in enumerate(firsts) if first is None]
    assert all(first == winner for first in firsts if first is not None)
    assert store.claim_creation(creation, claims[0]) == winner
    assert store.creation(creation) == winner
    other = new_id()
    assert store.creation(other) is None
    assert store.claim_creation(other, claims[0]) is None
    assert store.creation(other) == claims[0]
    store.release_creation(other, "digest-1")  # another request's: kept
    assert store.creation(other) == claims[0]
    store.release_creation(other, claims[0].request_digest)
    assert store.creation(other) is None

    c = Consultation(new_id(), "Budget", "", "ada", NOW)
    for _ in range(2):
        store.add_consultation(c)
    assert [x.consultation_id for x in store.consultations(100)].count(c.consultation_id) == 1
    author = new_id()
    p = _proposal(c.consultation_id, 0, author, status="submitted")
    assert all(race(4, lambda i: store.add_proposal(p, limit=2)))
    assert store.add_proposal(_proposal(c.consultation_id, 1, author, status="submitted"),
                              limit=2)
    assert not store.add_proposal(_proposal(c.consultation_id, 2, author, status="submitted"),
                                  limit=2)
    assert len(list(store.proposals(c.consultation_id))) == 2
    poll = Poll(new_id(), c.consultation_id, None, RULES)
    for _ in range(2):
        store.add_poll(poll)
    assert store.polls(c.consultation_id) == [poll]


def test_proposal_a_late_retried_creation_leaves_the_changes_since_alone(backend: Any
                                                                         ) -> None:
    """A retried creation that stalled between finding nothing stored and storing (the
    first attempt stored it meanwhile, and it was changed since) changes nothing: a
    consultation's write is older than every change since (Cassandra) or not made
    (SQLite), in the row and in the listing alike; a proposal and a poll are stored
    only where their id is free."""
    store = backend("proposal")
    made = Consultation(new_id(), "Budget", "", "ada", NOW)
    store.add_consultation(made)
    edited, changed = made.edit(title="Budget 2027", description="For the parks")
    store.save_consultation(edited, changed)
    published = edited.publish(NOW + timedelta(minutes=1))
    store.save_consultation(published, frozenset({"status", "published_at"}))
    shared = published.with_organiser("bea")
    store.add_organiser(shared, "bea", NOW + timedelta(minutes=2))

    proposal = _proposal(made.consultation_id, 0, status="submitted")
    store.add_proposal(proposal, limit=1)
    moved = proposal.move("published", NOW + timedelta(minutes=3))
    assert store.replace_proposal(moved, expected=proposal)
    poll = Poll(new_id(), made.consultation_id, None, RULES)
    store.add_poll(poll)
    opened = poll.open(NOW + timedelta(minutes=4))
    assert store.replace_poll(opened, poll)

    # The retries, late.
    store.add_consultation(made)
    assert store.add_proposal(proposal, limit=1)
    store.add_poll(poll)

    assert store.consultation(made.consultation_id) == shared
    assert store.consultations(1, lambda c: c.consultation_id == made.consultation_id) == [
        shared]  # the listing's copy too (Cassandra keeps one)
    assert store.proposal(proposal.proposal_id) == moved
    assert store.poll(poll.poll_id) == opened


def test_proposal_racing_moves_one_wins(backend: Any) -> None:
    store = backend("proposal")
    p = _proposal(_consultation(store), 0, status="submitted")
    store.add_proposal(p)
    rivals = [p.move("published", NOW), p.move("rejected", NOW, "No"),
              p.hide("Spam", "m", NOW), p.move("published", NOW + timedelta(seconds=1))]
    won = race(4, lambda i: store.replace_proposal(rivals[i], expected=p))
    assert won.count(True) == 1
    assert store.proposal(p.proposal_id) == rivals[won.index(True)]


def test_proposal_reports_once_per_person(backend: Any) -> None:
    store = backend("proposal")
    cid = _consultation(store)
    a, b = _proposal(cid, 0), _proposal(cid, 1)
    for p in (a, b):
        store.add_proposal(p)
    first = Report(a.proposal_id, cid, "rita", "Offensive", NOW)
    assert store.add_report(first)
    assert not store.add_report(Report(a.proposal_id, cid, "rita", "Again", NOW))
    racing = race(4, lambda i: store.add_report(
        Report(a.proposal_id, cid, "sam", f"Spam {i}", NOW + timedelta(seconds=1))))
    assert racing.count(True) == 1
    other = Report(b.proposal_id, cid, "rita", "Off topic", NOW + timedelta(seconds=2))
    assert store.add_report(other)
    of_a = store.reports(cid, a.proposal_id)
    assert [(r.reporter_id, r.reason) for r in of_a] == [
        ("rita", "Offensive"), ("sam", f"Spam {racing.index(True)}")]
    assert all(aware_utc(r.reported_at) for r in of_a)
    assert store.reports(cid) == [*of_a, other]  # oldest first
    assert store.reports(new_id()) == []


def test_proposal_participation_is_forgotten_and_stays_so(backend: Any) -> None:
    """Forgetting a consultation's participation: its proposals keep all but their
    authors and their quota slots (two authorless proposals may share one), its reports
    go, and when is noted; another consultation's stay untouched; doing it again forgets
    nothing more."""
    store = backend("proposal")
    cid, other = _consultation(store), _consultation(store)
    author = new_id()
    mine = [_proposal(cid, i, author, status="submitted") for i in range(2)]
    theirs = _proposal(cid, 2, status="submitted")
    kept = _proposal(other, 3, author, status="submitted")
    for p in (*mine, theirs, kept):
        assert store.add_proposal(p, limit=2)
    assert not store.add_proposal(_proposal(cid, 4, author, status="submitted"), limit=2)
    for p in (mine[0], theirs, kept):
        assert store.add_report(Report(p.proposal_id, p.consultation_id, "rita", "Spam", NOW))
    def noted() -> dict[str, datetime | None]:
        return {c.consultation_id: at for c, at in store.consultations_forgotten_at()
                if c.consultation_id in (cid, other)}

    assert noted() == {cid: None, other: None}

    assert store.forget_participation(cid, NOW) == 3
    forgotten = [replace(p, author_id="") for p in (*mine, theirs)]
    assert list(store.proposals(cid)) == forgotten
    assert store.proposal(mine[0].proposal_id) == forgotten[0]
    assert store.reports(cid) == []
    assert noted() == {cid: NOW, other: None}
    assert aware_utc(noted()[cid])
    assert store.forget_participation(cid, NOW + timedelta(days=1)) == 0
    assert noted() == {cid: NOW + timedelta(days=1), other: None}
    assert list(store.proposals(cid)) == forgotten
    # The other consultation is as it was: its author's quota and report stay.
    assert list(store.proposals(other)) == [kept]
    assert [r.reporter_id for r in store.reports(other)] == ["rita"]
    assert store.add_proposal(_proposal(other, 5, author, status="submitted"), limit=2)
    assert not store.add_proposal(_proposal(other, 6, author, status="submitted"), limit=2)
    assert store.add_proposal(_proposal(cid, 7, author, status="submitted"), limit=1)


# --- vote -----------------------------------------------------------------------------


def _ballot(poll_id: str, voter_key: str, sequence: int, answer: str = "yes") -> Ballot:
    choice = {"answer": answer}
    return Ballot(poll_id, voter_key, sequence, new_id(), new_id()[:14], choice, "online", NOW,
                  idempotency_key=f"key-{sequence}",
                  request_digest=request_digest(choice, "online"))


def test_vote_polls(backend: Any) -> None:
    store = backend("vote")
    pid = new_id()
    assert store.ballot_box(pid) is None
    store.save_ballot_box(BallotBox(pid, RULES, rules_hash(RULES), "open"))
    assert store.ballot_box(pid) == BallotBox(pid, RULES, rules_hash(RULES), "open")
    store.save_ballot_box(BallotBox(pid, RULES, rules_hash(RULES), "closed"))
    assert store.ballot_box(pid) == BallotBox(pid, RULES, rules_hash(RULES), "closed")
    late = new_id()  # "closed" arrived before "opened": no rules yet
    store.save_ballot_box(BallotBox(late, None, None, "closed"))
    assert store.ballot_box(late) == BallotBox(late, None, None, "closed")
    final = new_id()  # a ballot cast in person is final there
    box = BallotBox(final, RULES, rules_hash(RULES), "open", cross_channel="in_person_final")
    store.save_ballot_box(box)
    assert store.ballot_box(final) == box
    store.ping()


def test_vote_ballots_of_voters(backend: Any) -> None:
    store = backend("vote")
    pid, a, b = new_id(), voter(0), voter(16)  # same enumeration bucket, other voter
    assert store.ballots_of(pid, [a, b]) == {}
    first, second = _ballot(pid, a, 1), _ballot(pid, a, 2, "no")
    other = replace(_ballot(pid, b, 1), channel="desk", agent="e" * 32)  # cast at a desk
    store.add_ballots([first, second, other])
    found = store.ballots_of(pid, [a, b, voter(3)])
    assert sorted(found[a], key=lambda x: x.sequence) == [first, second]  # every field back
    assert found[b] == [other] and voter(3) not in found
    assert store.ballots_of(new_id(), [a]) == {}
    assert sorted(store.ballot_ids(pid)) == sorted(x.ballot_id for x in (first, second, other))


def test_a_paper_mark_is_kept_with_the_voters_rows_and_is_no_ballot(backend: Any) -> None:
    store = backend("vote")
    pid, marked, voted = new_id(), voter(0), voter(16)
    decision = mark_paper(pid, marked, [], new_id(), NOW)
    assert isinstance(decision, Admitted)
    ballot = _ballot(pid, voted, 1)
    store.add_ballots([decision.ballot, ballot])
    assert store.ballots_of(pid, [marked]) == {marked: [decision.ballot]}  # every field back
    assert list(store.ballot_ids(pid)) == [ballot.ballot_id]
    assert [b for chunk in store.stored_ballots(pid, 10) for b in chunk] == [ballot]


def test_a_polls_ballots_and_marks_go_once_their_retention_is_over(backend: Any) -> None:
    """The retention (docs/privacy.md): a poll whose result was signed before the given
    time loses its ballots and paper marks, from every table that names a voter key;
    its box and seal stay; another poll keeps everything."""
    store = backend("vote")
    pid, kept = new_id(), new_id()
    for poll in (pid, kept):
        store.save_ballot_box(BallotBox(poll, None, None, "closed"))
    mark = mark_paper(pid, voter(0), [], new_id(), NOW)
    assert isinstance(mark, Admitted)
    ballots = [_ballot(pid, voter(i), 1) for i in range(1, 40)] + [_ballot(pid, voter(1), 2)]
    store.add_ballots([mark.ballot, *ballots, _ballot(kept, voter(1), 1)])
    store.save_seal(Seal(pid, len(ballots), "d" * 64, NOW))
    assert pid not in store.ballots_to_purge(NOW + timedelta(days=365))  # not signed yet
    store.save_result_signed(pid, NOW)
    store.save_result_signed(kept, NOW + timedelta(days=1))
    assert pid not in store.ballots_to_purge(NOW)  # signed at NOW: not before it
    due = store.ballots_to_purge(NOW + timedelta(hours=1))
    assert pid in due and kept not in due
    store.purge_ballots(pid, NOW + timedelta(hours=1))
    everyone = [voter(i) for i in range(40)]
    assert store.ballots_of(pid, everyone) == {}  # the paper mark too
    assert list(store.ballot_ids(pid)) == []
    assert [b for chunk in store.stored_ballots(pid, 10) for b in chunk] == []
    assert pid not in store.ballots_to_purge(NOW + timedelta(days=365))  # once
    assert store.ballot_box(pid).status == "closed"
    assert store.save_seal(Seal(pid, 0, "e" * 64, NOW)).ballots_recorded == len(ballots)
    assert len(list(store.ballot_ids(kept))) == 1


def test_vote_ballot_ids_span_every_enumeration_bucket(backend: Any) -> None:
    store = backend("vote")
    pid = new_id()
    voters = [voter(i) for i in range(300)]
    assert {enumeration_bucket(v) for v in voters} == set(range(ENUMERATION_BUCKETS))
    ballots = [_ballot(pid, v, 1) for v in voters] + [_ballot(pid, v, 2) for v in voters[:5]]
    # A batch a ballot: the ids land in every bucket (a batch's run takes its first
    # voter's), and the scans read them all.
    race(4, lambda k: [store.add_ballots([b]) for b in ballots[k::4]])
    assert sorted(store.ballot_ids(pid)) == sorted(b.ballot_id for b in ballots)
    assert sorted(b.ballot_id for chunk in store.stored_ballots(pid, 64) for b in chunk) == \
        sorted(b.ballot_id for b in ballots)
    assert list(store.ballot_ids(new_id())) == []


def test_a_batchs_ballot_ids_share_a_partition_a_run_and_survive_a_redelivery(
        cassandra: CassandraRun) -> None:
    """The id index in runs of GROUP_ROWS, each run in its first voter's bucket: one
    Cassandra mutation a run, not one an id. The same batch redelivered in another
    order writes some ids in other buckets: each is still read once, by the seal's scan
    and by ``ballot_ids``."""
    store = SERVICES["vote"].cassandra_store(cassandra.session, cassandra.keyspaces["vote"])
    pid, other = new_id(), new_id()
    ballots = [_ballot(pid, voter(i), 1) for i in range(1, 71)]  # buckets 1..70
    elsewhere = _ballot(other, voter(0), 1)  # another poll in the same batch
    store.add_ballots([*ballots, elsewhere])
    query = cassandra.session.prepare(f"SELECT bucket, ballot_id FROM "
                                      f"{cassandra.keyspaces['vote']}.ballot_ids "
                                      "WHERE poll_id = ? AND bucket = ?")
    buckets = {r.ballot_id: r.bucket for b in range(ENUMERATION_BUCKETS)
               for r in cassandra.session.execute(query, (pid, b))}
    assert buckets == {b.ballot_id: 1 + i // GROUP_ROWS * GROUP_ROWS
                       for i, b in enumerate(ballots)}  # runs at voters 1, 33 and 65
    store.add_ballots(ballots[::-1])  # redelivered, last first: runs at 70, 38 and 6
    assert sorted(store.ballot_ids(pid)) == sorted(b.ballot_id for b in ballots)
    assert sorted(b.ballot_id for chunk in store.stored_ballots(pid, 16) for b in chunk) == \
        sorted(b.ballot_id for b in ballots)
    assert list(store.ballot_ids(other)) == [elsewhere.ballot_id]


def test_vote_closed_shards_and_the_first_seal(backend: Any) -> None:
    store = backend("vote")
    pid = new_id()
    assert store.closed_shards(pid) == set()
    store.close_shards(pid, [0, 3])
    store.close_shards(pid, [3, 5])  # again: idempotent
    assert store.closed_shards(pid) == {0, 3, 5}
    assert store.closed_shards(new_id()) == set()
    # What a batch reads before it decides, in one call: the same as the three reads.
    store.add_ballots([_ballot(pid, voter(1), 1)])
    found, closed, closes_at = store.voters_and_box(pid, [voter(1), voter(2)])
    assert closed == {0, 3, 5} and list(found) == [voter(1)] and closes_at is None
    assert found == store.ballots_of(pid, [voter(1), voter(2)])
    # A close time set after the box was first read (an extension of a poll that had
    # none) is read by the next batch.
    store.extend_close(pid, NOW + timedelta(hours=2))
    assert store.voters_and_box(pid, [])[2] == NOW + timedelta(hours=2)
    assert store.voters_and_box(new_id(), [voter(1)]) == ({}, set(), None)
    first = Seal(pid, 7, "d" * 64, NOW)
    assert store.save_seal(first) == first
    assert store.save_seal(Seal(pid, 8, "e" * 64, NOW + timedelta(minutes=1))) == first


def test_vote_racing_seals_keep_one(backend: Any) -> None:
    store = backend("vote")
    pid = new_id()
    kept = race(6, lambda i: store.save_seal(Seal(pid, i, f"{i:064x}", NOW)))
    assert len(set(kept)) == 1


# --- tally ----------------------------------------------------------------------------


def test_tally_polls_and_results(backend: Any) -> None:
    store = backend("tally")
    pid = new_id()
    assert store.sheet(pid) is None
    store.save_seal(pid, 7, None)  # sealed before the rules arrived
    assert store.sheet(pid) == TallySheet(pid, None, None, 7)
    store.save_rules(pid, RULES, rules_hash(RULES), "embargoed")  # the seal stays
    assert store.sheet(pid) == TallySheet(pid, RULES, rules_hash(RULES), 7, None, "embargoed")
    store.save_seal(pid, 7, "d" * 64)  # the rules stay
    assert store.sheet(pid) == TallySheet(pid, RULES, rules_hash(RULES), 7, "d" * 64,
                                          "embargoed")
    store.release(pid, NOW)
    store.release(pid, NOW)  # redelivered
    store.save_rules(pid, RULES, rules_hash(RULES), "embargoed")  # redelivered: release stays
    assert store.sheet(pid) == TallySheet(pid, RULES, rules_hash(RULES), 7, "d" * 64,
                                          "embargoed", NOW)
    assert aware_utc(store.sheet(pid).released_at)

    signed = {"result": {"tally": {"yes": 3}, "poll_id": pid}, "signature": "s", "n": [1, 2]}
    assert store.result(pid) is None
    assert store.save_result(pid, signed)
    assert not store.save_result(pid, {"result": {}, "signature": "t"})  # stored once
    assert store.result(pid) == signed
    assert store.result(new_id()) is None
    store.ping()


def test_tally_sheet_parts_in_any_order_and_at_once(backend: Any) -> None:
    store = backend("tally")
    parts = [lambda pid: store.release(pid, NOW), lambda pid: store.save_seal(pid, 3, "e" * 64),
             lambda pid: store.save_rules(pid, RULES, rules_hash(RULES), "live", "census"),
             lambda pid: store.close(pid, NOW), lambda pid: store.save_eligible(pid, 12)]
    whole = TallySheet("", RULES, rules_hash(RULES), 3, "e" * 64, "live", NOW, closed_at=NOW,
                       electorate="census", eligible=12)
    for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 4, 3, 0, 2]):
        pid = new_id()
        for i in order:
            parts[i](pid)
        assert store.sheet(pid) == replace(whole, poll_id=pid)
    pid = new_id()
    race(5, lambda i: parts[i](pid))  # five events handled at once, in five workers
    assert store.sheet(pid) == replace(whole, poll_id=pid)


def test_tally_save_result_race_has_one_winner(backend: Any) -> None:
    store = backend("tally")
    pid = new_id()
    wins = race(5, lambda i: store.save_result(pid, {"signature": str(i)}))
    assert wins.count(True) == 1
    assert store.result(pid) == {"signature": str(wins.index(True))}


def test_tally_ballots_are_idempotent(backend: Any) -> None:
    store = backend("tally")
    pid = new_id()
    rows = [StoredBallot(pid, voter(i), 1 + i % 2, new_id(), new_id()[:14],
                         {"answer": "no", "i": i}, "paper" if i % 5 == 0 else "online",
                         NOW + timedelta(milliseconds=i),
                         agent=f"{i:032x}" if i % 5 == 0 else None)  # an agent's paper
            for i in range(50)]
    store.add_ballots(rows[:30])
    store.add_ballots(rows[30:])
    store.add_ballots([rows[0], replace(rows[1])])  # a redelivered event: no second row
    got = sorted(store.ballots(pid), key=lambda b: b.voter_key)
    assert got == sorted(rows, key=lambda b: b.voter_key)
    assert all(aware_utc(b.recorded_at) for b in got)
    assert list(store.ballots(new_id())) == []
    wanted = {voter(3), voter(7)}
    assert sorted(store.voter_ballots(pid, wanted), key=lambda b: b.voter_key) == \
        sorted((b for b in rows if b.voter_key in wanted), key=lambda b: b.voter_key)
    # A shard's ballots, by the first 32 bits of the voter key: each exactly once.
    by_shard = [sorted(b.ballot_id for b in store.shard_ballots(pid, s, 4)) for s in range(4)]
    assert sorted(i for ids in by_shard for i in ids) == sorted(b.ballot_id for b in rows)
    for s, ids in enumerate(by_shard):
        assert ids == sorted(b.ballot_id for b in rows if int(b.voter_key[:8], 16) % 4 == s)


def test_tally_copy_is_purged_once_its_retention_is_over(backend: Any) -> None:
    store = backend("tally")
    old, recent, unsigned = new_id(), new_id(), new_id()
    for pid in (old, recent, unsigned):
        store.add_ballots([StoredBallot(pid, voter(i), 1, new_id(), new_id()[:14],
                                        {"answer": "no"}, "online", NOW) for i in range(40)])

    def signed(at: datetime) -> dict[str, Any]:
        return {"result": {"computed_at": at.isoformat()}, "signature": "s", "key_id": "k"}

    # Their partial counts, in two of four shards; a worker's checkpoint stays put.
    stream = f"test-{new_id()}"
    assert store.save_partials(stream, 1, 0, 7, {old: {"n": 1}, recent: {"n": 2}})
    assert store.save_partials(stream, 3, 0, 9, {old: {"n": 3}})
    store.save_result(old, signed(NOW - timedelta(days=100)))
    store.save_result(recent, signed(NOW))
    due = store.copies_to_purge(NOW - timedelta(days=90))
    assert old in due and recent not in due and unsigned not in due
    store.purge_copy(old, NOW, stream, 4)
    store.purge_copy(old, NOW, stream, 4)  # again: nothing more to do
    assert list(store.ballots(old)) == []
    assert store.partials(stream, 4, old) == {}
    assert store.checkpoint(stream, 1) == (7, {recent: {"n": 2}})
    assert store.checkpoint(stream, 3) == (9, {})
    assert len(list(store.ballots(recent))) == len(list(store.ballots(unsigned))) == 40
    later = store.copies_to_purge(NOW + timedelta(days=1000))
    assert old not in later and recent in later and unsigned not in later
    assert store.result(old) == signed(NOW - timedelta(days=100))  # the proof stays


def test_tally_checkpoints_move_by_compare_and_set(backend: Any) -> None:
    """Two workers on one shard (one thought dead) both try to move its checkpoint from
    where they started: exactly one does, and the partials move with the position."""
    store = backend("tally")
    stream, poll, other = f"test-{new_id()}", new_id(), new_id()
    assert store.checkpoint(stream, 3) == (0, {})
    assert store.save_partials(stream, 3, 0, 5, {poll: {"n": 5}})
    assert not store.save_partials(stream, 3, 0, 9, {poll: {"n": 9}})  # moved already
    assert store.checkpoint(stream, 3) == (5, {poll: {"n": 5}})
    wins = race(4, lambda i: store.save_partials(stream, 3, 5, 10 + i, {poll: {"n": i}}))
    assert wins.count(True) == 1
    won = wins.index(True)
    assert store.checkpoint(stream, 3) == (10 + won, {poll: {"n": won}})
    assert store.save_partials(stream, 3, 10 + won, 20, {other: {"n": 1}})
    assert store.checkpoint(stream, 3) == (20, {poll: {"n": won}, other: {"n": 1}})
    assert store.save_partials(stream, 1, 0, 2, {poll: {"n": 2}})
    assert store.partials(stream, 4, poll) == {1: {"n": 2}, 3: {"n": won}}  # by shard
    assert store.partial(stream, 1, poll) == {"n": 2} and store.partial(stream, 2, poll) is None
    assert store.partials(f"test-{new_id()}", 4, poll) == {}  # another broker's streams
    # Several shards at once: each moves, or not, on its own condition.
    assert store.save_checkpoints(stream, [(3, 20, 25, {poll: {"n": 25}}),
                                           (1, 0, 9, {poll: {"n": 9}}),  # at 2, not 0
                                           (0, 0, 4, {})]) == [True, False, True]
    assert store.checkpoint(stream, 3)[0] == 25 and store.checkpoint(stream, 1)[0] == 2
    assert store.checkpoint(stream, 0) == (4, {})


def test_tally_record_is_stored_whole_and_read_by_range(backend: Any) -> None:
    """A record of 70,000 entries (274 chunks: past the 256 of a Cassandra partition),
    stored by a publication; chunks come back in order across partitions, tiles and
    trackers by key, and the tree read from the store proves what the plain one does."""
    store = backend("tally")
    poll = new_id()
    sheet = TallySheet(poll, RULES, rules_hash(RULES), sealed_count=70_000)
    ballots = [StoredBallot(poll, voter(i), 1, new_id(), f"T{i:06d}",
                            {"answer": ("yes", "no")[i % 2]}, "online", NOW)
               for i in range(70_000)]
    publication = domain.publication(sheet, ballots, "test", NOW)
    assert store.record_head(poll) is None
    store.save_record(poll, publication.chunks, publication.tiles, publication.trackers,
                      publication.size, publication.root)
    store.save_record(poll, publication.chunks, publication.tiles, publication.trackers,
                      publication.size, publication.root)  # again: the same bytes
    assert store.record_head(poll) == (70_000, publication.root)
    chunks = store.record_chunks(poll, range(250, 262))
    assert chunks == [publication.chunks[i] for i in range(250, 262)]
    assert store.record_chunks(poll, range(273, 300)) == [publication.chunks[273]]
    assert store.record_chunks(poll, range(0)) == []
    assert store.tracker_position(poll, "T069999") == 69_999
    assert store.tracker_position(poll, "T070000") is None
    assert store.tracker_position(new_id(), "T000001") is None
    assert store.record_tile(poll, 1, 1) == publication.tiles[(1, 1)]
    with pytest.raises(KeyError):
        store.record_tile(poll, 2, 1)
    tree = TiledTree(70_000, partial(store.record_tile, poll))
    leaves = [merkle.leaf_hash(line) for chunk in (publication.chunks[i] for i in range(274))
              for line in chunk.split(b"\n")[:-1]]
    assert tree.root().hex() == publication.root == merkle.root(leaves).hex()
    assert tree.inclusion_proof(65_537) == merkle.inclusion_proof(65_537, leaves)
    # Trackers are found whatever characters they hold, and only whole.
    odd = new_id()
    names = ['A\t1', 'A\n"2"', "A", "A\\", "Ä 3"]
    ballots = [StoredBallot(odd, voter(i), 1, new_id(), name, {"answer": "yes"}, "online",
                            NOW) for i, name in enumerate(names)]
    publication = domain.publication(replace(sheet, poll_id=odd, sealed_count=5), ballots,
                                     "test", NOW)
    store.save_record(odd, publication.chunks, publication.tiles, publication.trackers,
                      publication.size, publication.root)
    assert {name: store.tracker_position(odd, name) for name in names} == \
        {name: i for i, name in enumerate(sorted(names))}
    assert store.tracker_position(odd, "A\t") is None


def _interval(tag: str, trackers: list[str], start: int = 0) -> domain.Appended:
    """An interval of a poll's log as a holder has it in hand: its first chunk, a tile
    and its trackers' positions, each saying whose they are (``tag``)."""
    n = len(trackers)
    return domain.Appended([], {0: b"".join(f"{tag}{i}\n".encode() for i in range(n))},
                           {(0, 0): tag.encode() * 32},
                           [(t, start + i) for i, t in enumerate(trackers)],
                           domain.LogState(start + n, tag * 64, tag, (start + n,), {}))


def _logged(store: Any, poll: str, trackers: list[str]) -> tuple[Any, ...]:
    state = store.log_state(poll)
    return (state.size, store.record_chunks(poll, range(1)), store.record_tile(poll, 0, 0),
            {t: store.tracker_position(poll, t) for t in trackers})


def test_tally_a_log_holder_that_stalled_past_its_hold_writes_nothing_over_the_next(
        backend: Any) -> None:
    """A tally process holds a poll's log, stalls past its hold with an interval in hand,
    and wakes after another took the log over and appended: its append is refused, and
    the entries, tree and trackers are the new holder's."""
    store, other = backend("tally"), backend("tally")  # two processes
    poll = new_id()
    hold = timedelta(seconds=90)
    assert store.hold_log(poll, "a", NOW + hold, NOW)
    stalled = _interval("A", ["T1", "T0"])  # what "a" had in hand when it stalled
    late = NOW + hold + timedelta(seconds=1)
    assert other.hold_log(poll, "b", late + hold, late)
    assert other.append_log(poll, "b", 0, _interval("B", ["T0", "T1", "T2"]))
    assert not store.append_log(poll, "a", 0, stalled)
    assert _logged(store, poll, ["T0", "T1", "T2"]) == (
        3, [b"B0\nB1\nB2\n"], b"B" * 32, {"T0": 0, "T1": 1, "T2": 2})


def test_tally_a_stalled_holders_late_entries_lose_to_the_next_holders(
        cassandra: CassandraRun) -> None:
    """Cassandra: entries are written before the compare-and-set that moves the log, so
    a stalled holder's may land after the next holder's, or before them. Either way the
    next holder's are the ones read; and one holder at a time holds the log."""
    tally = SERVICES["tally"]
    hold = timedelta(seconds=90)
    late = NOW + hold + timedelta(seconds=1)
    winner = _interval("B", ["T0", "T1", "T2"])
    for stale_first in (False, True):
        store, other = (tally.cassandra_store(cassandra.session, cassandra.keyspaces["tally"])
                        for _ in range(2))
        poll = new_id()
        assert store.hold_log(poll, "a", NOW + hold, NOW)
        assert not other.hold_log(poll, "b", NOW + hold, NOW + timedelta(seconds=89))
        assert other.hold_log(poll, "b", late + hold, late)
        if stale_first:
            assert not store.append_log(poll, "a", 0, _interval("A", ["T1", "T0"]))
        assert other.append_log(poll, "b", 0, winner)
        if not stale_first:
            assert not store.append_log(poll, "a", 0, _interval("A", ["T1", "T0"]))
        assert _logged(store, poll, ["T0", "T1", "T2"]) == (
            3, [b"B0\nB1\nB2\n"], b"B" * 32, {"T0": 0, "T1": 1, "T2": 2})
        # The next interval, from the holder's next hold, writes over its own.
        later = late + timedelta(seconds=5)
        assert other.hold_log(poll, "b", later + hold, later)
        assert other.append_log(poll, "b", 3, _interval("C", ["T0", "T1", "T2", "T3"]))
        assert store.record_chunks(poll, range(1)) == [b"C0\nC1\nC2\nC3\n"]


# --- datetimes, schema, availability ------------------------------------------------


def test_datetimes_come_back_aware_and_equal(backend: Any) -> None:
    store = backend("identity")
    paris = timezone(timedelta(hours=1))
    local = datetime(2026, 3, 29, 1, 59, 59, 999000, tzinfo=paris)
    email = f"{new_id()}@example.org"
    got = store.add_person(Person(new_id(), email, "participant", local)).created_at
    assert got == local and got.utcoffset() is not None
    # Sub-millisecond digits: kept by SQLite, cut to the millisecond by Cassandra.
    precise = NOW + timedelta(microseconds=456)
    key = f"t:{new_id()}"
    store.swap_counter(None, limits.Counter(key, precise, 1), timedelta(hours=1))
    expires = store.counter(key).window_started_at
    assert expires.utcoffset() is not None
    assert timedelta(0) <= precise - expires < timedelta(milliseconds=1)


def test_sqlite_migrations_apply_once(tmp_path: Path) -> None:
    for name, spec in SERVICES.items():
        db = SqliteDb(tmp_path / f"{name}.db")
        assert db.migrate(spec.migrations.sqlite) == [
            f.stem for f in migration_files(spec.migrations.sqlite)]
        assert db.migrate(spec.migrations.sqlite) == []


def test_sqlite_district_migration_keeps_the_persons_already_there(tmp_path: Path) -> None:
    folder = SERVICES["identity"].migrations.sqlite
    before = tmp_path / "before"
    before.mkdir()
    shutil.copy(folder / "001_init.sql", before)
    db = SqliteDb(tmp_path / "identity.db", before)
    pid = new_id()
    with db.tx() as c:
        c.execute("INSERT INTO persons VALUES (?, ?, ?, ?)",
                  (pid, "old@example.org", "participant", NOW.isoformat()))
    assert db.migrate(folder) == ["002_district", "003_action_log", "004_sign_in_limits",
                                  "005_census", "006_phones", "007_desk", "008_desk_cards",
                                  "009_sign_in_list", "010_poll_closed_at", "011_eligible",
                                  "012_census_retention", "013_departed", "014_seen",
                                  "015_codes_keyed"]
    store = SERVICES["identity"].sqlite_store(db)
    old = Person(pid, "old@example.org", "participant", NOW, None)
    assert store.person(pid) == old == store.person_by_email("old@example.org")
    store.save_district(replace(old, district="north"))
    assert store.person(pid).district == "north"
    # 006 rebuilt the table: the address is still unique.
    assert store.add_person(Person(new_id(), "old@example.org", "participant", NOW)) == \
        replace(old, district="north")
    with pytest.raises(sqlite3.IntegrityError), db.tx() as c:
        c.execute("INSERT INTO persons (person_id, email, role, created_at) "
                  "VALUES (?, ?, ?, ?)", (new_id(), "old@example.org", "participant",
                                          NOW.isoformat()))
    # 006 wanted an e-mail or a phone; 008 took that away for people registered at a desk.
    walk_in = Person(new_id(), None, "participant", NOW)
    store.add_desk_person(walk_in, desk.issued("s", walk_in.person_id, desk.new_code(), NOW))
    assert store.person(walk_in.person_id) == walk_in


def test_cassandra_district_migration_keeps_the_persons_already_there(
        cassandra: CassandraRun, tmp_path: Path) -> None:
    from urne.storage.cassandra import StoreUnavailable, migrate

    settings = cassandra.settings.model_copy(update={
        "cassandra_keyspace_prefix": f"{cassandra.settings.cassandra_keyspace_prefix}up_"})
    folder = SERVICES["identity"].migrations.cassandra
    before = tmp_path / "before"
    before.mkdir()
    shutil.copy(folder / "001_init.cql", before)
    session = cassandra.session
    assert migrate(session, settings, "identity", before) == ["001_init"]
    ks = f"{settings.cassandra_keyspace_prefix}identity"
    people = [(f"{i}-{new_id()}@example.org", new_id()) for i in range(20)]
    for email, pid in people:
        session.execute(f"INSERT INTO {ks}.persons_by_email (email, person_id, role, "
                        "created_at) VALUES (%s, %s, %s, %s)", (email, pid, "participant", NOW))
    assert migrate(session, settings, "identity", folder) == [
        "002_district", "003_action_log", "004_sign_in_limits", "005_census", "006_phones",
        "007_desk", "008_desk_cards", "009_sign_in_list", "010_poll_closed_at",
        "011_eligible", "012_census_retention",
        "013_departed", "014_seen", "015_codes_keyed"]
    store = SERVICES["identity"].cassandra_store(session, ks)
    # The index on person_id is built over the rows already there, in the background:
    # until it is, a read by id is a 503 (store_unavailable, retry), never a wrong answer.
    deadline = time.monotonic() + 60
    while True:
        try:
            found = [store.person(pid) for _, pid in people]
            break
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert found == [Person(pid, email, "participant", NOW) for email, pid in people]
    email, pid = people[0]
    store.save_district(replace(found[0], district="north"))
    assert store.person(pid) == replace(found[0], district="north") == store.person_by_email(
        email)
    session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)


def test_sqlite_organisers_migration_keeps_consultations_public(tmp_path: Path) -> None:
    folder = SERVICES["proposal"].migrations.sqlite
    before = tmp_path / "before"
    before.mkdir()
    shutil.copy(folder / "001_init.sql", before)
    db = SqliteDb(tmp_path / "proposal.db", before)
    cid, creator = new_id(), new_id()
    with db.tx() as c:
        c.execute("INSERT INTO consultations VALUES (?, ?, ?, ?, ?)",
                  (cid, "Old", "From before", creator, NOW.isoformat()))
    assert db.migrate(folder) == [f.stem for f in migration_files(folder)][1:]
    store = SERVICES["proposal"].sqlite_store(db)
    # Public before, public still (since its creation), its creator its one organiser.
    old = Consultation(cid, "Old", "From before", creator, NOW, (creator,), "published",
                       "UTC", (), NOW)
    assert store.consultation(cid) == old and store.consultations(10) == [old]


def test_cassandra_organisers_migration_keeps_consultations_public(
        cassandra: CassandraRun, tmp_path: Path) -> None:
    from urne.storage.cassandra import migrate

    settings = cassandra.settings.model_copy(update={
        "cassandra_keyspace_prefix": f"{cassandra.settings.cassandra_keyspace_prefix}org_"})
    folder = SERVICES["proposal"].migrations.cassandra
    before = tmp_path / "before"
    before.mkdir()
    shutil.copy(folder / "001_init.cql", before)
    session = cassandra.session
    assert migrate(session, settings, "proposal", before) == ["001_init"]
    ks = f"{settings.cassandra_keyspace_prefix}proposal"
    cid, creator = new_id(), new_id()
    session.execute(f"INSERT INTO {ks}.consultations (consultation_id, title, description, "
                    "created_by, created_at) VALUES (%s, %s, %s, %s, %s)",
                    (cid, "Old", "From before", creator, NOW))
    session.execute(f"INSERT INTO {ks}.consultations_by_created (bucket, created_at, "
                    "consultation_id, title, description, created_by) "
                    "VALUES (0, %s, %s, %s, %s, %s)", (NOW, cid, "Old", "From before", creator))
    assert migrate(session, settings, "proposal", folder) == [
        f.stem for f in migration_files(folder)][1:]
    store = SERVICES["proposal"].cassandra_store(session, ks)
    old = Consultation(cid, "Old", "From before", creator, NOW, (creator,), "published",
                       "UTC", (), NOW)
    assert store.consultation(cid) == old and store.consultations(10) == [old]
    # Then it lives on as any other: an organiser added, an edit.
    store.add_organiser(old, "newcomer", NOW + timedelta(minutes=1))
    store.save_consultation(*old.edit(title="Renamed"))
    assert store.consultations(10) == [store.consultation(cid)] == [
        replace(old, title="Renamed", organisers=(creator, "newcomer"))]
    session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)


def test_sqlite_proposals_migration_keeps_proposals_published(tmp_path: Path) -> None:
    folder = SERVICES["proposal"].migrations.sqlite
    before = tmp_path / "before"
    before.mkdir()
    for f in ("001_init.sql", "002_organisers_and_steps.sql"):
        shutil.copy(folder / f, before)
    db = SqliteDb(tmp_path / "proposal.db", before)
    cid, pid, author = new_id(), new_id(), new_id()
    with db.tx() as c:
        c.execute("INSERT INTO consultations (consultation_id, title, description, created_by, "
                  "created_at) VALUES (?, ?, ?, ?, ?)", (cid, "Old", "", author, NOW.isoformat()))
        c.execute("INSERT INTO proposals VALUES (?, ?, ?, ?, ?, ?)",
                  (pid, cid, "Trees", "Plant them", author, NOW.isoformat()))
    assert "003_proposals_as_cities_run_them" in db.migrate(folder)
    store = SERVICES["proposal"].sqlite_store(db)
    # Added by an organiser before statuses existed: published, shown, counted in no quota.
    old = Proposal(pid, cid, "Trees", "Plant them", author, NOW)
    assert store.proposal(pid) == old and list(store.proposals(cid)) == [old]
    assert store.add_proposal(replace(old, proposal_id=new_id(), status="submitted"), limit=1)


def test_cassandra_proposals_migration_keeps_proposals_published(
        cassandra: CassandraRun, tmp_path: Path) -> None:
    from urne.storage.cassandra import migrate

    settings = cassandra.settings.model_copy(update={
        "cassandra_keyspace_prefix": f"{cassandra.settings.cassandra_keyspace_prefix}prop_"})
    folder = SERVICES["proposal"].migrations.cassandra
    before = tmp_path / "before"
    before.mkdir()
    for f in ("001_init.cql", "002_organisers_and_steps.cql"):
        shutil.copy(folder / f, before)
    session = cassandra.session
    migrate(session, settings, "proposal", before)
    ks = f"{settings.cassandra_keyspace_prefix}proposal"
    cid, pid, author = new_id(), new_id(), new_id()
    session.execute(f"INSERT INTO {ks}.proposals (consultation_id, created_at, proposal_id, "
                    "title, body, author_id) VALUES (%s, %s, %s, %s, %s, %s)",
                    (cid, NOW, pid, "Trees", "Plant them", author))
    assert "003_proposals_as_cities_run_them" in migrate(session, settings, "proposal", folder)
    store = SERVICES["proposal"].cassandra_store(session, ks)
    # Listed as it was: published, shown (reached by id only if added from 003 on).
    assert list(store.proposals(cid)) == [Proposal(pid, cid, "Trees", "Plant them", author, NOW)]
    session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)


def test_sqlite_electorate_migration_keeps_polls_open(tmp_path: Path) -> None:
    folder = SERVICES["proposal"].migrations.sqlite
    before = tmp_path / "before"
    before.mkdir()
    for f in migration_files(folder):
        if f.stem < "007":
            shutil.copy(f, before)
    db = SqliteDb(tmp_path / "proposal.db", before)
    cid, pid = new_id(), new_id()
    SERVICES["proposal"].sqlite_store(db).add_consultation(
        Consultation(cid, "Old", "", new_id(), NOW))
    with db.tx() as c:
        c.execute("INSERT INTO polls (poll_id, consultation_id, rules, status) "
                  "VALUES (?, ?, ?, ?)", (pid, cid, rules_adapter.dump_json(RULES).decode(),
                                          "draft"))
    assert "007_poll_electorate" in db.migrate(folder)
    store = SERVICES["proposal"].sqlite_store(db)
    # Open to anyone signed in before, open still.
    assert store.poll(pid) == Poll(pid, cid, None, RULES) and store.poll(pid).electorate == "open"
    assert store.replace_poll(Poll(pid, cid, None, RULES, electorate="census"),
                              store.poll(pid))
    assert store.poll(pid).electorate == "census"


def test_cassandra_electorate_migration_keeps_polls_open(
        cassandra: CassandraRun, tmp_path: Path) -> None:
    from urne.storage.cassandra import migrate

    settings = cassandra.settings.model_copy(update={
        "cassandra_keyspace_prefix": f"{cassandra.settings.cassandra_keyspace_prefix}el_"})
    folder = SERVICES["proposal"].migrations.cassandra
    before = tmp_path / "before"
    before.mkdir()
    for f in migration_files(folder):
        if f.stem < "007":
            shutil.copy(f, before)
    session = cassandra.session
    migrate(session, settings, "proposal", before)
    ks = f"{settings.cassandra_keyspace_prefix}proposal"
    cid, pid = new_id(), new_id()
    session.execute(f"INSERT INTO {ks}.polls (poll_id, consultation_id, rules, status, "
                    "results_visibility) VALUES (%s, %s, %s, %s, %s)",
                    (pid, cid, rules_adapter.dump_json(RULES).decode(), "draft", "after_close"))
    assert "007_poll_electorate" in migrate(session, settings, "proposal", folder)
    store = SERVICES["proposal"].cassandra_store(session, ks)
    # Null in the rows from before: read as open, as they were.
    assert store.poll(pid) == Poll(pid, cid, None, RULES) and store.poll(pid).electorate == "open"
    assert store.replace_poll(Poll(pid, cid, None, RULES, electorate="census"),
                              store.poll(pid))
    assert store.poll(pid).electorate == "census"
    session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)


def test_the_action_log_keeps_an_entry_for_its_retention(backend: Any) -> None:
    """Cassandra forgets an entry by its time-to-live, counted from the entry's time (a
    retried append forgets it at the same moment), and does not write one already past
    it; SQLite's purge deletes the entries older than the cut."""
    from urne.storage.action_log import Action, CassandraActionLog

    log = backend("identity").actions
    now = datetime.now(UTC).replace(microsecond=0)
    keep = timedelta(days=1)
    fresh, old = (Action(at, new_id(), "p", "admin", "person.role.set.v1", "{}")
                  for at in (now, now - timedelta(days=2)))
    for entry in (fresh, old):
        log.append(entry, keep)

    def kept() -> set[str]:  # of these two (Cassandra's keyspace is shared)
        return {a.id for e in (fresh, old) for a in log.month(e.month, 100_000)} & \
            {fresh.id, old.id}

    if isinstance(log, CassandraActionLog):
        assert kept() == {fresh.id}  # the old one: not written
        ttl = log.s.execute(f"SELECT TTL(subject) AS ttl FROM {log.table} WHERE month = %s "
                            "AND at = %s AND id = %s", (fresh.month, fresh.at, fresh.id)
                            ).one().ttl
        assert keep.total_seconds() - 60 < ttl <= keep.total_seconds()
        assert log.purge(now) == 0  # nothing to do: the time-to-live does it
    else:
        assert kept() == {fresh.id, old.id}
        assert log.purge(now - keep) == 1
        assert kept() == {fresh.id}


def test_the_action_log_is_read_a_page_at_a_time(backend: Any) -> None:
    """Pages by (at, id) after the last entry of the page before: every entry once, in
    order, entries of the same instant told apart by id."""
    import random

    from urne.storage.action_log import Action

    log = backend("identity").actions
    # A month of its own, most likely (Cassandra's keyspace is shared: other entries
    # of it are paged through too, and left out of the comparison).
    month_start = datetime(random.randint(2027, 2030), random.randint(1, 12), 1, tzinfo=UTC)
    times = [month_start + timedelta(hours=h, microseconds=1000 * (h % 2))
             for h in (1, 1, 1, 2, 3, 3, 4)]
    entries = [Action(at, new_id(), "p", "admin", "person.role.set.v1", "{}") for at in times]
    for entry in reversed(entries):
        log.append(entry, timedelta(days=365))
    month = entries[0].month
    ours = {a.id for a in entries}
    want = [a.id for a in sorted(entries, key=lambda a: (a.at, a.id))]
    assert [a.id for a in log.month(month, 100_000) if a.id in ours] == want
    seen: list[str] = []
    after = None
    while True:
        page = log.month(month, 3, after)
        seen += [a.id for a in page if a.id in ours]
        if len(page) < 3:
            break
        after = (page[-1].at, page[-1].id)
    assert seen == want


def test_cassandra_migrations_apply_once(cassandra: CassandraRun) -> None:
    from urne.storage.cassandra import ensure_schema, migrate

    run = cassandra
    files = {name: [f.stem for f in migration_files(spec.migrations.cassandra)]
             for name, spec in SERVICES.items()}
    assert run.applied == files
    # ALTER TABLE migrations
    assert files["tally"] == ["001_init", "002_sealed_digest", "003_results_visibility",
                              "004_awaiting", "005_partials", "006_record", "007_closed",
                              "008_log", "009_agent", "010_purged_copies",
                              "011_electorate", "012_generations"]
    assert files["vote"][-1] == "007_retention"
    assert files["proposal"] == ["001_init", "002_organisers_and_steps",
                                 "003_proposals_as_cities_run_them", "004_results_visibility",
                                 "005_schedule", "006_action_log", "007_poll_electorate",
                                 "008_cross_channel", "009_participation_retention",
                                 "010_poll_version", "011_creations"]
    for name, ks in run.keyspaces.items():
        before = list(run.session.execute(f"SELECT * FROM {ks}.schema_migrations"))
        assert sorted((r.version, r.name) for r in before) == [
            (int(stem[:3]), stem) for stem in files[name]]
        assert isinstance(before[0].applied_at, datetime)
        folder = SERVICES[name].migrations.cassandra
        assert migrate(run.session, run.settings, name, folder) == []
        assert ensure_schema(run.session, run.settings, name, folder) == ks
        after = list(run.session.execute(f"SELECT * FROM {ks}.schema_migrations"))
        assert after == before  # nothing applied, nothing rewritten


def test_cassandra_concurrent_migrations(cassandra: CassandraRun) -> None:
    """Several processes starting together: every run succeeds, one schema results."""
    from urne.storage.cassandra import connect, ensure_schema

    settings = StoreSettings(cassandra_hosts=cassandra.settings.cassandra_hosts,
                             cassandra_port=cassandra.settings.cassandra_port,
                             cassandra_keyspace_prefix=cassandra.settings
                             .cassandra_keyspace_prefix + "c_")
    sessions = [connect(settings) for _ in range(3)]
    try:
        folder = SERVICES["vote"].migrations.cassandra
        keyspaces = race(3, lambda i: ensure_schema(sessions[i], settings, "vote", folder))
        assert set(keyspaces) == {f"{settings.cassandra_keyspace_prefix}vote"}
        rows = list(sessions[0].execute(f"SELECT version FROM {keyspaces[0]}.schema_migrations"))
        assert sorted(r.version for r in rows) == [1, 2, 3, 4, 5, 6, 7]
        tables = {r.table_name for r in sessions[0].execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
            (keyspaces[0],))}
        assert tables == {"schema_migrations", "ballot_boxes", "voter_ballots", "ballot_ids",
                          "closed_shards", "seals", "paper_marks"}
    finally:
        for s in sessions:
            s.cluster.shutdown()


def test_unreachable_cassandra_is_store_unavailable() -> None:
    from urne.storage.cassandra import StoreUnavailable, connect

    with pytest.raises(StoreUnavailable) as caught:
        connect(StoreSettings(cassandra_hosts="127.0.0.1", cassandra_port=1))
    assert caught.value.status == 503 and caught.value.code == "store_unavailable"


def test_guard_turns_driver_faults_into_503() -> None:
    from cassandra import OperationTimedOut, WriteTimeout

    from urne.storage.cassandra import StoreUnavailable, guard, guarded

    @guarded
    def times_out() -> None:
        raise OperationTimedOut("no answer")

    with pytest.raises(StoreUnavailable):
        times_out()
    with pytest.raises(StoreUnavailable), guard():
        raise WriteTimeout("cas", write_type=5)
    with pytest.raises(ValueError), guard():  # anything else passes through
        raise ValueError("a bug, not an outage")


def test_driver_runs_under_eventlet_and_without(cassandra: CassandraRun) -> None:
    """nameko services run the driver under eventlet: its reactor must be the eventlet
    one there (the libev default would hang green threads), and stay libev here."""
    from urne.storage.cassandra import connection_class

    assert connection_class() is None
    assert cassandra.session.cluster.connection_class.__name__ == "LibevConnection"

    script = textwrap.dedent("""
        import eventlet
        eventlet.monkey_patch()
        import json, sys, uuid
        from datetime import UTC, datetime
        from urne.services.tally.adapters.cassandra_store import CassandraTallyStore
        from urne.services.tally.domain import StoredBallot
        from urne.storage.cassandra import connect
        from urne.platform.settings import StoreSettings

        settings = StoreSettings(**json.loads(sys.argv[1]))
        session = connect(settings)
        store = CassandraTallyStore(session, sys.argv[2])
        poll = uuid.uuid4().hex
        def add(i):
            store.add_ballots([StoredBallot(poll, uuid.uuid4().hex, 1, uuid.uuid4().hex, "t",
                                            {"answer": "yes"}, "online", datetime.now(UTC))])
        pool = eventlet.GreenPool(20)
        list(pool.imap(add, range(40)))
        store.ping()
        from cassandra.io.eventletreactor import EventletConnection
        reactor = session.cluster.connection_class
        out = {"reactor": reactor.__name__ if issubclass(reactor, EventletConnection) else "?",
               "listed": len(list(store.ballots(poll))),
               "saved": store.save_result(poll, {"s": 1})}
        session.cluster.shutdown()
        print(json.dumps(out))
    """)
    settings = cassandra.settings.model_dump(include={"cassandra_hosts", "cassandra_port"})
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(settings), cassandra.keyspaces["tally"]],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        # The driver's eventlet reactor, with the standard library's TLS (cassandra_tls.py).
        "reactor": "GreenConnection", "listed": 40, "saved": True}


def test_connecting_patiently_gives_up_after_its_delay() -> None:
    from urne.storage.cassandra import StoreUnavailable, connect_patiently

    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        connect_patiently(StoreSettings(cassandra_hosts="127.0.0.1", cassandra_port=1),
                          within=1.5)
    assert 1.0 < time.monotonic() - started < 10  # it tried again, then stopped
