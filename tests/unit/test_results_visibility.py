"""Results visibility per poll: after the close (the default), embargoed until an
organiser publishes, or live. The tally enforces it on every query that shows anything
about the ballots; the proposal service freezes it at opening and moves an embargoed
poll to ``published`` when an organiser publishes it. The electorate (open, the default,
or census) is a setting of the same kind: set beside the rules, frozen with them at
opening and carried by ``poll.opened``."""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.helpers import Clock, deliver, ok, refused, service_db, types
from tests.unit.test_tally import (
    BALLOTS,
    POLL,
    RULES,
    Tally,
    ballot,
    expected_entries,
    make_tally,
    opened,
    sealed,
)
from urne.contracts import Event, wrap
from urne.contracts.commands import (
    Actor,
    ClosePoll,
    CreateConsultation,
    CreatePoll,
    GetLiveResult,
    GetPoll,
    GetRecord,
    GetRecordLines,
    GetResult,
    OpenPoll,
    ProveInclusion,
    PublishConsultation,
    PublishPoll,
    RunSchedule,
    UpdatePoll,
)
from urne.contracts.events import PollOpened, PollResultReleased, ResultPublished
from urne.contracts.fields import Electorate, ResultsVisibility
from urne.crypto.keys import SigningKey
from urne.messaging.kernel import ServiceCore
from urne.services.proposal.adapters.sqlite_store import SqliteProposalStore
from urne.services.proposal.handlers import ProposalHandlers

pytestmark = pytest.mark.unit

RELEASED_AT = datetime(2025, 3, 2, 9, 0, tzinfo=UTC)
SHOWING = (GetResult(poll_id=POLL), GetRecord(poll_id=POLL), GetRecordLines(poll_id=POLL),
           ProveInclusion(poll_id=POLL, tracker="TA1"))


@pytest.fixture
def tally(tmp_path: Path, tally_key: SigningKey, clock: Clock) -> Tally:
    return make_tally(tmp_path, tally_key, clock)


def opened_as(visibility: ResultsVisibility, poll_id: str = POLL) -> PollOpened:
    return opened(poll_id).model_copy(update={"results_visibility": visibility})


def released(poll_id: str = POLL) -> PollResultReleased:
    return PollResultReleased(poll_id=poll_id, released_at=RELEASED_AT)


def codes(tally: Tally) -> set[tuple[str, int]]:
    """What every query that shows the ballots answers, as (code, status)."""
    return {(e["code"], e["status"]) for e in (refused(tally.core, q) for q in SHOWING)}


def shown(tally: Tally) -> dict:
    """Every query that shows the ballots answers; the signed result."""
    record = ok(tally.core, GetRecord(poll_id=POLL))[0]
    assert record["entries"] == expected_entries()
    assert ok(tally.core, ProveInclusion(poll_id=POLL, tracker="TA1"))[0]["index"] == 0
    return ok(tally.core, GetResult(poll_id=POLL))[0]


# --- the tally: embargo --------------------------------------------------------------------


def test_after_close_is_the_default_and_shows_the_result_once_signed(tally: Tally) -> None:
    assert opened().results_visibility == "after_close"
    tally.feed(opened(), *BALLOTS)
    assert codes(tally) == {("result_not_published", 409)}
    assert types(tally.feed(sealed(4))) == ["result.published.v1"]
    shown(tally)


def test_an_embargoed_result_is_signed_at_close_and_shown_only_once_released(
        tally: Tally, clock: Clock) -> None:
    tally.feed(opened_as("embargoed"), *BALLOTS)
    assert codes(tally) == {("result_embargoed", 409)}  # before signing: the same answer
    signed_at = clock()
    events = tally.feed(sealed(4))
    # Signed at the close, and announced as every signed result is...
    assert types(events) == ["result.published.v1"]
    assert tally.store.result(POLL) is not None
    # ...but nothing about the ballots is shown: not the result, the record or a proof.
    assert codes(tally) == {("result_embargoed", 409)}
    error = refused(tally.core, GetLiveResult(poll_id=POLL))
    assert (error["code"], error["status"]) == ("results_hidden", 409)

    clock.advance(hours=5)
    assert tally.feed(released()) == []  # releasing signs nothing and announces nothing
    signed = shown(tally)
    assert signed["result"]["computed_at"] == signed_at.isoformat()  # the one signed at close
    assert tally.feed(released(), sealed(4), opened_as("embargoed")) == []  # redelivered
    assert shown(tally) == signed


