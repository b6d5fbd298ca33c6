"""Proposals as cities run them: submitted by participants during the proposals step, up
to a number per person; published or rejected (with a public reason), then selected and
implemented, by the organisers only; reported by anyone, hidden by the moderators; listed
with filters, a text search and cursors; their Markdown served sanitised. The core is
driven through envelopes, on a SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.unit.helpers import Clock, ok, refused, send, service_db
from urne.contracts import Command
from urne.contracts.commands import (
    Actor,
    AddOrganiser,
    AddProposal,
    CreateConsultation,
    CreatePoll,
    GetConsultation,
    GetProposal,
    HideProposal,
    ImplementProposal,
    ListProposalReports,
    ListProposals,
    OpenPoll,
    PublishConsultation,
    PublishProposal,
    RejectProposal,
    ReportProposal,
    RunSchedule,
    SelectProposal,
    UnhideProposal,
    UpdateConsultation,
)
from urne.contracts.replies import ProposalStatus
from urne.contracts.steps import Step
from urne.counting import YesNoAbstainRules
from urne.messaging.kernel import ServiceCore
from urne.platform.errors import Conflict, Invalid
from urne.services.proposal import handlers
from urne.services.proposal.adapters.sqlite_store import SqliteProposalStore
from urne.services.proposal.domain import (
    PROPOSAL_MOVES,
    Consultation,
    Poll,
    Proposal,
    ProposalFilter,
    decode_cursor,
    encode_cursor,
    participation_ended,
)
from urne.services.proposal.handlers import ProposalHandlers
from urne.services.proposal.markdown import render

pytestmark = pytest.mark.unit

CREATOR = Actor(person_id="ada", role="organiser")
ADDED = Actor(person_id="cleo", role="organiser")
OTHER = Actor(person_id="bob", role="organiser")  # organises other consultations
ADMIN = Actor(person_id="root", role="admin")
AUTHOR = Actor(person_id="pat", role="participant")
READER = Actor(person_id="rita", role="participant")
ACTORS = {"creator": CREATOR, "added": ADDED, "other organiser": OTHER, "admin": ADMIN,
          "author": AUTHOR, "participant": READER}
MODERATORS = {"creator", "added", "admin"}
LIMIT = 3
RULES = YesNoAbstainRules(method="yes_no_abstain", question="Plant the trees?")


def calendar(now: datetime, opened: timedelta, lasting: timedelta = timedelta(days=7)
             ) -> tuple[Step, ...]:
    """A proposals step that started ``opened`` ago (negative: not yet) and a vote."""
    start = now - opened
    return (Step(kind="proposals", starts_at=start, ends_at=start + lasting),
            Step(kind="vote", starts_at=start + lasting + timedelta(days=1),
                 ends_at=start + lasting + timedelta(days=8)))


@pytest.fixture
def core(tmp_path: Path, clock: Clock) -> ServiceCore:
    store = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    return ProposalHandlers(store, clock=clock, max_proposals_per_person=LIMIT).core()


def consultation(core: ServiceCore, clock: Clock, publish: bool = True,
                 opened: timedelta | None = timedelta(days=1)) -> str:
    steps = () if opened is None else calendar(clock(), opened)
    cid = str(ok(core, CreateConsultation(title="Budget 2030", steps=steps,
                                          actor=CREATOR))[0]["id"])
    ok(core, AddOrganiser(consultation_id=cid, person_id=ADDED.person_id, actor=CREATOR))
    if publish:
        ok(core, PublishConsultation(consultation_id=cid, actor=CREATOR))
    return cid


def submit(core: ServiceCore, cid: str, actor: Actor = AUTHOR, **fields: Any) -> dict:
    return ok(core, AddProposal(consultation_id=cid, actor=actor,
                                **{"title": "Trees", **fields}))[0]


def seen(core: ServiceCore, pid: str, actor: Actor | None) -> bool:
    reply, _ = send(core, GetProposal(proposal_id=pid, actor=actor))
    assert reply["ok"] or reply["error"]["code"] == "proposal_not_found", reply
    return bool(reply["ok"])


def listed(core: ServiceCore, cid: str, actor: Actor | None = None, **query: Any) -> list[str]:
    """Every id a reader gets through the listing, following the cursors to the end."""
    ids: list[str] = []
    cursor = None
    while True:
        page = ok(core, ListProposals(consultation_id=cid, actor=actor, cursor=cursor,
                                      **query))[0]
        ids += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


# --- the status machine ---------------------------------------------------------------------

STATUSES: tuple[ProposalStatus, ...] = ("submitted", "published", "rejected", "selected",
                                        "implemented")
NOW = datetime(2030, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("start", STATUSES)
@pytest.mark.parametrize("to", [s for s in STATUSES if s != "submitted"])
def test_a_proposal_moves_one_way(start: ProposalStatus, to: ProposalStatus) -> None:
    p = Proposal("p", "c", "t", "", "a", NOW, status=start)
    allowed = {("submitted", "published"), ("submitted", "rejected"),
               ("published", "selected"), ("published", "rejected"),
               ("selected", "implemented")}
    assert ((start, to) in allowed) == (to in PROPOSAL_MOVES[start])
    reason = "Too costly" if to == "rejected" else None
    if (start, to) in allowed:
        moved = p.move(to, NOW, reason)
        assert (moved.status, moved.status_changed_at, moved.rejection_reason) == (
            to, NOW, reason)
    else:
        with pytest.raises(Conflict) as refusal:
            p.move(to, NOW, reason)
        assert refusal.value.code == f"proposal_{start}"


def test_a_rejection_and_only_a_rejection_gives_a_reason() -> None:
    p = Proposal("p", "c", "t", "", "a", NOW, status="submitted")
    with pytest.raises(ValueError):
        p.move("rejected", NOW)
    with pytest.raises(ValueError):
        p.move("published", NOW, "Why not")
    assert RejectProposal.model_fields["reason"].is_required()


def test_hiding_keeps_the_proposal_and_its_status() -> None:
    p = Proposal("p", "c", "t", "", "a", NOW, status="selected")
    hidden = p.hide("Insults", "ada", NOW)
    assert hidden.hidden and hidden.status == "selected" and hidden.moderation is not None
    with pytest.raises(Conflict) as again:
        hidden.hide("Again", "ada", NOW)
    assert again.value.code == "proposal_hidden"
    assert hidden.unhide() == p
    with pytest.raises(Conflict) as not_hidden:
        p.unhide()
    assert not_hidden.value.code == "proposal_not_hidden"


# --- submitting: the window and the limit ----------------------------------------------------


def test_participants_submit_during_the_proposals_step_only(
        core: ServiceCore, clock: Clock) -> None:
    open_now = consultation(core, clock)
    view = submit(core, open_now, category="parks", district="nord", estimated_cost=12_000,
                  body="Under *the* lime trees")
    assert (view["status"], view["author_id"], view["category"], view["district"],
            view["estimated_cost"]) == ("submitted", "pat", "parks", "nord", 12_000)
    assert view["body"] == "Under *the* lime trees"
    assert view["body_html"] == "<p>Under <em>the</em> lime trees</p>\n"
    for cid in (consultation(core, clock, opened=-timedelta(hours=1)),  # not yet
                consultation(core, clock, opened=timedelta(days=8)),  # over
                consultation(core, clock, opened=None)):  # no calendar
        error = refused(core, AddProposal(consultation_id=cid, title="Late", actor=AUTHOR))
        assert (error["status"], error["code"]) == (409, "proposals_closed")
        assert listed(core, cid, ADMIN) == []
    # A draft does not exist for them; its organisers add proposals to it all the same.
    draft = consultation(core, clock, publish=False)
    error = refused(core, AddProposal(consultation_id=draft, title="Early", actor=AUTHOR))
    assert (error["status"], error["code"]) == (404, "consultation_not_found")
    assert submit(core, draft, CREATOR)["status"] == "published"


def test_organisers_add_proposals_any_time_published_at_once(
        core: ServiceCore, clock: Clock) -> None:
    closed = consultation(core, clock, opened=timedelta(days=30))
    for actor in (CREATOR, ADDED, ADMIN):
        view = submit(core, closed, actor)
        assert (view["status"], view["author_id"]) == ("published", actor.person_id)
    # An organiser of other consultations is a participant here.
    error = refused(core, AddProposal(consultation_id=closed, title="Mine", actor=OTHER))
    assert error["code"] == "proposals_closed"


def test_a_person_submits_up_to_the_limit(core: ServiceCore, clock: Clock) -> None:
    cid = consultation(core, clock)
    for i in range(LIMIT):
        submit(core, cid, title=f"Idea {i}")
    error = refused(core, AddProposal(consultation_id=cid, title="One more", actor=AUTHOR))
    assert (error["status"], error["code"]) == (409, "proposal_limit_reached")
    mine = listed(core, cid, AUTHOR)
    assert len(mine) == LIMIT
    # Rejected ones still count; others, and the organisers, are not held back; another
    # consultation has its own count.
    ok(core, RejectProposal(proposal_id=mine[0], reason="Duplicate", actor=CREATOR))
    error = refused(core, AddProposal(consultation_id=cid, title="Instead", actor=AUTHOR))
    assert error["code"] == "proposal_limit_reached"
    submit(core, cid, READER)
    submit(core, cid, CREATOR)
    submit(core, cid, OTHER)
    submit(core, consultation(core, clock))


# --- who sees what, who may do what ----------------------------------------------------------


@dataclass
class World:
    core: ServiceCore
    cid: str
    proposals: dict[str, str]  # status -> id, each by AUTHOR

    def everything(self) -> Any:
        return ([ok(self.core, GetProposal(proposal_id=p, actor=ADMIN))[0]
                 for p in self.proposals.values()],
                ok(self.core, ListProposals(consultation_id=self.cid, actor=ADMIN))[0])


@pytest.fixture
def world(core: ServiceCore, clock: Clock) -> World:
    cid = consultation(core, clock)
    made = {}
    for status in ("submitted", "published", "selected"):
        pid = submit(core, cid, title=status)["id"]
        if status != "submitted":
            ok(core, PublishProposal(proposal_id=pid, actor=CREATOR))
        if status == "selected":
            ok(core, SelectProposal(proposal_id=pid, actor=CREATOR))
        made[status] = pid
    return World(core, cid, made)


# action -> (the command; its status after it; the proposals (by status) it applies to)
ACTIONS: dict[str, tuple[Callable[[str, Actor], Command], str, set[str]]] = {
    "publish": (lambda p, a: PublishProposal(proposal_id=p, actor=a), "published",
                {"submitted"}),
    "reject": (lambda p, a: RejectProposal(proposal_id=p, reason="Not feasible", actor=a),
               "rejected", {"submitted", "published"}),
    "select": (lambda p, a: SelectProposal(proposal_id=p, actor=a), "selected",
               {"published"}),
    "implement": (lambda p, a: ImplementProposal(proposal_id=p, actor=a), "implemented",
                  {"selected"}),
    "hide": (lambda p, a: HideProposal(proposal_id=p, reason="Insults", actor=a), "", set()),
}


@pytest.mark.parametrize("who", ACTORS)
@pytest.mark.parametrize("proposal", ["submitted", "published", "selected"])
@pytest.mark.parametrize("action", ACTIONS)
def test_only_the_organisers_move_and_moderate_a_proposal(
        world: World, action: str, proposal: str, who: str) -> None:
    make, status, applies_to = ACTIONS[action]
    pid = world.proposals[proposal]
    before = world.everything()
    reply, _ = send(world.core, make(pid, ACTORS[who]))
    if who in MODERATORS:
        if action == "hide":
            assert reply["ok"] and reply["data"]["hidden"] is True
            assert reply["data"]["moderation"]["reason"] == "Insults"
            assert reply["data"]["status"] == proposal
        elif proposal in applies_to:
            assert reply["ok"] and reply["data"]["status"] == status, reply
        else:
            assert (reply["error"]["status"], reply["error"]["code"]) == (
                409, f"proposal_{proposal}")
        return
    # Anyone else: a submitted proposal does not exist for them (but for its author);
    # what they see they may not change.
    error = reply["error"]
    if proposal == "submitted" and who != "author":
        assert (error["status"], error["code"]) == (404, "proposal_not_found")
    else:
        assert (error["status"], error["code"]) == (403, "not_an_organiser_of_this_consultation")
    assert world.everything() == before


@pytest.mark.parametrize("who", [*ACTORS, "anonymous"])
def test_a_submitted_proposal_is_seen_by_its_author_and_the_organisers(
        world: World, who: str) -> None:
    actor = ACTORS.get(who)
    sees_all = who in MODERATORS or who == "author"
    assert seen(world.core, world.proposals["submitted"], actor) is sees_all
    assert seen(world.core, world.proposals["published"], actor)
    shown = listed(world.core, world.cid, actor)
    page = ok(world.core, GetConsultation(consultation_id=world.cid, actor=actor))[0]
    assert [p["id"] for p in page["proposals"]] == shown
    public = [world.proposals["published"], world.proposals["selected"]]
    assert sorted(shown) == sorted([world.proposals["submitted"], *public] if sees_all
                                   else public)
    # Moderation details are the moderators'.
    view = ok(world.core, GetProposal(proposal_id=world.proposals["published"], actor=actor))[0]
    assert (view["report_count"] is not None) is (who in MODERATORS)


def test_a_rejection_is_public_with_its_reason(world: World) -> None:
    pid = world.proposals["submitted"]
    error = refused(world.core, PublishProposal(proposal_id=pid, actor=OTHER))
    assert error["code"] == "proposal_not_found"
    rejected = ok(world.core, RejectProposal(proposal_id=pid, reason="Outside the city's remit",
                                             actor=ADDED))[0]
    assert rejected["status_changed_at"] is not None
    for actor in (None, READER):
        view = ok(world.core, GetProposal(proposal_id=pid, actor=actor))[0]
        assert (view["status"], view["rejection_reason"]) == (
            "rejected", "Outside the city's remit")
    error = refused(world.core, PublishProposal(proposal_id=pid, actor=CREATOR))
    assert (error["status"], error["code"]) == (409, "proposal_rejected")


# --- reports and hiding ------------------------------------------------------------------------


def test_anyone_who_sees_it_reports_a_proposal_once(world: World, clock: Clock) -> None:
    pid = world.proposals["published"]
    report = ok(world.core, ReportProposal(proposal_id=pid, reason="Advertising",
                                           actor=READER))[0]
    assert (report["reporter_id"], report["reason"]) == ("rita", "Advertising")
    error = refused(world.core, ReportProposal(proposal_id=pid, reason="Really", actor=READER))
    assert (error["status"], error["code"]) == (409, "proposal_already_reported")
    clock.advance(seconds=1)
    ok(world.core, ReportProposal(proposal_id=pid, reason="Off topic", actor=OTHER))
    # A submitted proposal does not exist for them: nothing to report.
    error = refused(world.core, ReportProposal(proposal_id=world.proposals["submitted"],
                                               reason="x", actor=READER))
    assert error["code"] == "proposal_not_found"
    # The moderators read the reports; nobody else does.
    for actor in (CREATOR, ADMIN):
        reports = ok(world.core, ListProposalReports(proposal_id=pid, actor=actor))[0]["items"]
        assert [(r["reporter_id"], r["reason"]) for r in reports] == [
            ("rita", "Advertising"), ("bob", "Off topic")]
        assert ok(world.core, GetProposal(proposal_id=pid, actor=actor))[0]["report_count"] == 2
        page = ok(world.core, ListProposals(consultation_id=world.cid, actor=actor))[0]
        assert {p["id"]: p["report_count"] for p in page["items"]}[pid] == 2
    for actor in (READER, OTHER, AUTHOR):
        error = refused(world.core, ListProposalReports(proposal_id=pid, actor=actor))
        assert error["code"] == "not_an_organiser_of_this_consultation"
        assert ok(world.core, GetProposal(proposal_id=pid, actor=actor))[0]["report_count"] is None


def test_a_hidden_proposal_is_kept_but_gone_for_the_public(world: World) -> None:
    pid = world.proposals["published"]
    ok(world.core, ReportProposal(proposal_id=pid, reason="Insults", actor=READER))
    hidden = ok(world.core, HideProposal(proposal_id=pid, reason="Insults (2 reports)",
                                         actor=ADDED))[0]
    assert hidden["moderation"]["hidden_by"] == "cleo"
    for actor in (None, READER, OTHER):
        assert not seen(world.core, pid, actor)
        assert pid not in listed(world.core, world.cid, actor)
        error = refused(world.core, ReportProposal(proposal_id=pid, reason="x", actor=READER))
        assert error["code"] == "proposal_not_found"
    # Its author still sees it, hidden, without the moderators' reason.
    view = ok(world.core, GetProposal(proposal_id=pid, actor=AUTHOR))[0]
    assert (view["hidden"], view["moderation"], view["status"]) == (True, None, "published")
    # The moderators see it, why, and may still move it.
    view = ok(world.core, GetProposal(proposal_id=pid, actor=ADMIN))[0]
    assert view["moderation"]["reason"] == "Insults (2 reports)"
    assert pid in listed(world.core, world.cid, CREATOR)
    error = refused(world.core, HideProposal(proposal_id=pid, reason="Again", actor=CREATOR))
    assert (error["status"], error["code"]) == (409, "proposal_hidden")
    ok(world.core, UnhideProposal(proposal_id=pid, actor=CREATOR))
    assert seen(world.core, pid, None)
    error = refused(world.core, UnhideProposal(proposal_id=pid, actor=CREATOR))
    assert (error["status"], error["code"]) == (409, "proposal_not_hidden")


# --- listing: filters, search, pages -----------------------------------------------------------


@pytest.fixture
def catalogue(core: ServiceCore, clock: Clock) -> tuple[str, dict[str, str]]:
    cid = consultation(core, clock)
    made = {}
    for name, fields in {
        "lane": {"title": "Cycle lane", "category": "mobility", "district": "nord"},
        "bench": {"title": "Benches", "body": "Along the ÉTANG", "category": "parks",
                  "district": "nord"},
        "trees": {"title": "Trees", "category": "parks", "district": "sud"},
        "bus": {"title": "Night bus", "category": "mobility"},
        "pool": {"title": "Swimming pool", "category": "sport", "district": "sud"},
    }.items():
        clock.advance(seconds=1)
        made[name] = submit(core, cid, CREATOR, **fields)["id"]
    ok(core, RejectProposal(proposal_id=made["pool"], reason="Too costly", actor=CREATOR))
    return cid, made


@pytest.mark.parametrize(("query", "expected"), [
    ({}, ["lane", "bench", "trees", "bus", "pool"]),
    ({"category": "parks"}, ["bench", "trees"]),
    ({"district": "nord"}, ["lane", "bench"]),
    ({"category": "mobility", "district": "nord"}, ["lane"]),
    ({"status": "rejected"}, ["pool"]),
    ({"status": "published", "district": "sud"}, ["trees"]),
    ({"q": "BUS"}, ["bus"]),
    ({"q": "étang"}, ["bench"]),  # in the body, whatever the case, accents included
    ({"q": "e"}, ["lane", "bench", "trees"]),
    ({"q": "nothing like it"}, []),
    ({"category": "culture"}, []),
])
def test_filters_and_search(core: ServiceCore, catalogue: tuple[str, dict[str, str]],
                            query: dict[str, str], expected: list[str]) -> None:
    cid, made = catalogue
    for limit in (1, 2, 20):
        assert listed(core, cid, None, limit=limit, **query) == [made[n] for n in expected]


def test_pages_follow_each_other_to_the_end(core: ServiceCore,
                                            catalogue: tuple[str, dict[str, str]]) -> None:
    cid, made = catalogue
    first = ok(core, ListProposals(consultation_id=cid, limit=2))[0]
    assert [p["id"] for p in first["items"]] == [made["lane"], made["bench"]]
    second = ok(core, ListProposals(consultation_id=cid, limit=2,
                                    cursor=first["next_cursor"]))[0]
    assert [p["id"] for p in second["items"]] == [made["trees"], made["bus"]]
    last = ok(core, ListProposals(consultation_id=cid, limit=2,
                                  cursor=second["next_cursor"]))[0]
    assert ([p["id"] for p in last["items"]], last["next_cursor"]) == ([made["pool"]], None)
    # Exactly a page's worth left: no empty page after it.
    assert ok(core, ListProposals(consultation_id=cid, limit=5))[0]["next_cursor"] is None


def test_a_page_reads_a_bounded_number_of_rows(
        core: ServiceCore, catalogue: tuple[str, dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    cid, made = catalogue
    monkeypatch.setattr(handlers, "SCAN_LIMIT", 2)
    page = ok(core, ListProposals(consultation_id=cid, q="pool"))[0]
    assert page["items"] == [] and page["next_cursor"]  # stopped after 2 rows: go on
    assert listed(core, cid, q="pool") == [made["pool"]]


@pytest.mark.parametrize("cursor", ["x", "bm90IGEgY3Vyc29y", encode_cursor((NOW, "")),
                                    "MjAzMC0wMy0wMVQwMDowMDowMHxw"])  # a naive time
def test_a_cursor_not_made_by_the_listing_is_refused(
        core: ServiceCore, clock: Clock, cursor: str) -> None:
    cid = consultation(core, clock)
    error = refused(core, ListProposals(consultation_id=cid, cursor=cursor))
    assert (error["status"], error["code"]) == (422, "invalid_cursor")


def test_cursors_round_trip() -> None:
    key = (datetime(2030, 3, 1, 12, 30, 15, 123000, tzinfo=UTC), "f" * 32)
    assert decode_cursor(encode_cursor(key)) == key
    with pytest.raises(Invalid):
        decode_cursor("%%%")


def test_the_filter_is_pure() -> None:
    p = Proposal("p", "c", "Jardin", "Près de l'Œuvre", "a", NOW, category="parks")
    assert ProposalFilter(q="œuvre").matches(p) and ProposalFilter(q="JARDIN").matches(p)
    assert not ProposalFilter(category="parks", district="nord").matches(p)


def test_a_consultation_shows_its_first_proposals(
        core: ServiceCore, catalogue: tuple[str, dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    cid, made = catalogue
    monkeypatch.setattr(handlers, "EMBEDDED_PROPOSALS", 2)
    page = ok(core, GetConsultation(consultation_id=cid))[0]
    assert [p["id"] for p in page["proposals"]] == [made["lane"], made["bench"]]


# --- Markdown, sanitised on the way out --------------------------------------------------------


@pytest.mark.parametrize(("markdown", "present", "absent"), [
    ("Hello <script>alert(1)</script> **you**", ["&lt;script&gt;", "<strong>you</strong>"],
     ["<script"]),
    ("[click](javascript:alert(1))", [], ["<a", "href"]),  # left as inert text
    ("<javascript:alert(1)>", [], ["<a", "href"]),
    ("[files](ftp://example.org/x)", ["<a rel="], ["ftp:"]),  # markdown-it's, not ammonia's
    ("<img src=x onerror=alert(1)>", ["&lt;img"], ["<img"]),
    ("[site](https://example.org)",
     ['<a href="https://example.org" rel="nofollow noopener noreferrer">site</a>'], []),
    ("![tracker](https://example.org/p.gif)", [], ["<img"]),
    ("| a | b |\n|---|---|\n| 1 | 2 |", ["<table>", "<td>1</td>"], []),
    ("~~old~~ `code`", ["<s>old</s>", "<code>code</code>"], []),
])
def test_markdown_is_rendered_and_sanitised(markdown: str, present: list[str],
                                            absent: list[str]) -> None:
    html = render(markdown)
    for fragment in present:
        assert fragment in html, html
    for fragment in absent:
        assert fragment not in html, html


def test_the_body_is_stored_as_written_and_served_sanitised(
        core: ServiceCore, clock: Clock) -> None:
    cid = consultation(core, clock)
    body = "# Idea\n\n<script>steal()</script>\n\n- one\n- two"
    pid = submit(core, cid, body=body)["id"]
    view = ok(core, GetProposal(proposal_id=pid, actor=CREATOR))[0]
    assert view["body"] == body
    assert "<script" not in view["body_html"] and "<h1>Idea</h1>" in view["body_html"]


# --- racing organisers -------------------------------------------------------------------------


class RacingStore(SqliteProposalStore):
    """Just before the handler's compare-and-set, another organiser's change lands."""

    def __init__(self, store: SqliteProposalStore, rival: Callable[[Proposal], Proposal]):
        super().__init__(store.db)
        self.rival: Callable[[Proposal], Proposal] | None = rival

    def replace_proposal(self, p: Proposal, expected: Proposal) -> bool:
        if self.rival is not None:
            rival, self.rival = self.rival, None
            assert super().replace_proposal(rival(expected), expected)
        return super().replace_proposal(p, expected)


@pytest.mark.parametrize(("command", "rival", "outcome"), [
    # Publishing while another organiser rejects: the rejection stands.
    (lambda pid: PublishProposal(proposal_id=pid, actor=CREATOR),
     lambda p: p.move("rejected", NOW, "No"), (409, "proposal_rejected")),
    # Rejecting while another publishes: decided again on the published one, rejected.
    (lambda pid: RejectProposal(proposal_id=pid, reason="Unfeasible", actor=CREATOR),
     lambda p: p.move("published", NOW), "rejected"),
    # Hiding while another hides: once.
    (lambda pid: HideProposal(proposal_id=pid, reason="Spam", actor=CREATOR),
     lambda p: p.hide("Ads", "cleo", NOW), (409, "proposal_hidden")),
], ids=["publish-vs-reject", "reject-vs-publish", "hide-vs-hide"])
def test_racing_organisers_one_change_at_a_time(
        tmp_path: Path, clock: Clock, command: Callable[[str], Command],
        rival: Callable[[Proposal], Proposal], outcome: str | tuple[int, str]) -> None:
    plain = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    setup = ProposalHandlers(plain, clock=clock).core()
    cid = consultation(setup, clock)
    pid = submit(setup, cid)["id"]
    core = ProposalHandlers(RacingStore(plain, rival), clock=clock).core()
    if isinstance(outcome, tuple):
        error = refused(core, command(pid))
        assert (error["status"], error["code"]) == outcome
    else:
        assert ok(core, command(pid))[0]["status"] == outcome


# --- retention ---------------------------------------------------------------------------------


def test_participation_ends_with_the_last_step_or_poll() -> None:
    steps = calendar(NOW, timedelta(days=1))  # the vote step ends 14 days from NOW
    c = Consultation("c", "t", "", "ada", NOW, steps=steps)
    closed = Poll("p1", "c", None, RULES, status="closed", closed_at=NOW + timedelta(days=20))
    assert participation_ended(c, []) == NOW + timedelta(days=14)
    assert participation_ended(c, [closed]) == NOW + timedelta(days=20)
    assert participation_ended(Consultation("c", "t", "", "ada", NOW), [closed]) == (
        NOW + timedelta(days=20))
    assert participation_ended(Consultation("c", "t", "", "ada", NOW), []) is None
    # A poll open, or a draft scheduled to open, may still bring people; a draft with no
    # schedule does not hold the end back.
    assert participation_ended(c, [closed, Poll("p2", "c", None, RULES, status="open")]) is None
    scheduled = Poll("p2", "c", None, RULES, opens_at=NOW + timedelta(days=400))
    assert participation_ended(c, [closed, scheduled]) is None
    assert participation_ended(c, [closed, Poll("p2", "c", None, RULES)]) == (
        NOW + timedelta(days=20))


def test_participation_is_forgotten_a_year_after_the_consultation_ended(
        world: World, core: ServiceCore, clock: Clock) -> None:
    """URNE_PARTICIPATION_DAYS (365) after a consultation's last step ended, the
    schedule's run forgets who took part: its proposals stay, its archive, without their
    authors, and its reports go. A consultation with a poll still open, or with nothing
    ended (no step, no poll closed), keeps them."""
    def authors(cid: str) -> list[str]:
        page = ok(core, ListProposals(consultation_id=cid, actor=ADMIN))[0]
        return [p["author_id"] for p in page["items"]]

    def reports(pid: str) -> list[str]:
        items = ok(core, ListProposalReports(proposal_id=pid, actor=ADMIN))[0]["items"]
        return [r["reporter_id"] for r in items]

    ok(core, ReportProposal(proposal_id=world.proposals["published"], reason="Advertising",
                            actor=READER))
    undated = consultation(core, clock, opened=None)
    submit(core, undated, CREATOR)
    running = consultation(core, clock)
    submit(core, running)
    poll = ok(core, CreatePoll(consultation_id=running, rules=RULES, actor=CREATOR))[0]["id"]
    ok(core, OpenPoll(poll_id=poll, actor=CREATOR))
    before = world.everything()
    ok(core, RunSchedule())
    # The vote step of calendar() ends 14 days from now: a minute short of a year after.
    clock.advance(days=14 + 365, seconds=-60)
    ok(core, RunSchedule())
    assert authors(world.cid) == ["pat"] * 3 and reports(world.proposals["published"]) == ["rita"]
    clock.advance(minutes=11)  # the next purge, the year past
    ok(core, RunSchedule())
    assert authors(world.cid) == ["", "", ""] and reports(world.proposals["published"]) == []
    after = world.everything()
    for view in (*after[0], *after[1]["items"]):
        assert view["author_id"] == ""
    for view in (*before[0], *before[1]["items"]):
        view.update(author_id="", report_count=0)
    assert after[0] == before[0]  # titles, bodies, statuses: all else stays
    assert [p["id"] for p in after[1]["items"]] == [p["id"] for p in before[1]["items"]]
    assert authors(undated) == ["ada"] and authors(running) == ["pat"]
    # Again, later: nothing else changes.
    clock.advance(minutes=11)
    ok(core, RunSchedule())
    assert world.everything() == after and authors(running) == ["pat"]
    # Its organisers give it a new proposals step, and someone takes part: that is
    # forgotten in turn, a year after the new step ended, and not before.
    ok(core, UpdateConsultation(consultation_id=world.cid, actor=CREATOR,
                                steps=calendar(clock(), timedelta(days=1))[:1]))
    submit(core, world.cid, READER)
    clock.advance(days=6 + 365, minutes=-1)  # the new step ends 6 days from now
    ok(core, RunSchedule())
    assert authors(world.cid) == ["", "", "", "rita"]
    clock.advance(minutes=11)
    ok(core, RunSchedule())
    assert authors(world.cid) == ["", "", "", ""]
