"""Creations a client may retry: a consultation, a proposal or a poll created with an
``Idempotency-Key`` (services/proposal/creations.py), on a SQLite store."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.unit.helpers import Clock, ok, refused, service_db
from tests.unit.test_proposals import CREATOR, LIMIT, RULES, calendar
from urne.contracts.commands import (
    Actor,
    AddProposal,
    CreateConsultation,
    CreatePoll,
    GetConsultation,
    ListConsultations,
    ListProposals,
    PublishConsultation,
    UpdateConsultation,
)
from urne.messaging.kernel import ServiceCore
from urne.services.proposal.adapters.sqlite_store import SqliteProposalStore
from urne.services.proposal.handlers import ProposalHandlers
from urne.storage.cassandra import StoreUnavailable

pytestmark = pytest.mark.unit

AUTHOR = Actor(person_id="pat", role="participant")
ORGANISER_B = Actor(person_id="bob", role="organiser")


@pytest.fixture
def store(tmp_path: Path) -> SqliteProposalStore:
    return SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))


@pytest.fixture
def core(store: SqliteProposalStore, clock: Clock) -> ServiceCore:
    return ProposalHandlers(store, clock=clock, max_proposals_per_person=LIMIT).core()


def consultations(core: ServiceCore) -> list[dict[str, Any]]:
    return list(ok(core, ListConsultations(actor=CREATOR))[0]["items"])


def test_a_consultation_created_again_with_its_key_is_the_same_one(
        core: ServiceCore, clock: Clock) -> None:
    create = CreateConsultation(title="Budget 2030", actor=CREATOR, idempotency_key="k-1")
    first = ok(core, create)[0]
    clock.advance(seconds=30)  # the retry comes later: the answer is the same
    assert ok(core, create)[0] == first
    assert [c["id"] for c in consultations(core)] == [first["id"]]
    # Edited since, a retry gives it as it is now, and creates nothing.
    ok(core, UpdateConsultation(consultation_id=first["id"], title="Budget 2031",
                                actor=CREATOR))
    assert ok(core, create)[0]["title"] == "Budget 2031"
    assert len(consultations(core)) == 1


def test_another_body_with_the_same_key_is_refused_and_changes_nothing(
        core: ServiceCore) -> None:
    first = ok(core, CreateConsultation(title="Budget 2030", actor=CREATOR,
                                        idempotency_key="k-1"))[0]
    problem = refused(core, CreateConsultation(title="Budget 2031", actor=CREATOR,
                                               idempotency_key="k-1"))
    assert (problem["status"], problem["code"]) == (422, "idempotency_key_reused")
    assert [c["id"] for c in consultations(core)] == [first["id"]]
    assert ok(core, GetConsultation(consultation_id=first["id"], actor=CREATOR))[0][
        "title"] == "Budget 2030"


def test_a_key_is_the_actors_own(core: ServiceCore) -> None:
    """Two organisers who happen to send the same key create one consultation each."""
    mine = ok(core, CreateConsultation(title="Parks", actor=CREATOR, idempotency_key="k"))[0]
    theirs = ok(core, CreateConsultation(title="Parks", actor=ORGANISER_B,
                                         idempotency_key="k"))[0]
    assert mine["id"] != theirs["id"]
    without = [ok(core, CreateConsultation(title="Parks", actor=CREATOR))[0]["id"]
               for _ in range(2)]
    assert len(set(without)) == 2  # no key: every request creates


def test_a_retry_after_a_store_fault_creates_what_the_first_attempt_would_have(
        core: ServiceCore, store: SqliteProposalStore, clock: Clock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first attempt claims its key, then the store fails (503): the retry, a minute
    later, creates the consultation with the first attempt's id and time."""
    create = CreateConsultation(title="Budget 2030", actor=CREATOR, idempotency_key="k-1")
    real = store.add_consultation

    def away(*args: object) -> None:
        raise StoreUnavailable("the store did not answer")

    monkeypatch.setattr(store, "add_consultation", away)
    assert refused(core, create)["status"] == 503
    created_at = clock()
    monkeypatch.setattr(store, "add_consultation", real)
    clock.advance(minutes=1)
    made = ok(core, create)[0]
    assert datetime.fromisoformat(made["created_at"]) == created_at
    assert [c["id"] for c in consultations(core)] == [made["id"]]