def test_a_release_before_the_seal_is_kept(tally: Tally) -> None:
    tally.feed(opened_as("embargoed"), released(), *BALLOTS)
    assert codes(tally) == {("result_not_published", 409)}  # released, not signed yet
    assert types(tally.feed(sealed(4))) == ["result.published.v1"]
    shown(tally)


def test_a_release_before_the_poll_is_known_is_kept(tally: Tally) -> None:
    tally.feed(released())  # the first the tally hears of this poll
    assert tally.store.sheet(POLL).released_at == RELEASED_AT
    assert codes(tally) == {("result_not_published", 409)}
    tally.feed(sealed(4), *BALLOTS, opened_as("embargoed"))
    shown(tally)


def test_an_embargo_concerns_its_poll_only(tally: Tally) -> None:
    other = "poll-2"
    tally.feed(opened_as("embargoed"), opened(other), *BALLOTS, sealed(4),
               ballot("z", 1, "no", poll_id=other), sealed(1, other))
    assert codes(tally) == {("result_embargoed", 409)}
    assert ok(tally.core, GetResult(poll_id=other))[0]["result"]["record"]["size"] == 1
    tally.feed(released(other))  # releasing another poll lifts nothing here
    assert codes(tally) == {("result_embargoed", 409)}


def test_unknown_polls_are_404_whatever_the_visibility(tally: Tally) -> None:
    for query in (GetResult(poll_id="nope"), GetRecord(poll_id="nope"),
                  ProveInclusion(poll_id="nope", tracker="T"), GetLiveResult(poll_id="nope")):
        error = refused(tally.core, query)
        assert (error["code"], error["status"]) == ("poll_not_found", 404)


def _final_state(events: list[Event], key: SigningKey) -> tuple[list[dict], set[str]]:
    """(the result.published events, what the showing queries answered) after ``events``."""
    with tempfile.TemporaryDirectory() as d:
        t = make_tally(Path(d), key)
        out = t.feed(*events)
        answers = set()
        for q in SHOWING:
            reply, _ = t.core.handle(wrap(q, "test"))
            answers.add("ok" if reply["ok"] else reply["error"]["code"])
        t.store.db.close()
    return [e for e in out if e["type"] == "result.published.v1"], answers


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_order_of_opened_ballots_seal_and_release(order: tuple[int, ...],
                                                        tally_key: SigningKey) -> None:
    groups: list[list[Event]] = [[opened_as("embargoed")], list(BALLOTS), [sealed(4)],
                                 [released()]]
    published, answers = _final_state([e for i in order for e in groups[i]], tally_key)
    assert len(published) == 1 and answers == {"ok"}


@settings(max_examples=25, deadline=None)
@given(events=st.permutations([opened_as("embargoed"), *BALLOTS, sealed(4)]),
       release=st.booleans(), at=st.integers(0, 6),
       redelivered=st.lists(st.sampled_from([opened_as("embargoed"), *BALLOTS, sealed(4),
                                             released()]), max_size=3))
def test_any_interleaving_signs_once_and_shows_only_if_released(
        events: list[Event], release: bool, at: int, redelivered: list[Event],
        tally_key: SigningKey) -> None:
    sequence = list(events)
    if release:
        sequence.insert(at, released())
    sequence += redelivered
    published, answers = _final_state(sequence, tally_key)
    assert len(published) == 1
    assert published[0]["payload"]["ballots_counted"] == 3
    lifted = release or any(isinstance(e, PollResultReleased) for e in redelivered)
    assert answers == ({"ok"} if lifted else {"result_embargoed"})


# --- the tally: live counts ----------------------------------------------------------------


def live(tally: Tally) -> dict:
    return ok(tally.core, GetLiveResult(poll_id=POLL))[0]


def test_live_counts_follow_the_ballots_and_revotes(tally: Tally, clock: Clock) -> None:
    tally.feed(opened_as("live"))
    first = live(tally)
    assert (first["ballots"], first["ballots_received"]) == (0, 0)
    assert first["tally"]["counts"] == {"yes": 0, "no": 0, "abstain": 0}
    assert first["as_of"] == clock().isoformat().replace("+00:00", "Z")

    tally.feed(ballot("a", 1, "yes"), ballot("b", 1, "yes"))
    clock.advance(seconds=1)
    running = live(tally)
    assert running["tally"]["counts"] == {"yes": 2, "no": 0, "abstain": 0}
    assert running["tally"]["outcome"] == "adopted"

    tally.feed(ballot("b", 2, "no"))  # b changes their mind: their first ballot goes
    clock.advance(seconds=1)
    running = live(tally)
    assert running["tally"]["counts"] == {"yes": 1, "no": 1, "abstain": 0}
    assert (running["ballots"], running["ballots_received"]) == (2, 3)
    assert running["tally"]["outcome"] == "tied"

    # The live poll's result is signed and shown after the close, as after_close's.
    tally.feed(ballot("c", 1, "yes"))
    assert types(tally.feed(sealed(4))) == ["result.published.v1"]
    assert shown(tally)["result"]["tally"]["counts"] == {"yes": 2, "no": 1, "abstain": 0}
    clock.advance(seconds=1)
    assert live(tally)["tally"] == shown(tally)["result"]["tally"]


