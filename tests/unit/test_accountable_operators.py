"""Accountable operators (issue 10): admins grant and take back roles, and whatever an
organiser or admin has a service carry out is appended to that service's action log,
which only admins read."""

from __future__ import annotations

import json
import typing
from datetime import UTC
from pathlib import Path
from unittest.mock import Mock

import pytest

from tests.unit.helpers import Clock, ok, refused, send, service_db
from tests.unit.test_identity import ADMIN, CITIZEN, ORGANISER, Identity, make_identity
from tests.unit.test_proposal import ORG, Proposals
from urne.contracts import wrap
from urne.contracts.commands import (
    Actor,
    CreateConsultation,
    GetConsultation,
    ListIdentityActions,
    ListProposalActions,
    PurgeExpired,
    RegisterAtDesk,
    RunSchedule,
    SetRole,
)
from urne.contracts.roles import GRANTABLE
from urne.crypto.keys import SigningKey
from urne.messaging.kernel import ServiceCore
from urne.platform.metrics import ACTION_LOG_FAILURES
from urne.services.proposal.adapters.sqlite_store import SqliteProposalStore
from urne.services.proposal.handlers import ProposalHandlers
from urne.storage.action_log import SUBJECT_LIMIT, Action, view

pytestmark = pytest.mark.unit