def test_a_proposal_submitted_again_takes_one_slot_of_the_authors_limit(
        core: ServiceCore, clock: Clock) -> None:
    cid = str(ok(core, CreateConsultation(title="Budget 2030", actor=CREATOR,
                                          steps=calendar(clock(), timedelta(days=1))))[0]["id"])
    ok(core, PublishConsultation(consultation_id=cid, actor=CREATOR))
    submit = AddProposal(consultation_id=cid, title="Trees", actor=AUTHOR, idempotency_key="p")
    first = ok(core, submit)[0]
    for _ in range(3):
        assert ok(core, submit)[0]["id"] == first["id"]
    for i in range(LIMIT - 1):  # the retries took no slot: the rest of the limit is there
        ok(core, AddProposal(consultation_id=cid, title=f"Idea {i}", actor=AUTHOR))
    assert refused(core, AddProposal(consultation_id=cid, title="One more", actor=AUTHOR))[
        "code"] == "proposal_limit_reached"
    # Refused by the limit, a keyed proposal leaves its key unused too.
    for title in ("One more", "Another"):
        assert refused(core, AddProposal(consultation_id=cid, title=title, actor=AUTHOR,
                                         idempotency_key="q"))["code"] == \
            "proposal_limit_reached"
    # Still the same answer once the limit is reached, and once the step has ended.
    assert ok(core, submit)[0]["id"] == first["id"]
    clock.advance(days=30)
    assert ok(core, submit)[0]["id"] == first["id"]
    listed = ok(core, ListProposals(consultation_id=cid, actor=AUTHOR))[0]["items"]
    assert len(listed) == LIMIT
    # The key is per kind of creation and per request: another proposal with it is refused.
    clock.advance(days=-30)
    problem = refused(core, AddProposal(consultation_id=cid, title="Benches", actor=AUTHOR,
                                        idempotency_key="p"))
    assert (problem["status"], problem["code"]) == (422, "idempotency_key_reused")


def test_a_poll_created_again_is_one_poll(core: ServiceCore, clock: Clock) -> None:
    cid = str(ok(core, CreateConsultation(title="Budget 2030", actor=CREATOR))[0]["id"])
    create = CreatePoll(consultation_id=cid, rules=RULES, actor=CREATOR,
                        opens_at=clock() + timedelta(minutes=1), idempotency_key="poll-1")
    first = ok(core, create)[0]
    # A retry past the first attempt's opening time gives the poll, not schedule_in_past.
    clock.advance(minutes=5)
    assert ok(core, create)[0] == first
    polls = ok(core, GetConsultation(consultation_id=cid, actor=CREATOR))[0]["polls"]
    assert [p["id"] for p in polls] == [first["id"]]
    other = refused(core, CreatePoll(consultation_id=cid, rules=RULES, actor=CREATOR,
                                     idempotency_key="poll-1"))
    assert other["code"] == "idempotency_key_reused"


def test_a_refused_request_leaves_its_key_unused(core: ServiceCore, clock: Clock) -> None:
    """A request refused for what it asks (a schedule in the past; a proposal out of its
    step) claims nothing: corrected, it may be sent with the same key."""
    cid = str(ok(core, CreateConsultation(title="Budget 2030", actor=CREATOR))[0]["id"])
    past = refused(core, CreatePoll(consultation_id=cid, rules=RULES, actor=CREATOR,
                                    opens_at=clock() - timedelta(minutes=1),
                                    idempotency_key="poll-1"))
    assert (past["status"], past["code"]) == (422, "schedule_in_past")
    fixed = CreatePoll(consultation_id=cid, rules=RULES, actor=CREATOR,
                       opens_at=clock() + timedelta(minutes=1), idempotency_key="poll-1")
    assert ok(core, fixed)[0] == ok(core, fixed)[0]
    ok(core, PublishConsultation(consultation_id=cid, actor=CREATOR))  # no proposals step
    late = AddProposal(consultation_id=cid, title="Trees", actor=AUTHOR, idempotency_key="p")
    assert refused(core, late)["code"] == "proposals_closed"
    assert refused(core, late.model_copy(update={"title": "Benches"}))["code"] == \
        "proposals_closed"  # not idempotency_key_reused: the first one claimed nothing
