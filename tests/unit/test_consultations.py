"""Proposal: who may see and act on a consultation, its states and steps, and the poll
rules frozen at opening. The core is driven through envelopes, on a SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.unit.helpers import Clock, deliver, ok, refused, send, service_db, types
from urne.contracts import Command, wrap
from urne.contracts.commands import (
    Actor,
    AddOrganiser,
    AddProposal,
    ClosePoll,
    CreateConsultation,
    CreatePoll,
    ExtendPoll,
    GetConsultation,
    GetPoll,
    ListConsultations,
    OpenPoll,
    PublishConsultation,
    UpdateConsultation,
    UpdatePoll,
)
from urne.contracts.events import ResultPublished
from urne.contracts.steps import Step
from urne.counting import ApprovalRules, YesNoAbstainRules, rules_hash
from urne.counting.rules import Option
from urne.messaging.kernel import RawEnvelope, ServiceCore
from urne.services.proposal.adapters.sqlite_store import SqliteProposalStore
from urne.services.proposal.domain import Poll
from urne.services.proposal.handlers import ProposalHandlers

pytestmark = pytest.mark.unit

RULES = YesNoAbstainRules(method="yes_no_abstain", question="A cycle lane on Main Street?")
NEW_RULES = ApprovalRules(method="approval", question="Which streets?", max_choices=1,
                          options=(Option(id="main", title="Main Street"),
                                   Option(id="mill", title="Mill Lane")))

CREATOR = Actor(person_id="ada", role="organiser")
ADDED = Actor(person_id="cleo", role="organiser")  # added by the creator
OTHER = Actor(person_id="bob", role="organiser")  # an organiser, of other consultations
ADMIN = Actor(person_id="root", role="admin")
PARTICIPANT = Actor(person_id="pat", role="participant")
ACTORS = {"creator": CREATOR, "added": ADDED, "other organiser": OTHER, "admin": ADMIN,
          "participant": PARTICIPANT}
MAY_ACT = {"creator", "added", "admin"}


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2030, 3, day, hour, tzinfo=UTC)


CALENDAR = (Step(kind="proposals", starts_at=at(1), ends_at=at(10)),
            Step(kind="vote", starts_at=at(15), ends_at=at(20)),
            Step(kind="results", starts_at=at(20), ends_at=at(25)))


@dataclass
class World:
    """A draft consultation and a published one, each with a draft poll; the published
    one also has an open poll. Ada created both and added Cleo to both."""

    core: ServiceCore
    clock: Clock
    draft: str
    published: str
    polls: dict[str, str]  # "draft/draft", "published/draft", "published/open"

    def seen_by_admin(self) -> Any:
        """Everything there is, to show a refused command changed nothing."""
        return ([ok(self.core, GetConsultation(consultation_id=c, actor=ADMIN))[0]
                 for c in (self.draft, self.published)],
                ok(self.core, ListConsultations(actor=ADMIN))[0])


def make_consultation(core: ServiceCore, publish: bool, actor: Actor = CREATOR, **fields: Any
                      ) -> str:
    cid = ok(core, CreateConsultation(title="Mobility 2030", actor=actor, **fields))[0]["id"]
    ok(core, AddOrganiser(consultation_id=cid, person_id=ADDED.person_id, actor=actor))
    if publish:
        ok(core, PublishConsultation(consultation_id=cid, actor=actor))
    return cid


def make_poll(core: ServiceCore, cid: str) -> str:
    return str(ok(core, CreatePoll(consultation_id=cid, rules=RULES, actor=CREATOR))[0]["id"])


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> ServiceCore:
    store = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    return ProposalHandlers(store, clock=clock).core()


@pytest.fixture
def world(core: ServiceCore, clock: Clock) -> World:
    draft = make_consultation(core, publish=False)
    clock.advance(minutes=1)  # listed newest first
    published = make_consultation(core, publish=True)
    polls = {"draft/draft": make_poll(core, draft), "published/draft": make_poll(core, published),
             "published/open": make_poll(core, published)}
    ok(core, OpenPoll(poll_id=polls["published/open"], actor=CREATOR))
    return World(core, clock, draft, published, polls)


# --- the ownership matrix -----------------------------------------------------------------

# action -> (the command, given the world and the actor; what those who may act get, on
# the draft consultation and on the published one). "ok", or (status, code).
Outcome = str | tuple[int, str]
ACTIONS: dict[str, tuple[Callable[[World, str, Actor], Command], Outcome]] = {
    "edit": (lambda w, c, a: UpdateConsultation(consultation_id=c, title="Renamed", actor=a),
             "ok"),
    "publish": (lambda w, c, a: PublishConsultation(consultation_id=c, actor=a), "ok"),
    "add an organiser": (lambda w, c, a: AddOrganiser(consultation_id=c, person_id="dan",
                                                      actor=a), "ok"),
    "add a proposal": (lambda w, c, a: AddProposal(consultation_id=c, title="Trees", actor=a),
                       "ok"),
    "create a poll": (lambda w, c, a: CreatePoll(consultation_id=c, rules=RULES, actor=a), "ok"),
    "edit draft rules": (lambda w, c, a: UpdatePoll(poll_id=w.polls[f"{state(w, c)}/draft"],
                                                    rules=NEW_RULES, actor=a), "ok"),
    "open a draft poll": (lambda w, c, a: OpenPoll(poll_id=w.polls[f"{state(w, c)}/draft"],
                                                   actor=a), "ok"),
}


def state(world: World, cid: str) -> str:
    return "draft" if cid == world.draft else "published"


def expected(action: str, consultation: str, who: str) -> Outcome:
    """What ``who`` gets: those who may act, the action's outcome; anyone else a 404 if
    they cannot see what the command names (a draft consultation, a draft poll), else 403."""
    if who in MAY_ACT:
        if (action, consultation) == ("publish", "published"):
            return 409, "consultation_published"
        if (action, consultation) == ("open a draft poll", "draft"):
            return 409, "consultation_draft"
        return ACTIONS[action][1]
    if action in ("edit draft rules", "open a draft poll"):
        return 404, "poll_not_found"
    if consultation == "draft":
        return 404, "consultation_not_found"
    if action == "add a proposal":  # anyone else submits, in its proposals step only
        return 409, "proposals_closed"
    return 403, "not_an_organiser_of_this_consultation"


@pytest.mark.parametrize("who", ACTORS)
@pytest.mark.parametrize("consultation", ["draft", "published"])
@pytest.mark.parametrize("action", ACTIONS)
def test_only_its_organisers_and_admins_act_on_a_consultation(
        world: World, action: str, consultation: str, who: str) -> None:
    cid = world.draft if consultation == "draft" else world.published
    command = ACTIONS[action][0](world, cid, ACTORS[who])
    outcome = expected(action, consultation, who)
    before = world.seen_by_admin()
    if outcome == "ok":
        ok(world.core, command)
        assert world.seen_by_admin() != before
    else:
        error = refused(world.core, command)
        assert (error["status"], error["code"]) == outcome, error
        assert world.seen_by_admin() == before  # nothing changed


@pytest.mark.parametrize("who", ACTORS)
def test_an_open_poll_is_closed_by_the_organisers_of_its_consultation_only(
        world: World, who: str) -> None:
    poll_id = world.polls["published/open"]
    before = world.seen_by_admin()
    if who in MAY_ACT:
        view, events = ok(world.core, ClosePoll(poll_id=poll_id, actor=ACTORS[who]))
        assert view["status"] == "closed" and types(events) == ["poll.closed.v1"]
        return
    error = refused(world.core, ClosePoll(poll_id=poll_id, actor=ACTORS[who]))
    assert (error["status"], error["code"]) == (403, "not_an_organiser_of_this_consultation")
    error = refused(world.core, UpdatePoll(poll_id=poll_id, rules=NEW_RULES, actor=ACTORS[who]))
    assert (error["status"], error["code"]) == (403, "not_an_organiser_of_this_consultation")
    assert world.seen_by_admin() == before


@pytest.mark.parametrize("who", [*ACTORS, "anonymous"])
def test_drafts_are_seen_by_their_organisers_and_admins_only(world: World, who: str) -> None:
    actor = ACTORS.get(who)
    organiser = who in MAY_ACT
    # The draft consultation, and its draft poll: a 404 as for an unknown id, for others.
    reply, _ = send(world.core, GetConsultation(consultation_id=world.draft, actor=actor))
    assert reply["ok"] is organiser, reply
    if not organiser:
        assert reply["error"]["code"] == "consultation_not_found"
    for poll in ("draft/draft", "published/draft"):
        reply, _ = send(world.core, GetPoll(poll_id=world.polls[poll], actor=actor))
        assert reply["ok"] is organiser, reply
        if not organiser:
            assert reply["error"]["code"] == "poll_not_found"
    # The published one: everyone sees it, and its open poll; its draft poll, and who
    # organises it, only its organisers.
    view = ok(world.core, GetConsultation(consultation_id=world.published, actor=actor))[0]
    assert view["status"] == "published"
    shown = {p["id"] for p in view["polls"]}
    assert shown == ({world.polls["published/draft"], world.polls["published/open"]}
                     if organiser else {world.polls["published/open"]})
    assert view["organisers"] == (["ada", "cleo"] if organiser else None)
    assert ok(world.core, GetPoll(poll_id=world.polls["published/open"],
                                  actor=actor))[0]["status"] == "open"
    listed = [c["id"] for c in ok(world.core, ListConsultations(actor=actor))[0]["items"]]
    assert listed == ([world.published, world.draft] if organiser else [world.published])


def test_only_organisers_and_admins_create_consultations(core: ServiceCore) -> None:
    error = refused(core, CreateConsultation(title="Mine", actor=PARTICIPANT))
    assert (error["status"], error["code"]) == (403, "forbidden")
    assert ok(core, ListConsultations(actor=ADMIN))[0]["items"] == []
    for actor in (CREATOR, ADMIN):
        view = ok(core, CreateConsultation(title="Ours", actor=actor))[0]
        assert view["status"] == "draft" and view["published_at"] is None
        full = ok(core, GetConsultation(consultation_id=view["id"], actor=actor))[0]
        assert full["organisers"] == [actor.person_id]


def test_a_command_without_its_actor_is_refused(core: ServiceCore) -> None:
    raw = wrap(CreateConsultation(title="Anyone's", actor=CREATOR), "test")
    del raw["payload"]["actor"]
    reply, events = core.handle(raw)
    assert (reply["ok"], reply["error"]["code"], reply["error"]["status"], events) == (
        False, "invalid_message", 422, [])
    assert ok(core, ListConsultations(actor=ADMIN))[0]["items"] == []


def test_an_admin_adds_an_organiser_who_may_then_act(world: World) -> None:
    dan = Actor(person_id="dan", role="organiser")
    error = refused(world.core, UpdateConsultation(consultation_id=world.draft, title="x",
                                                   actor=dan))
    assert error["code"] == "consultation_not_found"
    view = ok(world.core, AddOrganiser(consultation_id=world.draft, person_id="dan",
                                       actor=ADMIN))[0]
    assert view["organisers"] == ["ada", "cleo", "dan"]  # the creator first, then in order
    again = ok(world.core, AddOrganiser(consultation_id=world.draft, person_id="dan",
                                        actor=CREATOR))[0]
    assert again["organisers"] == ["ada", "cleo", "dan"]  # once only
    assert ok(world.core, UpdateConsultation(consultation_id=world.draft, title="By Dan",
                                             actor=dan))[0]["title"] == "By Dan"
    assert ok(world.core, GetPoll(poll_id=world.polls["draft/draft"], actor=dan))[0]


def test_listing_keeps_its_limit_after_hiding_drafts(core: ServiceCore, clock: Clock) -> None:
    published = []
    for _ in range(3):
        published.append(make_consultation(core, publish=True))
        clock.advance(minutes=1)
    drafts = []
    for _ in range(3):  # newer than every published one
        drafts.append(make_consultation(core, publish=False, actor=ADMIN))
        clock.advance(minutes=1)
    anonymous = [c["id"] for c in ok(core, ListConsultations(limit=2))[0]["items"]]
    assert anonymous == [published[2], published[1]]
    admin = [c["id"] for c in ok(core, ListConsultations(limit=4, actor=ADMIN))[0]["items"]]
    assert admin == [drafts[2], drafts[1], drafts[0], published[2]]
    # Ada organises the published ones, not the admin's drafts.
    ada = [c["id"] for c in ok(core, ListConsultations(limit=4, actor=CREATOR))[0]["items"]]
    assert ada == [published[2], published[1], published[0]]


# --- states and steps ------------------------------------------------------------------------


def test_publish_once(core: ServiceCore, clock: Clock) -> None:
    cid = make_consultation(core, publish=False)
    clock.advance(hours=1)
    view = ok(core, PublishConsultation(consultation_id=cid, actor=CREATOR))[0]
    assert view["status"] == "published"
    assert view["published_at"].startswith(clock().isoformat()[:19])
    error = refused(core, PublishConsultation(consultation_id=cid, actor=ADMIN))
    assert (error["status"], error["code"]) == (409, "consultation_published")
    assert ok(core, GetConsultation(consultation_id=cid))[0] == {**view, "organisers": None}


def test_steps_in_utc_with_a_display_time_zone_and_the_current_step(
        core: ServiceCore, clock: Clock) -> None:
    winter_in_paris = timezone(timedelta(hours=1))
    local = tuple(Step(kind=s.kind, starts_at=s.starts_at.astimezone(winter_in_paris),
                       ends_at=s.ends_at.astimezone(winter_in_paris)) for s in CALENDAR)
    assert local == CALENDAR and local[0].starts_at.tzinfo is UTC  # kept in UTC
    cid = make_consultation(core, publish=True, time_zone="Europe/Paris", steps=local)
    view = ok(core, GetConsultation(consultation_id=cid))[0]
    assert view["time_zone"] == "Europe/Paris"
    assert view["steps"][0] == {"kind": "proposals", "starts_at": "2030-03-01T00:00:00Z",
                                "ends_at": "2030-03-10T00:00:00Z"}
    assert [Step.model_validate(s) for s in view["steps"]] == list(CALENDAR)
    for now, step in ((at(1) - timedelta(seconds=1), None), (at(1), "proposals"),
                      (at(9, 23), "proposals"), (at(10), None), (at(15), "vote"),
                      (at(20), "results"), (at(25), None)):
        clock.now = now
        assert ok(core, GetConsultation(consultation_id=cid))[0]["current_step"] == step, now
        [listed] = ok(core, ListConsultations())[0]["items"]
        assert listed["current_step"] == step


def test_an_edit_changes_what_it_names_and_nothing_else(core: ServiceCore) -> None:
    cid = make_consultation(core, publish=False, steps=CALENDAR, description="Before")
    before = ok(core, GetConsultation(consultation_id=cid, actor=CREATOR))[0]
    same = ok(core, UpdateConsultation(consultation_id=cid, actor=CREATOR))[0]
    assert same == before
    view = ok(core, UpdateConsultation(consultation_id=cid, title="After", time_zone="Asia/Tokyo",
                                       steps=CALENDAR[:1], actor=ADDED))[0]
    assert (view["title"], view["description"], view["time_zone"]) == (
        "After", "Before", "Asia/Tokyo")
    assert [s["kind"] for s in view["steps"]] == ["proposals"]  # the calendar is replaced
    assert view == ok(core, GetConsultation(consultation_id=cid, actor=ADMIN))[0]


@pytest.mark.parametrize("steps", [
    [{"kind": "vote", "starts_at": "2030-03-01T00:00:00Z", "ends_at": "2030-03-01T00:00:00Z"}],
    [{"kind": "vote", "starts_at": "2030-03-01T00:00:00", "ends_at": "2030-03-02T00:00:00"}],
    [{"kind": "vote", "starts_at": "2030-03-01T00:00:00Z", "ends_at": "2030-03-05T00:00:00Z"},
     {"kind": "results", "starts_at": "2030-03-04T00:00:00Z",
      "ends_at": "2030-03-06T00:00:00Z"}],
    [{"kind": "vote", "starts_at": "2030-03-01T00:00:00Z", "ends_at": "2030-03-02T00:00:00Z"},
     {"kind": "proposals", "starts_at": "2030-03-03T00:00:00Z",
      "ends_at": "2030-03-04T00:00:00Z"}],
    [{"kind": "ballot", "starts_at": "2030-03-01T00:00:00Z", "ends_at": "2030-03-02T00:00:00Z"}],
], ids=["empty", "naive", "overlap", "out-of-order", "unknown-kind"])
def test_a_bad_calendar_is_refused_and_nothing_is_created(
        core: ServiceCore, steps: list[dict[str, str]]) -> None:
    raw = wrap(CreateConsultation(title="t", actor=CREATOR), "test")
    raw["payload"]["steps"] = steps
    reply, _ = core.handle(raw)
    assert (reply["ok"], reply["error"]["code"]) == (False, "invalid_message"), reply
    assert "steps" in reply["error"]["detail"]
    assert ok(core, ListConsultations(actor=ADMIN))[0]["items"] == []


# --- poll rules, frozen at opening -----------------------------------------------------------


def test_rules_change_in_draft_only(world: World) -> None:
    poll_id = world.polls["published/draft"]
    view = ok(world.core, UpdatePoll(poll_id=poll_id, rules=NEW_RULES, actor=ADDED))[0]
    assert (view["rules"]["method"], view["status"], view["rules_hash"]) == (
        "approval", "draft", None)
    opened, events = ok(world.core, OpenPoll(poll_id=poll_id, actor=ADMIN))
    assert opened["rules_hash"] == rules_hash(NEW_RULES)
    assert events[0]["payload"]["rules"] == NEW_RULES.model_dump(mode="json")
    for move in (None, ClosePoll, "published"):
        if move is ClosePoll:
            ok(world.core, ClosePoll(poll_id=poll_id, actor=CREATOR))
        elif move == "published":
            deliver(world.core, ResultPublished(poll_id=poll_id, record_root="ab" * 32,
                                                ballots_counted=0, published_at=world.clock()))
        before = ok(world.core, GetPoll(poll_id=poll_id))[0]
        error = refused(world.core, UpdatePoll(poll_id=poll_id, rules=RULES, actor=CREATOR))
        assert (error["status"], error["code"]) == (409, "poll_rules_frozen")
        assert ok(world.core, GetPoll(poll_id=poll_id))[0] == before


def test_a_poll_opens_only_once_its_consultation_is_published(world: World) -> None:
    poll_id = world.polls["draft/draft"]
    error = refused(world.core, OpenPoll(poll_id=poll_id, actor=CREATOR))
    assert (error["status"], error["code"]) == (409, "consultation_draft")
    assert ok(world.core, GetPoll(poll_id=poll_id, actor=CREATOR))[0]["status"] == "draft"
    ok(world.core, PublishConsultation(consultation_id=world.draft, actor=CREATOR))
    view, events = ok(world.core, OpenPoll(poll_id=poll_id, actor=CREATOR))
    assert view["status"] == "open" and types(events) == ["poll.opened.v1"]


class RacingStore(SqliteProposalStore):
    """A store where, just before the handler's compare-and-set, someone else's change
    lands first (another gateway's request, in the distributed profile)."""

    def __init__(self, store: SqliteProposalStore, rival: Callable[[Poll], Poll]):
        super().__init__(store.db)
        self.rival: Callable[[Poll], Poll] | None = rival
        self.attempts = 0

    def replace_poll(self, p: Poll, expected: Poll,
                     announce: Sequence[RawEnvelope] = ()) -> bool:
        self.attempts += 1
        if self.rival is not None:
            rival, self.rival = self.rival, None
            current = self.poll(p.poll_id)
            assert current is not None
            assert super().replace_poll(rival(current), current)
        return super().replace_poll(p, expected, announce)


@pytest.mark.parametrize(("command", "rival", "code"), [
    # Editing the rules while someone opens the poll: the opening wins, the rules it
    # froze stay.
    (lambda pid: UpdatePoll(poll_id=pid, rules=NEW_RULES, actor=CREATOR),
     lambda p: p.open(datetime.now(UTC)), "poll_rules_frozen"),
], ids=["edit-vs-open"])
def test_a_change_lost_to_a_concurrent_one_is_decided_again(
        tmp_path: Path, clock: Clock, command: Callable[[str], Command],
        rival: Callable[[Poll], Poll], code: str) -> None:
    plain = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    setup = ProposalHandlers(plain, clock=clock).core()
    poll_id = make_poll(setup, make_consultation(setup, publish=True))
    store = RacingStore(plain, rival)
    core = ProposalHandlers(store, clock=clock).core()
    error = refused(core, command(poll_id))
    assert (error["status"], error["code"]) == (409, code)
    assert store.attempts == 1  # the second look saw the newer status, and refused
    stored = store.poll(poll_id)
    assert stored is not None
    assert (stored.status, stored.rules, stored.rules_hash) == ("open", RULES, rules_hash(RULES))


def test_two_extensions_read_at_once_are_not_both_stored(tmp_path: Path,
                                                         clock: Clock) -> None:
    """Two organisers extend an open poll at the same moment, from the same read (its
    status unchanged by either): the one that comes second is decided again on the
    first's poll, and refused, since it would bring the published close forward. It is
    not stored over the first (a check of the status alone let both win)."""
    plain = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    setup = ProposalHandlers(plain, clock=clock).core()
    poll_id = make_poll(setup, make_consultation(setup, publish=True))
    ok(setup, OpenPoll(poll_id=poll_id, actor=CREATOR))
    later = clock() + timedelta(hours=3)
    store = RacingStore(plain, lambda p: p.extend(clock(), later, "the rival's"))
    core = ProposalHandlers(store, clock=clock).core()
    error = refused(core, ExtendPoll(poll_id=poll_id, closes_at=clock() + timedelta(hours=2),
                                     reason="mine", actor=CREATOR))
    assert (error["status"], error["code"]) == (422, "extension_not_later")
    stored = store.poll(poll_id)
    assert stored is not None and stored.closes_at == later
    assert [a.reason for a in stored.amendments] == ["the rival's"]


def test_opening_twice_at_once_opens_once(tmp_path: Path, clock: Clock) -> None:
    """The second opening finds the poll open: it answers as a retry does, with the
    first opening's event again, and changes nothing."""
    plain = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    setup = ProposalHandlers(plain, clock=clock).core()
    poll_id = make_poll(setup, make_consultation(setup, publish=True))
    store = RacingStore(plain, lambda p: p.open(clock() - timedelta(seconds=1)))
    core = ProposalHandlers(store, clock=clock).core()
    view, events = ok(core, OpenPoll(poll_id=poll_id, actor=ADDED))
    stored = store.poll(poll_id)
    assert stored is not None and stored.opened_at is not None
    assert store.attempts == 1  # the second look saw it open: no second write
    assert types(events) == ["poll.opened.v1"]
    assert datetime.fromisoformat(events[0]["payload"]["opened_at"]) == stored.opened_at
    assert datetime.fromisoformat(view["opened_at"]) == stored.opened_at
