"""Behavioural contract of every service store, the same on SQLite and on Cassandra."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.identity.domain import LoginCode, Person
from services.proposal.domain import Consultation, Poll, Proposal
from services.tally.domain import StoredBallot, TallyPoll
from services.vote.domain import Ballot, PollState
from urne.counting.rules import YesNoAbstainRules, rules_hash

pytestmark = pytest.mark.integration

RULES = YesNoAbstainRules(question="Open the library on Sundays?")
# Millisecond precision: what both backends keep.
NOW = datetime(2026, 11, 28, 10, 30, 15, 123000, tzinfo=UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def voter(i: int) -> str:
    return uuid.uuid5(uuid.NAMESPACE_OID, str(i)).hex * 2


def test_identity_store(backend: Any) -> None:
    store = backend("identity")
    email = f"{new_id()}@example.org"
    assert store.person_by_email(email) is None
    first = store.add_person(Person(new_id(), email, "participant", NOW))
    # A racing second registration of the same address gets the first person back.
    again = store.add_person(Person(new_id(), email, "organiser", NOW))
    assert again == first == store.person_by_email(email)
    assert first.created_at == NOW and first.created_at.tzinfo is not None

    code = LoginCode(email, "h" * 64, NOW + timedelta(minutes=10), 5, NOW, 1)
    assert store.login_code(email) is None
    store.save_login_code(code)
    assert store.login_code(email) == code
    store.save_login_code(LoginCode(email, "", NOW, 0, NOW, 2))
    assert store.login_code(email).attempts_left == 0

    poll = new_id()
    assert store.poll_status(poll) is None
    store.set_poll_status(poll, "open")
    store.set_poll_status(poll, "closed")
    assert store.poll_status(poll) == "closed"
    store.ping()


def test_proposal_store(backend: Any) -> None:
    store = backend("proposal")
    c = Consultation(new_id(), "Budget 2027", "Ideas for the parks", new_id(), NOW)
    store.add_consultation(c)
    assert store.consultation(c.consultation_id) == c
    assert store.consultation(new_id()) is None
    assert c in store.consultations(500)
    proposals = [Proposal(new_id(), c.consultation_id, f"P{i}", "body", new_id(),
                          NOW + timedelta(seconds=i)) for i in range(3)]
    for p in reversed(proposals):
        store.add_proposal(p)
    assert store.proposals(c.consultation_id) == proposals  # oldest first
    poll = Poll(new_id(), c.consultation_id, proposals[0].proposal_id, RULES)
    store.save_poll(poll)
    assert store.poll(poll.poll_id) == poll
    opened = poll.open(NOW)
    store.save_poll(opened)
    assert store.poll(poll.poll_id) == opened and opened.rules_hash == rules_hash(RULES)
    other = Poll(new_id(), c.consultation_id, None, RULES)
    store.save_poll(other)
    assert sorted(p.poll_id for p in store.polls(c.consultation_id)) == sorted(
        [poll.poll_id, other.poll_id])
    assert store.polls(new_id()) == []
    store.ping()


def test_vote_store(backend: Any) -> None:
    store = backend("vote")
    pid = new_id()
    assert store.poll(pid) is None
    store.save_poll(PollState(pid, RULES, rules_hash(RULES), "open"))
    assert store.poll(pid) == PollState(pid, RULES, rules_hash(RULES), "open")
    store.save_poll(PollState(pid, RULES, rules_hash(RULES), "closed"))
    assert store.poll(pid).status == "closed"
    late = new_id()
    store.save_poll(PollState(late, None, None, "closed"))
    assert store.poll(late) == PollState(late, None, None, "closed")

    def ballot(v: str, seq: int) -> Ballot:
        return Ballot(pid, v, seq, new_id(), new_id()[:14], {"answer": "yes"}, "online", NOW)

    assert store.latest_sequence(pid, voter(0)) == 0
    assert store.insert_ballot(ballot(voter(0), 1))
    assert not store.insert_ballot(ballot(voter(0), 1))  # the race loser
    assert store.insert_ballot(ballot(voter(0), 2))
    assert store.insert_ballot(ballot(voter(0), 3))
    assert store.latest_sequence(pid, voter(0)) == 3
    for i in range(1, 50):  # spread over every bucket
        assert store.insert_ballot(ballot(voter(i), 1))
    assert store.count_ballots(pid) == 3 + 49
    assert store.count_ballots(new_id()) == 0
    store.ping()


def test_tally_store(backend: Any) -> None:
    store = backend("tally")
    pid = new_id()
    assert store.poll(pid) is None
    store.save_poll(TallyPoll(pid, None, None, 7))
    store.save_poll(TallyPoll(pid, RULES, rules_hash(RULES), 7))
    assert store.poll(pid) == TallyPoll(pid, RULES, rules_hash(RULES), 7)

    rows = [StoredBallot(pid, voter(i), 1 + i % 2, new_id(), new_id()[:14],
                         {"answer": "no"}, "online", NOW) for i in range(40)]
    for row in rows:
        store.add_ballot(row)
    store.add_ballot(rows[0])  # a redelivered event: no second row
    assert store.count_ballots(pid) == 40
    got = sorted(store.ballots(pid), key=lambda b: b.voter_key)
    assert got == sorted(rows, key=lambda b: b.voter_key)
    assert got[0].recorded_at.tzinfo is not None

    assert store.result(pid) is None
    assert store.save_result(pid, {"result": {"n": 1}, "signature": "s"})
    assert not store.save_result(pid, {"result": {"n": 2}, "signature": "t"})
    assert store.result(pid) == {"result": {"n": 1}, "signature": "s"}
    store.ping()


def test_migrations_are_idempotent(cassandra: Any) -> None:
    from urne.shared.cassandra import ensure_schema

    session, (settings, keyspaces) = cassandra
    for name, ks in keyspaces.items():
        before = list(session.execute(f"SELECT version, name FROM {ks}.schema_migrations"))
        assert ensure_schema(session, settings, name) == ks
        after = list(session.execute(f"SELECT version, name FROM {ks}.schema_migrations"))
        assert before == after and [r.version for r in after] == [1]