def test_live_counts_are_recounted_at_most_once_a_second(tally: Tally, clock: Clock) -> None:
    tally.feed(opened_as("live"), ballot("a", 1, "yes"))
    before = live(tally)
    tally.feed(ballot("b", 1, "no"))
    clock.advance(milliseconds=900)
    assert live(tally) == before  # the last count, with its own as_of
    clock.advance(milliseconds=100)
    after = live(tally)
    assert after["tally"]["counts"]["no"] == 1 and after["as_of"] > before["as_of"]


@pytest.mark.parametrize("visibility", ["after_close", "embargoed"])
def test_live_counts_are_hidden_unless_the_poll_is_live(tally: Tally,
                                                        visibility: ResultsVisibility) -> None:
    tally.feed(opened_as(visibility), *BALLOTS)
    error = refused(tally.core, GetLiveResult(poll_id=POLL))
    assert (error["code"], error["status"]) == ("results_hidden", 409)
    tally.feed(sealed(4), released())  # still hidden once signed and released
    assert refused(tally.core, GetLiveResult(poll_id=POLL))["code"] == "results_hidden"


def test_live_counts_need_the_rules(tally: Tally) -> None:
    tally.feed(*BALLOTS, sealed(4))  # the seal and ballots before poll.opened
    assert refused(tally.core, GetLiveResult(poll_id=POLL))["code"] == "poll_not_found"


# --- the proposal service: the setting, frozen, and publication ----------------------------

ORG = Actor(person_id="org", role="organiser")
OTHER = Actor(person_id="other", role="organiser")


@dataclass
class Polls:
    core: ServiceCore
    clock: Clock

    def poll(self, visibility: ResultsVisibility | None = None, **fields: Any) -> str:
        cid = ok(self.core, CreateConsultation(title="Budget 2027", actor=ORG))[0]["id"]
        ok(self.core, PublishConsultation(consultation_id=cid, actor=ORG))
        extra = {"results_visibility": visibility} if visibility else {}
        return str(ok(self.core, CreatePoll(consultation_id=cid, rules=RULES, actor=ORG,
                                            **extra, **fields))[0]["id"])

    def get(self, poll_id: str) -> dict:
        return ok(self.core, GetPoll(poll_id=poll_id, actor=ORG))[0]

    def signed(self, poll_id: str) -> list[dict]:
        return deliver(self.core, ResultPublished(poll_id=poll_id, record_root="ab" * 32,
                                                  ballots_counted=3, published_at=self.clock()))


@pytest.fixture
def polls(tmp_path: Path, clock: Clock) -> Polls:
    store = SqliteProposalStore(service_db(tmp_path / "proposal.db", "proposal"))
    return Polls(ProposalHandlers(store, clock=clock).core(), clock)


def test_the_setting_defaults_to_after_close_and_is_frozen_at_opening(polls: Polls) -> None:
    assert polls.get(polls.poll())["results_visibility"] == "after_close"
    pid = polls.poll("live")
    assert polls.get(pid)["results_visibility"] == "live"
    # Editing the rules of a draft leaves the setting unless it is given.
    assert ok(polls.core, UpdatePoll(poll_id=pid, rules=RULES, actor=ORG)
              )[0]["results_visibility"] == "live"
    assert ok(polls.core, UpdatePoll(poll_id=pid, rules=RULES, results_visibility="embargoed",
                                     actor=ORG))[0]["results_visibility"] == "embargoed"
    _, events = ok(polls.core, OpenPoll(poll_id=pid, actor=ORG))
    assert types(events) == ["poll.opened.v1"]
    assert events[0]["payload"]["results_visibility"] == "embargoed"
    for visibility in ("after_close", "live", None):
        error = refused(polls.core, UpdatePoll(poll_id=pid, rules=RULES, actor=ORG,
                                               results_visibility=visibility))
        assert error["code"] == "poll_rules_frozen"
    assert polls.get(pid)["results_visibility"] == "embargoed"