@pytest.fixture
def identity(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Identity:
    return make_identity(tmp_path, identity_key, clock)


@pytest.fixture
def proposals(tmp_path: Path, clock: Clock) -> Proposals:
    store = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    return Proposals(ProposalHandlers(store, clock=clock).core(), clock)


def admin_of(identity: Identity) -> Actor:
    data, _ = identity.sign_in(ADMIN)
    assert data["role"] == "admin"
    return Actor(person_id=data["person_id"], role="admin")


def month(clock: Clock) -> str:
    return clock().astimezone(UTC).strftime("%Y-%m")


def test_an_admin_grants_a_role_that_the_next_sign_in_carries(identity: Identity) -> None:
    admin = admin_of(identity)
    first, _ = identity.sign_in(CITIZEN)
    assert first["role"] == "participant"
    person = ok(identity.core, SetRole(actor=admin, email=CITIZEN.upper(), role="organiser"))[0]
    assert (person["person_id"], person["role"]) == (first["person_id"], "organiser")
    again, _ = identity.sign_in(CITIZEN)
    assert identity.verifier.access(again["access_token"]).role == "organiser"
    ok(identity.core, SetRole(actor=admin, email=CITIZEN, role="participant"))
    assert identity.sign_in(CITIZEN)[0]["role"] == "participant"  # taken back


def test_a_role_given_to_an_address_awaits_its_first_sign_in(identity: Identity) -> None:
    admin = admin_of(identity)
    granted = ok(identity.core, SetRole(actor=admin, email="agent@town.example.org",
                                        role="agent"))[0]
    data, _ = identity.sign_in("agent@town.example.org")
    assert (data["person_id"], data["role"]) == (granted["person_id"], "agent")


@pytest.mark.parametrize("role", ["participant", "organiser"])
def test_only_an_admin_grants_roles_and_never_their_own(identity: Identity, role: str) -> None:
    data, _ = identity.sign_in(ORGANISER if role == "organiser" else CITIZEN)
    someone = Actor(person_id=data["person_id"], role=data["role"])
    error = refused(identity.core, SetRole(actor=someone, email="x@example.org", role="admin"))
    assert (error["code"], error["status"]) == ("forbidden", 403)
    assert identity.store.person_by_email("x@example.org") is None  # nothing changed
    admin = admin_of(identity)
    error = refused(identity.core, SetRole(actor=admin, email=ADMIN, role="participant"))
    assert (error["code"], error["status"]) == ("own_role", 409)
    assert identity.store.person_by_email(ADMIN).role == "admin"


def test_the_grantable_roles_are_the_contracts(identity: Identity) -> None:
    assert typing.get_args(SetRole.model_fields["role"].annotation) == GRANTABLE


def test_staff_actions_are_logged_and_read_by_admins_only(identity: Identity,
                                                          proposals: Proposals,
                                                          clock: Clock) -> None:
    admin = admin_of(identity)
    granted = wrap(SetRole(actor=admin, email=CITIZEN, role="moderator"), "gateway")
    assert identity.core.handle(granted)[0]["ok"]
    refused(identity.core, SetRole(actor=admin, email=ADMIN, role="agent"))  # not done
    cid = proposals.consultation()
    # A participant's command and a query are not staff actions.
    ok(proposals.core, GetConsultation(consultation_id=cid, actor=ORG))

    [entry] = ok(identity.core, ListIdentityActions(actor=admin, month=month(clock)))[0][
        "actions"]
    assert (entry["id"], entry["actor"], entry["role"], entry["action"]) == (
        granted["id"], admin.person_id, "admin", "person.role.set.v1")
    assert entry["subject"] == {"email": CITIZEN, "role": "moderator"}
    logged = ok(proposals.core, ListProposalActions(actor=admin, month=month(clock)))[0]
    # (the test clock stands still: both at one instant, in no particular order)
    assert sorted(a["action"] for a in logged["actions"]) == ["consultation.create.v1",
                                                              "consultation.publish.v1"]
    assert all(a["actor"] == ORG.person_id and a["role"] == "organiser"
               for a in logged["actions"])
    assert ok(proposals.core, ListProposalActions(actor=admin, month="1999-01"))[0][
        "actions"] == []
    for core, query in ((identity.core, ListIdentityActions), (proposals.core,
                                                               ListProposalActions)):
        error = refused(core, query(actor=ORG, month=month(clock)))
        assert (error["code"], error["status"]) == ("forbidden", 403)


def test_a_participants_command_is_not_logged(proposals: Proposals, clock: Clock) -> None:
    citizen = Actor(person_id="p1", role="participant")
    assert send(proposals.core, CreateConsultation(title="Mine", actor=citizen))[0]["ok"] \
        is False
    admin = Actor(person_id="a", role="admin")
    assert ok(proposals.core, ListProposalActions(actor=admin, month=month(clock)))[0][
        "actions"] == []


def test_a_refused_log_entry_neither_undoes_the_command_nor_hides_it(tmp_path: Path) -> None:
    """The command's writes are committed and its events due: an entry the store
    refuses goes to the process log and is counted instead."""
    failing = Mock(side_effect=RuntimeError("disk full"))
    core = ServiceCore("proposal", {CreateConsultation: lambda cmd, ctx: _view()},
                       log_action=failing)
    before = ACTION_LOG_FAILURES.labels("proposal")._value.get()
    reply, _ = core.handle(wrap(CreateConsultation(title="T", actor=ORG), "gateway"))
    assert reply["ok"] and failing.called
    assert ACTION_LOG_FAILURES.labels("proposal")._value.get() == before + 1


def test_a_refused_log_entry_leaves_in_the_process_log_what_the_entry_would_say(
        caplog: pytest.LogCaptureFixture) -> None:
    """The process log gets the entry's subject, never the fields no log may hold: an
    agent's access token, a census's names (said by their number)."""
    failing = Mock(side_effect=RuntimeError("disk full"))
    agent = Actor(person_id="agent-1", role="agent")
    token = "eyJhbGciOiJFZERTQSJ9.secret-part.signature"
    core = ServiceCore("identity", {RegisterAtDesk: lambda cmd, ctx: _view()},
                       log_action=failing)
    with caplog.at_level("ERROR", logger="urne.messaging.kernel"):
        reply, _ = core.handle(wrap(RegisterAtDesk(actor=agent, access_token=token,
                                                   person_id="p-1"), "gateway"))
    assert reply["ok"]
    [record] = [r for r in caplog.records if r.getMessage() == "action log entry not stored"]
    fields = record.fields  # type: ignore[attr-defined]
    assert (fields["actor"], fields["role"]) == ("agent-1", "agent")
    assert json.loads(fields["subject"])["person_id"] == "p-1"
    assert "secret-part" not in repr(record.__dict__)


def _view() -> typing.Any:
    from urne.contracts.replies import Health

    return Health(service="proposal", ready=True)


def test_a_long_subject_is_cut_and_still_served(clock: Clock) -> None:
    entry = Action(clock(), "id", "p", "admin", "x.v1", '{"body": "' + "a" * SUBJECT_LIMIT)
    assert view(entry).subject == {"truncated": entry.subject}


def test_the_log_is_kept_a_year_then_purged(identity: Identity, proposals: Proposals,
                                            clock: Clock) -> None:
    """URNE_ACTION_LOG_DAYS (365) after an entry, each service's purge deletes it
    (identity's purge; the proposal service's schedule run, at most every ten
    minutes); a younger entry stays."""
    admin = admin_of(identity)
    ok(identity.core, SetRole(actor=admin, email=CITIZEN, role="moderator"))
    proposals.consultation()
    logged_in = month(clock)
    clock.advance(days=200)
    ok(identity.core, SetRole(actor=admin, email=CITIZEN, role="agent"))
    younger = month(clock)
    ok(proposals.core, RunSchedule())  # its first purge: nothing a year old yet
    clock.advance(days=165, seconds=1)
    removed = ok(identity.core, PurgeExpired())[0]["removed"]
    assert removed["action_log"] == 1
    assert ok(identity.core, ListIdentityActions(actor=admin, month=logged_in))[0][
        "actions"] == []
    assert [a["subject"]["role"] for a in ok(identity.core, ListIdentityActions(
        actor=admin, month=younger))[0]["actions"]] == ["agent"]
    assert len(ok(proposals.core, ListProposalActions(actor=admin, month=logged_in))[0][
        "actions"]) == 2
    ok(proposals.core, RunSchedule())  # more than ten minutes after its last purge
    assert ok(proposals.core, ListProposalActions(actor=admin, month=logged_in))[0][
        "actions"] == []
