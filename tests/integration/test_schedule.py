"""Polls that open and close by themselves, on both stores: the schedule's run, the
extension amendment, and (Cassandra) the poll outbox that sends again an event a crash
kept from the broker, with the same id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.unit.helpers import Clock, ok, refused, types
from urne.contracts.commands import (
    Actor,
    ClosePoll,
    CreateConsultation,
    CreatePoll,
    ExtendPoll,
    GetPoll,
    OpenPoll,
    PublishConsultation,
    RunSchedule,
)
from urne.counting.rules import YesNoAbstainRules
from urne.messaging.kernel import ServiceCore
from urne.services.proposal.handlers import CLOSE_GRACE, RESEND_AFTER, ProposalHandlers

ORGANISER = Actor(person_id="ada", role="organiser")
RULES = YesNoAbstainRules(method="yes_no_abstain", question="A cycle lane on Main Street?")


def _core(store: Any, clock: Clock) -> ServiceCore:
    return ProposalHandlers(store, clock=clock).core()


def _consultation(core: ServiceCore, publish: bool = True) -> str:
    cid = str(ok(core, CreateConsultation(title="Mobility", actor=ORGANISER))[0]["id"])
    if publish:
        ok(core, PublishConsultation(consultation_id=cid, actor=ORGANISER))
    return cid


def _run(core: ServiceCore, confirm: bool = True) -> tuple[dict, list[dict]]:
    """One run of the schedule; ``confirm``: as a transport does, tell the core its
    events were published."""
    ran, events = ok(core, RunSchedule())
    if confirm:
        core.published(events)
    return ran, events


def _status(core: ServiceCore, poll_id: str) -> str:
    return str(ok(core, GetPoll(poll_id=poll_id, actor=ORGANISER))[0]["status"])


def test_a_poll_opens_and_closes_at_its_times(backend: Callable[[str], Any]) -> None:
    clock = Clock()
    core = _core(backend("proposal"), clock)
    cid = _consultation(core)
    opens_at, closes_at = clock() + timedelta(hours=1), clock() + timedelta(hours=2)
    poll = ok(core, CreatePoll(consultation_id=cid, rules=RULES, actor=ORGANISER,
                               opens_at=opens_at, closes_at=closes_at))[0]
    pid = poll["id"]
    assert _run(core)[0]["opened"] == [] and _status(core, pid) == "draft"
    clock.now = opens_at
    ran, events = _run(core)
    assert ran["opened"] == [pid] and types(events) == ["poll.opened.v1"]
    assert events[0]["payload"]["closes_at"] is not None
    assert _run(core)[1] == []  # opened once, whoever runs the schedule next
    clock.now = closes_at + CLOSE_GRACE - timedelta(milliseconds=1)
    assert _run(core)[0]["closed"] == []  # the grace: ballots still on their way
    clock.now = closes_at + CLOSE_GRACE
    ran, events = _run(core)
    assert ran["closed"] == [pid] and types(events) == ["poll.closed.v1"]
    assert _status(core, pid) == "closed"
    assert _run(core)[1] == []


def test_a_scheduled_poll_of_a_draft_consultation_waits(backend: Callable[[str], Any]) -> None:
    clock = Clock()
    core = _core(backend("proposal"), clock)
    cid = _consultation(core, publish=False)
    pid = ok(core, CreatePoll(consultation_id=cid, rules=RULES, actor=ORGANISER,
                              opens_at=clock() + timedelta(minutes=1)))[0]["id"]
    clock.advance(minutes=2)
    assert _run(core)[1] == [] and _status(core, pid) == "draft"
    ok(core, PublishConsultation(consultation_id=cid, actor=ORGANISER))
    assert _run(core)[0]["opened"] == [pid]


def test_extension_is_an_amendment_limited_to_a_later_close(backend: Callable[[str], Any]
                                                            ) -> None:
    clock = Clock()
    core = _core(backend("proposal"), clock)
    cid = _consultation(core)
    closes_at = clock() + timedelta(hours=2)
    pid = ok(core, CreatePoll(consultation_id=cid, rules=RULES, actor=ORGANISER,
                              closes_at=closes_at))[0]["id"]
    draft = {"poll_id": pid, "reason": "surge", "actor": ORGANISER}
    assert refused(core, ExtendPoll(closes_at=closes_at + timedelta(hours=1), **draft)
                   )["code"] == "poll_draft"
    ok(core, OpenPoll(poll_id=pid, actor=ORGANISER))
    for earlier in (closes_at, closes_at - timedelta(minutes=1)):
        assert refused(core, ExtendPoll(closes_at=earlier, **draft))["code"] == \
            "extension_not_later"
    other = Actor(person_id="bob", role="organiser")
    assert refused(core, ExtendPoll(poll_id=pid, closes_at=closes_at + timedelta(hours=1),
                                    reason="mine now", actor=other)
                   )["code"] == "not_an_organiser_of_this_consultation"
    view, events = ok(core, ExtendPoll(closes_at=closes_at + timedelta(hours=1), **draft))
    assert types(events) == ["poll.close_extended.v1"]
    assert [(a["previous_closes_at"], a["reason"]) for a in view["amendments"]] == \
        [(closes_at.isoformat().replace("+00:00", "Z"), "surge")]
    clock.now = closes_at + timedelta(hours=1)  # the extended close time has come
    assert refused(core, ExtendPoll(closes_at=closes_at + timedelta(hours=3), **draft)
                   )["code"] == "poll_closed"
    assert ok(core, GetPoll(poll_id=pid, actor=ORGANISER))[0] == view  # unchanged


@pytest.mark.parametrize("command", ["open", "close"])
def test_an_event_a_crash_kept_from_the_broker_goes_again(cassandra: Any, command: str
                                                          ) -> None:
    """Cassandra commits the change, the process dies before the broker confirmed its
    event: the next runs of the schedule send that very event (same id) until a
    transport says it was published; then never again."""
    from urne.services.proposal.adapters.cassandra_store import CassandraProposalStore

    clock = Clock()
    store = CassandraProposalStore(cassandra.session, cassandra.keyspaces["proposal"])
    core = _core(store, clock)
    cid = _consultation(core)
    pid = ok(core, CreatePoll(consultation_id=cid, rules=RULES, actor=ORGANISER))[0]["id"]
    if command == "close":
        _, opened = ok(core, OpenPoll(poll_id=pid, actor=ORGANISER))
        core.published(opened)
    cmd = OpenPoll if command == "open" else ClosePoll
    _, lost = ok(core, cmd(poll_id=pid, actor=ORGANISER))  # ... and the process dies
    assert len(lost) == 1
    def run() -> list[dict]:  # what a run sends of this poll (the keyspace is shared)
        return [e for e in _run(core, confirm=False)[1] if e["payload"]["poll_id"] == pid]

    assert run() == []  # not yet: its publication may still be on its way
    clock.now = datetime.fromisoformat(lost[0]["occurred_at"]) + RESEND_AFTER
    again = run()
    assert again == lost  # the very envelope, same id
    assert run() == again  # still unconfirmed: sent again
    core.published(again)  # the broker confirmed it
    assert run() == []


def test_an_open_poll_without_a_close_time_gets_one_by_an_extension(
        backend: Callable[[str], Any]) -> None:
    clock = Clock()
    core = _core(backend("proposal"), clock)
    pid = ok(core, CreatePoll(consultation_id=_consultation(core), rules=RULES,
                              actor=ORGANISER))[0]["id"]
    ok(core, OpenPoll(poll_id=pid, actor=ORGANISER))
    closes_at = clock() + timedelta(hours=1)
    view, events = ok(core, ExtendPoll(poll_id=pid, closes_at=closes_at, reason="a date",
                                       actor=ORGANISER))
    assert datetime.fromisoformat(view["closes_at"]) == closes_at
    assert view["amendments"][0]["previous_closes_at"] is None
    assert types(events) == ["poll.close_extended.v1"]
    clock.now = closes_at + CLOSE_GRACE
    assert pid in _run(core)[0]["closed"]  # and it closes by itself then (shared keyspace)
