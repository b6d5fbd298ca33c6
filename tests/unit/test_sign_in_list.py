"""The sign-in list (émargement, issue 9): the vote intake tells identity who has a
ballot, never what; identity keeps one mark per voter and channel, without a time, and
gives the turnout to organisers and "has voted" to agents."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.helpers import Clock, deliver, ok, refused, send, service_db
from tests.unit.test_desk import ADMIN, AGENT, Desk, as_
from tests.unit.test_vote import ALICE, BOB, CHLOE, YES, Vote, receipt
from urne.contracts.commands import (
    Actor,
    CheckSignInList,
    GetTurnout,
    IssueDeskVotingToken,
    ListIdentityActions,
    PurgeExpired,
)
from urne.contracts.events import PollClosed, PollOpened, SignInListEntry, SignInListMarked
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import SigningKey
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.messaging.signatures import allowed
from urne.services.identity import domain
from urne.services.identity.sign_in_list import Mark, count
from urne.services.vote.adapters.sqlite_store import SqliteVoteStore
from urne.services.vote.handlers import VoteHandlers

pytestmark = pytest.mark.unit

ORGANISER = Actor(person_id="organiser-1", role="organiser")
PARTICIPANT = Actor(person_id="someone", role="participant")


@pytest.fixture
def vote(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Vote:
    store = SqliteVoteStore(service_db(tmp_path / "vote.db", "vote"))
    return Vote(VoteHandlers(store).core(), store, TokenIssuer(identity_key),
                TokenVerifier(identity_key.public), clock)


@pytest.fixture
def at_desk(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Desk:
    return Desk(tmp_path, identity_key, clock)


def test_turnout_counts_people_by_district_and_channel() -> None:
    marks = [Mark("p", ALICE, "online", "nord"), Mark("p", ALICE, "paper", "nord"),
             Mark("p", BOB, "online", "sud"), Mark("p", CHLOE, "online", None)]
    counted = count(marks)
    assert counted.voters == 3  # Alice voted twice, in two channels: one person
    assert counted.channels == {"online": 3, "paper": 1}
    assert [(c.district, c.voters, c.channels) for c in counted.districts] == [
        ("nord", 1, {"online": 1, "paper": 1}), ("sud", 1, {"online": 1}),
        (None, 1, {"online": 1})]
    assert count([]).voters == 0 and count([]).districts == []


def marked(out_events: list[dict]) -> list[dict]:
    return [v for e in out_events if e["type"] == SignInListMarked.TYPE
            for v in e["payload"]["voters"]]


def test_the_intake_marks_people_with_their_tokens_district_and_never_papers(
        vote: Vote) -> None:
    vote.open("p1")
    paper = vote.issuer.voting_token(BOB, "p1", "nord", channel="paper")[0]
    elsewhere = vote.issuer.voting_token(CHLOE, "p2")[0]
    out = vote.record(vote.ballot("p1", YES, ALICE,
                                  token=vote.issuer.voting_token(ALICE, "p1", "sud")[0]),
                      vote.ballot("p1", YES, BOB, token=paper),
                      vote.ballot("p1", YES, CHLOE, token=elsewhere))  # refused: wrong poll
    assert [r is not None and r["ok"] for r in out.replies] == [True, True, False]
    assert marked(out.events) == [
        {"poll_id": "p1", "voter_key": ALICE, "channel": "online", "district": "sud"}]
    # No trace id of any ballot's request: the event cannot be matched with one.
    [event] = [e for e in out.events if e["type"] == SignInListMarked.TYPE]
    assert event["trace_id"] not in {e["trace_id"] for e in out.events
                                     if e["type"] != SignInListMarked.TYPE}


def test_a_voter_with_ballots_in_two_channels_in_one_batch_is_marked_in_both(
        vote: Vote) -> None:
    vote.open("p1")
    desk = vote.issuer.voting_token(ALICE, "p1", channel="desk")[0]
    out = vote.record(vote.ballot("p1", YES, ALICE), vote.ballot("p1", YES, ALICE, token=desk))
    assert sorted(v["channel"] for v in marked(out.events)) == ["desk", "online"]


def test_a_desk_ballot_keeps_its_day_only(vote: Vote) -> None:
    """Identity's action log says to the second whom an agent helped; desk ballots are
    few: their time must not match it."""
    vote.open("p1")
    desk = vote.issuer.voting_token(ALICE, "p1", channel="desk")[0]
    online, at_desk = (receipt(vote.record(b).replies[0]) for b in (
        vote.ballot("p1", YES, BOB), vote.ballot("p1", YES, ALICE, token=desk)))
    now = vote.clock()
    assert online["recorded_at"] == now.replace(second=0).isoformat().replace("+00:00", "Z")
    assert at_desk["recorded_at"] == now.replace(hour=0, minute=0, second=0).isoformat(
        ).replace("+00:00", "Z")


def test_a_batch_redelivered_after_a_crash_marks_the_same_voters_once(
        vote: Vote, at_desk: Desk) -> None:
    """A worker that stored a batch and died before its events were confirmed gets the
    batch again: the intake sends the marks again, and identity keeps one per voter."""
    vote.open("p1")
    batch = [vote.ballot("p1", YES, ALICE), vote.ballot("p1", YES, BOB)]
    first = vote.record(*batch)
    again = vote.record(*batch)
    assert [r["data"]["ballot_id"] for r in again.replies if r] == \
        [r["data"]["ballot_id"] for r in first.replies if r]
    assert marked(again.events) == marked(first.events)
    for events in (first.events, again.events, again.events):  # and delivered twice
        for e in events:
            if e["type"] == SignInListMarked.TYPE:
                assert at_desk.core.on_event(e) == []
    assert sorted(m.voter_key for m in at_desk.store.marks("p1")) == [ALICE, BOB]


def mark(poll_id: str, *voters: tuple[str, str, str | None]) -> SignInListMarked:
    return SignInListMarked(voters=[SignInListEntry(poll_id=poll_id, voter_key=k, channel=c,
                                                    district=d) for k, c, d in voters])


def test_identity_keeps_one_mark_per_voter_and_channel_and_no_time(at_desk: Desk) -> None:
    for _ in range(2):
        assert deliver(at_desk.core, mark("p1", (ALICE, "online", "nord"),
                                          (BOB, "online", None))) == []
    deliver(at_desk.core, mark("p1", (ALICE, "paper", "nord")))
    deliver(at_desk.core, mark("p2", (CHLOE, "online", "sud")))  # another poll
    turnout = ok(at_desk.core, GetTurnout(actor=ORGANISER, poll_id="p1"))[0]
    assert turnout == {"poll_id": "p1", "voters": 2, "channels": {"online": 2, "paper": 1},
                       "districts": [
                           {"district": "nord", "voters": 1,
                            "channels": {"online": 1, "paper": 1}},
                           {"district": None, "voters": 1, "channels": {"online": 1}}]}
    assert ok(at_desk.core, GetTurnout(actor=ADMIN, poll_id="p3"))[0]["voters"] == 0
    # Nothing in the table says when: its columns, and no rowid to give the order.
    db = at_desk.store.db
    assert {r["name"] for r in db.query("PRAGMA table_info(sign_in_list)")} == {
        "poll_id", "voter_key", "channel", "district"}
    assert db.one("SELECT sql FROM sqlite_master WHERE name = 'sign_in_list'")[
        "sql"].rstrip().endswith("WITHOUT ROWID")
    for who in (PARTICIPANT, AGENT):
        assert refused(at_desk.core, GetTurnout(actor=who, poll_id="p1"))["code"] == \
            "forbidden"


def test_an_agent_sees_whether_a_person_has_voted_and_the_look_up_is_logged(
        at_desk: Desk) -> None:
    person = at_desk.register()["person_id"]
    at_desk.open("p1")

    def check(actor: Actor = AGENT, poll_id: str = "p1", person_id: str = person) -> dict:
        return ok(at_desk.core, CheckSignInList(**as_(actor), poll_id=poll_id,
                                                person_id=person_id))[0]

    assert check() == {"poll_id": "p1", "person_id": person, "voted": False, "channels": []}
    # Their voter key is the pseudonym identity gives them in that poll: only identity,
    # with its secret, finds their mark.
    deliver(at_desk.core, mark("p1", (domain.pseudonym("test-secret", person, "p1"),
                                      "online", None)))
    assert check() == {"poll_id": "p1", "person_id": person, "voted": True,
                       "channels": ["online"]}
    assert check(ADMIN)["voted"] is True
    for actor, poll_id, person_id, code in ((PARTICIPANT, "p1", person, "forbidden"),
                                            (ORGANISER, "p1", person, "forbidden"),
                                            (AGENT, "p9", person, "poll_not_found"),
                                            (AGENT, "p1", "nobody", "person_not_found")):
        assert refused(at_desk.core, CheckSignInList(
            **as_(actor), poll_id=poll_id, person_id=person_id))["code"] == code
    # A participant's token claiming to be the agent: identity reads its own store.
    forged = CheckSignInList(actor=AGENT, access_token=as_(PARTICIPANT)["access_token"],
                             poll_id="p1", person_id=person)
    assert refused(at_desk.core, forged)["code"] == "forbidden"
    log = ok(at_desk.core, ListIdentityActions(actor=ADMIN, month=at_desk.handlers.clock()
                                               .strftime("%Y-%m")))[0]["actions"]
    looked = [a for a in log if a["action"] == "sign_in_list.check.v1"]
    assert sorted((a["actor"], a["subject"]["person_id"], a["subject"]["poll_id"])
                  for a in looked) == [(ADMIN.person_id, person, "p1"),
                                       *[(AGENT.person_id, person, "p1")] * 2]
    assert "access_token" not in str(log)


def test_only_the_vote_service_may_mark_the_sign_in_list() -> None:
    # Consumers check the signed producer against this (urne/messaging/signatures.py):
    # whoever else publishes a mark on the broker has it dead-lettered.
    assert allowed(SignInListMarked.TYPE, "vote")
    assert not allowed(SignInListMarked.TYPE, "gateway")
    assert not allowed(SignInListMarked.TYPE, "tally")


def test_a_polls_sign_in_list_is_deleted_its_retention_after_the_close(
        at_desk: Desk, clock: Clock) -> None:
    """Identity's purge deletes a closed poll's list ``sign_in_list_keep`` (90 days by
    default) after the close, once; an open poll's stays."""
    for poll in ("p1", "p2"):
        at_desk.open(poll)
        deliver(at_desk.core, mark(poll, (ALICE, "online", None), (BOB, "online", "nord")))
    closed_at = clock()
    deliver(at_desk.core, PollClosed(poll_id="p1", closed_at=closed_at))
    keep = at_desk.handlers.sign_in_list_keep
    assert keep == timedelta(days=90)
    clock.advance(seconds=(keep - timedelta(minutes=11)).total_seconds())
    assert ok(at_desk.core, PurgeExpired())[0]["removed"]["sign_in_lists"] == 0
    assert len(list(at_desk.store.marks("p1"))) == 2
    clock.advance(minutes=12)
    assert ok(at_desk.core, PurgeExpired())[0]["removed"]["sign_in_lists"] == 1
    assert list(at_desk.store.marks("p1")) == []
    assert len(list(at_desk.store.marks("p2"))) == 2  # still open: kept
    clock.advance(minutes=11)
    assert ok(at_desk.core, PurgeExpired())[0]["removed"]["sign_in_lists"] == 0  # once
    # A mark that comes after (an event replayed months late) is not kept: nothing
    # would delete it again.
    deliver(at_desk.core, mark("p1", (CHLOE, "online", None)))
    assert list(at_desk.store.marks("p1")) == []
    deliver(at_desk.core, mark("p2", (CHLOE, "online", None)))
    assert len(list(at_desk.store.marks("p2"))) == 3