def test_the_electorate_defaults_to_open(polls: Polls) -> None:
    pid = polls.poll()
    assert polls.get(pid)["electorate"] == "open"
    view, events = ok(polls.core, OpenPoll(poll_id=pid, actor=ORG))
    assert view["electorate"] == "open"
    assert types(events) == ["poll.opened.v1"]
    assert events[0]["payload"]["electorate"] == "open"
    # An event from before the setting, without it: open, as its polls were.
    payload = {k: v for k, v in events[0]["payload"].items() if k != "electorate"}
    assert PollOpened.model_validate(payload).electorate == "open"


def test_the_electorate_is_set_at_creation_changed_while_a_draft_and_frozen_at_opening(
        polls: Polls) -> None:
    pid = polls.poll(electorate="census")
    assert polls.get(pid)["electorate"] == "census"
    # Editing the rules, or another setting, leaves it unless it is given.
    edited = ok(polls.core, UpdatePoll(poll_id=pid, rules=RULES, results_visibility="live",
                                       actor=ORG))[0]
    assert (edited["electorate"], edited["results_visibility"]) == ("census", "live")
    assert ok(polls.core, UpdatePoll(poll_id=pid, rules=RULES, electorate="open", actor=ORG)
              )[0]["electorate"] == "open"
    edited = ok(polls.core, UpdatePoll(poll_id=pid, rules=RULES, electorate="census",
                                       actor=ORG))[0]
    assert (edited["electorate"], edited["results_visibility"]) == ("census", "live")
    view, events = ok(polls.core, OpenPoll(poll_id=pid, actor=ORG))
    assert view["electorate"] == "census"
    assert types(events) == ["poll.opened.v1"]
    assert events[0]["payload"]["electorate"] == "census"
    for electorate in ("open", "census", None):
        error = refused(polls.core, UpdatePoll(poll_id=pid, rules=RULES, actor=ORG,
                                               electorate=electorate))
        assert (error["code"], error["status"]) == ("poll_rules_frozen", 409)
    assert polls.get(pid)["electorate"] == "census"
    # Opened again (a retry whose answer was lost): the same event, from the stored poll.
    polls.clock.advance(minutes=5)
    again, resent = ok(polls.core, OpenPoll(poll_id=pid, actor=ORG))
    assert again["electorate"] == "census"
    assert types(resent) == ["poll.opened.v1"]
    assert resent[0]["payload"] == events[0]["payload"]
    assert resent[0]["payload"]["electorate"] == "census"


@pytest.mark.parametrize("electorate", ["open", "census"])
def test_a_scheduled_opening_carries_the_electorate(polls: Polls, clock: Clock,
                                                    electorate: Electorate) -> None:
    pid = polls.poll(electorate=electorate, opens_at=clock() + timedelta(hours=1))
    clock.advance(hours=1)
    ran, events = ok(polls.core, RunSchedule())
    assert ran["opened"] == [pid] and types(events) == ["poll.opened.v1"]
    assert events[0]["payload"]["electorate"] == electorate
    assert polls.get(pid)["electorate"] == electorate


def test_an_organiser_publishes_an_embargoed_result_after_the_close(
        polls: Polls, clock: Clock) -> None:
    pid = polls.poll("embargoed")
    error = refused(polls.core, PublishPoll(poll_id=pid, actor=ORG))
    assert (error["code"], error["status"]) == ("poll_draft", 409)
    ok(polls.core, OpenPoll(poll_id=pid, actor=ORG))
    assert refused(polls.core, PublishPoll(poll_id=pid, actor=ORG))["code"] == "poll_open"
    ok(polls.core, ClosePoll(poll_id=pid, actor=ORG))
    # The tally signs at the close: the poll stays closed, nobody sees the result yet,
    # and its organisers see that it is ready to publish.
    signed_at = clock().isoformat().replace("+00:00", "Z")
    assert polls.signed(pid) == []
    assert (polls.get(pid)["status"], polls.get(pid)["result_signed_at"]) == ("closed",
                                                                              signed_at)
    # Another organiser (not of this consultation) may not publish it.
    assert refused(polls.core, PublishPoll(poll_id=pid, actor=OTHER))["code"] == \
        "not_an_organiser_of_this_consultation"

    clock.advance(hours=2)
    data, events = ok(polls.core, PublishPoll(poll_id=pid, actor=ORG))
    assert (data["status"], data["published_at"]) == ("published",
                                                      clock().isoformat().replace("+00:00", "Z"))
    assert types(events) == ["poll.result_released.v1"]
    assert events[0]["producer"] == "proposal"
    assert events[0]["payload"] == {"poll_id": pid, "released_at": data["published_at"]}
    # Again: nothing changes, and the same release goes out again (a lost one is repaired).
    clock.advance(minutes=1)
    again, repeated = ok(polls.core, PublishPoll(poll_id=pid, actor=ORG))
    assert again == data
    assert [e["payload"] for e in repeated] == [events[0]["payload"]]
    assert polls.signed(pid) == [] and polls.get(pid) == data  # a late signature changes nothing


