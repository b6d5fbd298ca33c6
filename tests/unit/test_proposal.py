"""Proposal: consultations, proposals and the poll life cycle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.helpers import Clock, deliver, ok, refused, service_db, types
from urne.contracts.commands import (
    Actor,
    AddProposal,
    ClosePoll,
    CreateConsultation,
    CreatePoll,
    GetConsultation,
    GetPoll,
    ListConsultations,
    OpenPoll,
    PublishConsultation,
)
from urne.contracts.events import ResultPublished
from urne.counting import YesNoAbstainRules, rules_hash
from urne.messaging.kernel import ServiceCore
from urne.services.proposal.adapters.sqlite_store import SqliteProposalStore
from urne.services.proposal.handlers import ProposalHandlers

pytestmark = pytest.mark.unit

RULES = YesNoAbstainRules(method="yes_no_abstain", question="Build a cycle lane on Main Street?")
ORG = Actor(person_id="org", role="organiser")


@dataclass
class Proposals:
    core: ServiceCore
    clock: Clock

    def consultation(self) -> str:
        data, events = ok(self.core, CreateConsultation(title="Mobility 2030", actor=ORG))
        assert events == []
        ok(self.core, PublishConsultation(consultation_id=data["id"], actor=ORG))
        return data["id"]

    def poll(self, proposal: bool = False) -> tuple[str, str]:
        cid = self.consultation()
        pid = None
        if proposal:
            pid = ok(self.core, AddProposal(consultation_id=cid, title="Cycle lane",
                                            actor=ORG))[0]["id"]
        data, events = ok(self.core, CreatePoll(consultation_id=cid, proposal_id=pid,
                                                rules=RULES, actor=ORG))
        assert events == []
        assert data["status"] == "draft"
        return cid, data["id"]

    def published(self, poll_id: str) -> list[dict]:
        return deliver(self.core, ResultPublished(poll_id=poll_id, record_root="ab" * 32,
                                                  ballots_counted=3,
                                                  published_at=self.clock()))

    def status(self, poll_id: str) -> str:
        return ok(self.core, GetPoll(poll_id=poll_id, actor=ORG))[0]["status"]


@pytest.fixture
def proposals(tmp_path: Path, clock: Clock) -> Proposals:
    store = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    return Proposals(ProposalHandlers(store, clock=clock).core(), clock)


def test_consultation_with_proposals_and_polls(proposals: Proposals) -> None:
    cid, poll_id = proposals.poll(proposal=True)
    view = ok(proposals.core, GetConsultation(consultation_id=cid, actor=ORG))[0]
    assert view["title"] == "Mobility 2030"
    assert [p["title"] for p in view["proposals"]] == ["Cycle lane"]
    assert [p["id"] for p in view["polls"]] == [poll_id]
    assert view["polls"][0]["proposal_id"] == view["proposals"][0]["id"]
    # The poll is a draft: the public sees the consultation and its proposals, not the poll.
    public = ok(proposals.core, GetConsultation(consultation_id=cid))[0]
    # (How often a proposal was reported is its moderators' to know.)
    assert (public["proposals"], public["polls"]) == (
        [{**p, "report_count": None} for p in view["proposals"]], [])
    listed = ok(proposals.core, ListConsultations())[0]["items"]
    assert [c["id"] for c in listed] == [cid]


def test_unknown_consultation_and_poll(proposals: Proposals) -> None:
    error = refused(proposals.core, GetConsultation(consultation_id="nope"))
    assert (error["code"], error["status"]) == ("consultation_not_found", 404)
    error = refused(proposals.core, AddProposal(consultation_id="nope", title="t", actor=ORG))
    assert error["code"] == "consultation_not_found"
    error = refused(proposals.core, CreatePoll(consultation_id="nope", rules=RULES, actor=ORG))
    assert error["code"] == "consultation_not_found"
    for cmd in (GetPoll(poll_id="nope"), OpenPoll(poll_id="nope", actor=ORG),
                ClosePoll(poll_id="nope", actor=ORG)):
        error = refused(proposals.core, cmd)
        assert (error["code"], error["status"]) == ("poll_not_found", 404)


def test_create_poll_with_unknown_proposal(proposals: Proposals) -> None:
    cid = proposals.consultation()
    error = refused(proposals.core, CreatePoll(consultation_id=cid, proposal_id="nope",
                                               rules=RULES, actor=ORG))
    assert (error["code"], error["status"]) == ("proposal_not_found", 404)


def test_create_poll_with_a_proposal_of_another_consultation(proposals: Proposals) -> None:
    other = proposals.consultation()
    pid = ok(proposals.core, AddProposal(consultation_id=other, title="t", actor=ORG))[0]["id"]
    cid = proposals.consultation()
    error = refused(proposals.core, CreatePoll(consultation_id=cid, proposal_id=pid, rules=RULES,
                                               actor=ORG))
    assert error["code"] == "proposal_not_found"


def test_lifecycle_draft_open_closed_published(proposals: Proposals) -> None:
    cid, poll_id = proposals.poll(proposal=True)
    draft = ok(proposals.core, GetPoll(poll_id=poll_id, actor=ORG))[0]
    assert draft["rules_hash"] is None and draft["opened_at"] is None

    opened_at = proposals.clock()
    view, events = ok(proposals.core, OpenPoll(poll_id=poll_id, actor=ORG))
    assert view["status"] == "open"
    assert view["rules_hash"] == rules_hash(RULES)  # frozen at opening
    assert types(events) == ["poll.opened.v1"]
    payload = events[0]["payload"]
    assert payload["poll_id"] == poll_id
    assert payload["consultation_id"] == cid
    assert payload["rules"] == RULES.model_dump(mode="json")
    assert payload["rules_hash"] == rules_hash(RULES)
    assert payload["opened_at"] == view["opened_at"]
    assert events[0]["producer"] == "proposal"
    assert view["opened_at"].startswith(opened_at.isoformat()[:19])

    proposals.clock.advance(hours=2)
    view, events = ok(proposals.core, ClosePoll(poll_id=poll_id, actor=ORG))
    assert view["status"] == "closed"
    assert view["rules_hash"] == rules_hash(RULES)
    assert types(events) == ["poll.closed.v1"]
    assert events[0]["payload"] == {"poll_id": poll_id, "closed_at": view["closed_at"]}

    assert proposals.published(poll_id) == []
    view = ok(proposals.core, GetPoll(poll_id=poll_id, actor=ORG))[0]
    assert view["status"] == "published"
    assert view["published_at"] is not None


@pytest.mark.parametrize(
    ("reach", "cmd", "code"),
    [
        ("draft", ClosePoll, "poll_draft"),
        ("closed", OpenPoll, "poll_closed"),
        ("published", OpenPoll, "poll_published"),
    ],
)
def test_invalid_transitions_are_conflicts(proposals: Proposals, reach: str, cmd: type,
                                           code: str) -> None:
    _, poll_id = proposals.poll()
    moves = {"open": lambda: ok(proposals.core, OpenPoll(poll_id=poll_id, actor=ORG)),
             "closed": lambda: ok(proposals.core, ClosePoll(poll_id=poll_id, actor=ORG)),
             "published": lambda: proposals.published(poll_id)}
    order = ["draft", *moves]
    for step in order[1 : order.index(reach) + 1]:
        moves[step]()
    assert proposals.status(poll_id) == reach
    error = refused(proposals.core, cmd(poll_id=poll_id, actor=ORG))
    assert (error["code"], error["status"]) == (code, 409)
    assert proposals.status(poll_id) == reach  # nothing changed


@pytest.mark.parametrize(("reach", "cmd", "event"), [
    ("open", OpenPoll, "poll.opened.v1"),
    ("closed", ClosePoll, "poll.closed.v1"),
    ("published", ClosePoll, "poll.closed.v1"),
])
def test_a_retried_open_or_close_sends_its_event_again(proposals: Proposals, reach: str,
                                                        cmd: type, event: str) -> None:
    """The state is already reached (the first answer, or its event, was lost on the
    way): the same 200 and the same event again, and nothing changes."""
    _, poll_id = proposals.poll()
    _, opened = ok(proposals.core, OpenPoll(poll_id=poll_id, actor=ORG))
    first = {"open": opened}
    if reach in ("closed", "published"):
        first["closed"] = ok(proposals.core, ClosePoll(poll_id=poll_id, actor=ORG))[1]
    if reach == "published":
        proposals.published(poll_id)
    before = ok(proposals.core, GetPoll(poll_id=poll_id, actor=ORG))[0]
    proposals.clock.advance(minutes=5)
    view, again = ok(proposals.core, cmd(poll_id=poll_id, actor=ORG))
    assert view == before
    assert types(again) == [event]
    assert again[0]["payload"] == first["open" if cmd is OpenPoll else "closed"][0]["payload"]
    assert ok(proposals.core, GetPoll(poll_id=poll_id, actor=ORG))[0] == before


def test_result_published_is_idempotent(proposals: Proposals) -> None:
    _, poll_id = proposals.poll()
    ok(proposals.core, OpenPoll(poll_id=poll_id, actor=ORG))
    ok(proposals.core, ClosePoll(poll_id=poll_id, actor=ORG))
    assert proposals.published(poll_id) == []
    first = ok(proposals.core, GetPoll(poll_id=poll_id, actor=ORG))[0]
    proposals.clock.advance(minutes=5)
    assert proposals.published(poll_id) == []  # redelivery: no second effect
    assert ok(proposals.core, GetPoll(poll_id=poll_id, actor=ORG))[0] == first


def test_result_published_for_an_unknown_poll_is_ignored(proposals: Proposals) -> None:
    assert proposals.published("never-heard-of") == []


def test_result_published_while_open_raises_for_redelivery(proposals: Proposals) -> None:
    _, poll_id = proposals.poll()
    ok(proposals.core, OpenPoll(poll_id=poll_id, actor=ORG))
    with pytest.raises(Exception, match="published while open"):
        proposals.published(poll_id)
    assert proposals.status(poll_id) == "open"