def test_an_agent_gets_a_desk_token_for_the_person_in_front_of_them(
        at_desk: Desk, identity_key: SigningKey) -> None:
    """An assisted vote: the person's own voter key (their ballot, revotes included), the
    channel ``desk``, their district; only for agents, people and open polls."""
    person = at_desk.register(district="nord")["person_id"]
    at_desk.open("p1")

    def ask(actor: Actor = AGENT, poll_id: str = "p1", person_id: str = person) -> dict:
        return send(at_desk.core, IssueDeskVotingToken(**as_(actor), poll_id=poll_id,
                                                       person_id=person_id))[0]

    reply = ask()
    assert reply["ok"], reply
    claims = TokenVerifier(identity_key.public).voting(reply["data"]["voting_token"])
    assert (claims.voter_key, claims.poll_id, claims.channel, claims.district) == (
        domain.pseudonym("test-secret", person, "p1"), "p1", "desk", "nord")
    # The agent who helped, by the name anyone who knows their person id recomputes.
    assert claims.agent == hashlib.sha256(b"urne.agent\x00agent-1\x00p1").hexdigest()[:32]
    for actor, poll_id, person_id, code in ((PARTICIPANT, "p1", person, "forbidden"),
                                            (ORGANISER, "p1", person, "forbidden"),
                                            (AGENT, "p9", person, "poll_not_found"),
                                            (AGENT, "p1", "nobody", "person_not_found")):
        assert ask(actor, poll_id, person_id)["error"]["code"] == code
    # A paper mark's token is for that alone; once the person is marked on paper, no
    # other token is given (the vote service would refuse the ballot anyway).
    reply = send(at_desk.core, IssueDeskVotingToken(**as_(AGENT), poll_id="p1",
                                                    person_id=person, channel="paper"))[0]
    claims = TokenVerifier(identity_key.public).voting(reply["data"]["voting_token"])
    assert (claims.channel, claims.paper_mark) == ("paper", True)
    deliver(at_desk.core, mark("p1", (claims.voter_key, "paper", "nord")))
    assert ask()["error"]["code"] == "voted_on_paper"
    at_desk.close("p1")
    assert ask()["error"]["code"] == "poll_not_open"


def test_no_paper_marks_in_a_census_poll(at_desk: Desk) -> None:
    """As no papers are taken there: nothing ties a paper to a census entry."""
    person = at_desk.register()["person_id"]
    rules = YesNoAbstainRules(method="yes_no_abstain", question="?")
    deliver(at_desk.core, PollOpened(poll_id="p1", consultation_id="c1", rules=rules,
                                     rules_hash=rules_hash(rules),
                                     opened_at=at_desk.handlers.clock(), electorate="census"))
    reply = send(at_desk.core, IssueDeskVotingToken(**as_(AGENT), poll_id="p1",
                                                    person_id=person, channel="paper"))[0]
    assert reply["error"]["code"] == "paper_census_poll"