def test_publishing_before_the_tally_signed_is_allowed(polls: Polls) -> None:
    pid = polls.poll("embargoed")
    ok(polls.core, OpenPoll(poll_id=pid, actor=ORG))
    ok(polls.core, ClosePoll(poll_id=pid, actor=ORG))
    published = ok(polls.core, PublishPoll(poll_id=pid, actor=ORG))[0]
    assert (published["status"], published["result_signed_at"]) == ("published", None)
    assert polls.signed(pid) == []
    assert polls.get(pid) == {**published, "result_signed_at": published["published_at"]}


@pytest.mark.parametrize("visibility", ["after_close", "live"])
def test_only_an_embargoed_poll_is_published_by_an_organiser(
        polls: Polls, visibility: ResultsVisibility) -> None:
    pid = polls.poll(visibility)
    ok(polls.core, OpenPoll(poll_id=pid, actor=ORG))
    ok(polls.core, ClosePoll(poll_id=pid, actor=ORG))
    error = refused(polls.core, PublishPoll(poll_id=pid, actor=ORG))
    assert (error["code"], error["status"]) == ("poll_not_embargoed", 409)
    polls.signed(pid)  # published by the tally's signature, as always
    assert polls.get(pid)["status"] == "published"
    assert polls.get(pid)["result_signed_at"] == polls.get(pid)["published_at"]
    assert refused(polls.core, PublishPoll(poll_id=pid, actor=ORG))["code"] == \
        "poll_not_embargoed"


def test_publishing_an_unknown_poll_is_404(polls: Polls) -> None:
    error = refused(polls.core, PublishPoll(poll_id="nope", actor=ORG))
    assert (error["code"], error["status"]) == ("poll_not_found", 404)


def test_a_release_is_kept_across_a_restart_of_the_tally(tmp_path: Path, tally_key: SigningKey,
                                                        clock: Clock) -> None:
    first = make_tally(tmp_path, tally_key, clock)
    first.feed(opened_as("embargoed"), *BALLOTS, sealed(4), released())
    first.store.db.close()
    shown(make_tally(tmp_path, tally_key, clock))


def test_the_cross_channel_policy_is_set_kept_and_frozen_at_opening(polls: Polls) -> None:
    assert polls.get(polls.poll())["cross_channel"] == "latest_wins"
    pid = polls.poll(cross_channel="in_person_final")
    assert polls.get(pid)["cross_channel"] == "in_person_final"
    # Editing the rules, or another setting, leaves it unless it is given.
    assert ok(polls.core, UpdatePoll(poll_id=pid, rules=RULES, electorate="census",
                                     actor=ORG))[0]["cross_channel"] == "in_person_final"
    assert ok(polls.core, UpdatePoll(poll_id=pid, rules=RULES, cross_channel="latest_wins",
                                     actor=ORG))[0]["cross_channel"] == "latest_wins"
    ok(polls.core, UpdatePoll(poll_id=pid, rules=RULES, cross_channel="in_person_final",
                              actor=ORG))
    view, events = ok(polls.core, OpenPoll(poll_id=pid, actor=ORG))
    assert view["cross_channel"] == events[0]["payload"]["cross_channel"] == "in_person_final"
    error = refused(polls.core, UpdatePoll(poll_id=pid, rules=RULES, actor=ORG,
                                           cross_channel="latest_wins"))
    assert error["code"] == "poll_rules_frozen"
    assert polls.get(pid)["cross_channel"] == "in_person_final"
    # An event from before the setting, without it: the latest ballot wins, as it did.
    payload = {k: v for k, v in events[0]["payload"].items() if k != "cross_channel"}
    assert PollOpened.model_validate(payload).cross_channel == "latest_wins"
