"""Vote: the ballot intake (batches of one shard: ballots and close markers), the
admission rule, and the control plane that follows the polls."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.helpers import Clock, deliver, ok, service_db, types
from urne.contracts import wrap
from urne.contracts.commands import CastBallot, CastPaperMark, PurgeBallots
from urne.contracts.events import (
    BallotBoxClosed,
    BallotsMissing,
    PollClosed,
    PollCloseExtended,
    PollOpened,
    ResultPublished,
)
from urne.contracts.ids import new_ballot_id, new_tracker
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import SigningKey
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.messaging.counting_stream import counting_shard
from urne.messaging.kernel import RawEnvelope, ServiceCore
from urne.record.canonical import ballot_set_digest
from urne.services.vote import domain
from urne.services.vote.adapters.sqlite_store import SqliteVoteStore
from urne.services.vote.handlers import PURGE_EVERY, VoteHandlers
from urne.services.vote.intake import BallotIntake, Outcome

pytestmark = pytest.mark.unit

RULES = YesNoAbstainRules(method="yes_no_abstain", question="Extend the opening hours of the pool?")
YES, NO = {"answer": "yes"}, {"answer": "no"}
ALICE, BOB, CHLOE = "aa" * 32, "bb" * 32, "cc" * 32
AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@dataclass
class Vote:
    core: ServiceCore
    store: SqliteVoteStore
    issuer: TokenIssuer
    verifier: TokenVerifier
    clock: Clock
    shards: int = 1

    def intake(self, max_ballots: int = 20) -> BallotIntake:
        return BallotIntake(self.store, self.verifier, shards=self.shards,
                            counting_shards=self.shards, max_ballots=max_ballots,
                            clock=self.clock)

    def token(self, poll_id: str, voter_key: str = ALICE) -> str:
        return self.issuer.voting_token(voter_key, poll_id)[0]

    def open(self, poll_id: str) -> None:
        assert deliver(self.core, PollOpened(poll_id=poll_id, consultation_id="c", rules=RULES,
                                             rules_hash=rules_hash(RULES),
                                             opened_at=self.clock())) == []

    def ballot(self, poll_id: str, choice: dict, voter_key: str = ALICE, *,
               token: str | None = None, key: str | None = None,
               ballot_id: str | None = None) -> RawEnvelope:
        token = token or self.token(poll_id, voter_key)
        return wrap(CastBallot(poll_id=poll_id, voting_token=token, choice=choice,
                               ballot_id=ballot_id or new_ballot_id(), tracker=new_tracker(),
                               received_at=self.clock(), idempotency_key=key), "gateway")

    def record(self, *items: RawEnvelope, shard: int = 0, max_ballots: int = 20) -> Outcome:
        return self.intake(max_ballots).record(list(items), shard)

    def stored(self, poll_id: str) -> list[str]:
        return sorted(self.store.ballot_ids(poll_id))


def marker(poll_id: str) -> RawEnvelope:
    return wrap(BallotBoxClosed(poll_id=poll_id, closed_at=AT), "vote")


def error(reply: dict | None) -> tuple[str, int]:
    assert reply is not None and reply["ok"] is False, reply
    return reply["error"]["code"], reply["error"]["status"]


def receipt(reply: dict | None) -> dict:
    assert reply is not None and reply["ok"] is True, reply
    return reply["data"]


@pytest.fixture
def vote(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Vote:
    store = SqliteVoteStore(service_db(tmp_path / "vote.db", "vote"))
    return Vote(VoteHandlers(store).core(), store, TokenIssuer(identity_key),
                TokenVerifier(identity_key.public), clock)


# --- casting ---------------------------------------------------------------------

def test_cast_then_revote(vote: Vote) -> None:
    vote.open("p1")
    first = vote.ballot("p1", YES)
    out = vote.record(first)
    r1 = receipt(out.replies[0])
    assert (r1["sequence"], r1["replaces_previous"]) == (1, False)
    assert r1["ballot_id"] == first["payload"]["ballot_id"]  # named at the edge
    assert r1["tracker"] == first["payload"]["tracker"]
    assert re.fullmatch(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", r1["tracker"])
    assert types(out.events) == ["ballots.recorded.v1", "sign_in_list.marked.v1"]
    [recorded] = out.events[0]["payload"]["ballots"]
    # The sign-in list hears who voted, never what: no choice, no ballot, no time.
    assert out.events[1]["payload"] == {"voters": [
        {"poll_id": "p1", "voter_key": ALICE, "channel": "online", "district": None}]}
    assert recorded["voter_key"] == ALICE and recorded["sequence"] == 1
    assert recorded["choice"] == YES and recorded["ballot_id"] == r1["ballot_id"]

    out = vote.record(vote.ballot("p1", NO))
    r2 = receipt(out.replies[0])
    assert (r2["sequence"], r2["replaces_previous"]) == (2, True)
    assert vote.stored("p1") == sorted([r1["ballot_id"], r2["ballot_id"]])  # rows immutable


def test_one_batch_many_voters_and_revotes_in_arrival_order(vote: Vote) -> None:
    vote.open("p1")
    items = [vote.ballot("p1", YES, ALICE), vote.ballot("p1", NO, BOB),
             vote.ballot("p1", NO, ALICE), vote.ballot("p1", YES, ALICE)]
    out = vote.record(*items)
    assert [receipt(r)["sequence"] for r in out.replies] == [1, 1, 2, 3]
    [event, marked] = out.events  # one event for the whole batch, and its voters
    assert [(b["voter_key"], b["sequence"]) for b in event["payload"]["ballots"]] == [
        (ALICE, 1), (BOB, 1), (ALICE, 2), (ALICE, 3)]
    assert [v["voter_key"] for v in marked["payload"]["voters"]] == [ALICE, BOB]
    assert len(vote.stored("p1")) == 4


def test_refusals_are_per_ballot_and_store_nothing(vote: Vote, identity_key: SigningKey) -> None:
    vote.open("p1")
    vote.open("p2")
    expired = TokenIssuer(identity_key, voting_ttl=-5).voting_token(ALICE, "p1")[0]
    out = vote.record(
        vote.ballot("p1", YES, token="not-a-token"),
        vote.ballot("p1", YES, token=expired),
        vote.ballot("p1", YES, token=vote.token("p2")),
        vote.ballot("p1", {"answer": "maybe"}),
        vote.ballot("p9", YES),  # its opening has not reached the box yet
        vote.ballot("p1", YES, BOB),  # the one good ballot of the batch
    )
    assert [error(r) for r in out.replies[:5]] == [
        ("voting_token_invalid", 401), ("voting_token_invalid", 401),
        ("voting_token_wrong_poll", 403), ("ballot_invalid", 422), ("poll_opening", 503)]
    assert receipt(out.replies[5])["sequence"] == 1
    assert len(vote.stored("p1")) == 1 and vote.stored("p9") == []


def test_an_unreadable_message_is_refused_alone(vote: Vote) -> None:
    vote.open("p1")
    bad = vote.ballot("p1", YES)
    bad["payload"]["channel"] = "paper"  # the contract takes only "online" ballots here
    out = vote.record(bad, {"not": "an envelope"}, vote.ballot("p1", YES, BOB))
    assert error(out.replies[0]) == ("invalid_message", 422)
    assert error(out.replies[1]) == ("invalid_message", 422)
    assert receipt(out.replies[2])["sequence"] == 1


def test_a_redelivered_ballot_is_the_same_ballot(vote: Vote) -> None:
    """A crash after the commit and before the ack: the batch comes again."""
    vote.open("p1")
    item = vote.ballot("p1", YES)
    first = vote.record(item)
    again = vote.record(item)
    assert receipt(again.replies[0]) == receipt(first.replies[0])
    assert len(vote.stored("p1")) == 1
    # Its event again: the first one may be what the crash lost.
    assert again.events[0]["payload"]["ballots"] == first.events[0]["payload"]["ballots"]


def test_the_same_idempotency_key_and_body_give_the_same_receipt(vote: Vote) -> None:
    vote.open("p1")
    first = receipt(vote.record(vote.ballot("p1", YES, key="k-1")).replies[0])
    retry = receipt(vote.record(vote.ballot("p1", YES, key="k-1")).replies[0])
    assert retry == first  # another ballot_id was sent, the first receipt comes back
    assert len(vote.stored("p1")) == 1
    other = vote.record(vote.ballot("p1", NO, key="k-1"))
    assert error(other.replies[0]) == ("idempotency_key_reused", 422)
    assert other.events == [] and len(vote.stored("p1")) == 1
    # Keys are per voter: Bob may use the same one.
    assert receipt(vote.record(vote.ballot("p1", NO, BOB, key="k-1")).replies[0])["sequence"] == 1


def test_the_number_of_ballots_per_voter_is_bounded(vote: Vote) -> None:
    vote.open("p1")
    for _ in range(3):
        receipt(vote.record(vote.ballot("p1", YES), max_ballots=3).replies[0])
    out = vote.record(vote.ballot("p1", NO), max_ballots=3)
    assert error(out.replies[0]) == ("ballot_limit_reached", 409)
    assert len(vote.stored("p1")) == 3


# --- closing -----------------------------------------------------------------------

def test_poll_closed_sends_the_close_marker(vote: Vote) -> None:
    vote.open("p1")
    events = deliver(vote.core, PollClosed(poll_id="p1", closed_at=AT))
    assert types(events) == ["ballot_box.closed.v1"]
    assert events[0]["payload"] == {"poll_id": "p1", "closed_at": "2026-06-01T09:00:00Z"}
    assert vote.store.ballot_box("p1").status == "closed"
    vote.open("p1")  # a late "opened" does not reopen it
    assert vote.store.ballot_box("p1").status == "closed"


def test_ballots_ahead_of_the_marker_count_and_those_behind_are_refused(vote: Vote) -> None:
    vote.open("p1")
    vote.open("p2")
    ahead = vote.ballot("p1", YES)
    out = vote.record(ahead, marker("p1"), vote.ballot("p1", NO, BOB),
                      vote.ballot("p2", NO, BOB))
    kept = receipt(out.replies[0])["ballot_id"]
    assert out.replies[1] is None  # the marker gets no reply
    assert error(out.replies[2]) == ("poll_closed", 409)
    assert receipt(out.replies[3])["sequence"] == 1  # another poll: still open
    seal = next(e for e in out.events if e["type"] == "ballot_box.sealed.v2")["payload"]
    assert seal["poll_id"] == "p1"
    assert (seal["ballots_recorded"], seal["ballots_digest"]) == (1, ballot_set_digest([kept]))
    # Later batches too: the shard stays closed.
    assert error(vote.record(vote.ballot("p1", NO)).replies[0]) == ("poll_closed", 409)


def test_a_stored_ballot_sent_again_after_the_marker_gets_its_receipt_and_events(
        vote: Vote) -> None:
    """A batch whose ballots and marker were stored, then retried (the seal's read timed
    out, the worker died before its ack), and a client retrying with its Idempotency-Key
    after the close: each is answered as first, its events sent again (the sign-in list
    too); only what is new is refused."""
    vote.open("p1")
    ballot = vote.ballot("p1", YES, key="k-1")
    first = vote.record(ballot, marker("p1"))
    given = receipt(first.replies[0])
    again = vote.record(ballot, marker("p1"))
    assert receipt(again.replies[0]) == given
    assert types(again.events) == ["ballots.recorded.v1", "sign_in_list.marked.v1",
                                   "ballot_box.sealed.v2"]
    assert [b["ballot_id"] for b in again.events[0]["payload"]["ballots"]] == \
        [given["ballot_id"]]
    retried = vote.ballot("p1", YES, key="k-1")  # a new message, the same key and body
    assert receipt(vote.record(retried).replies[0]) == given
    assert error(vote.record(vote.ballot("p1", NO, key="k-1")).replies[0]) == \
        ("poll_closed", 409)  # another body: refused as closed, not as reused
    assert error(vote.record(vote.ballot("p1", NO)).replies[0]) == ("poll_closed", 409)
    assert vote.stored("p1") == [given["ballot_id"]]


def test_the_seal_waits_for_every_shard(vote: Vote) -> None:
    vote.shards = 3
    vote.open("p1")
    ids = [receipt(vote.record(vote.ballot("p1", YES, key), shard=shard).replies[0])["ballot_id"]
           for shard, key in enumerate((ALICE, BOB, "cc" * 32))]
    assert types(vote.record(marker("p1"), shard=0).events) == []
    assert types(vote.record(marker("p1"), shard=2).events) == []
    # Shard 1 has not passed the marker: its ballots are still taken.
    late = receipt(vote.record(vote.ballot("p1", NO, "dd" * 32), shard=1).replies[0])
    out = vote.record(marker("p1"), shard=1)
    [seal] = [e["payload"] for e in out.events if e["type"] == "ballot_box.sealed.v2"]
    assert seal["ballots_recorded"] == 4
    assert seal["ballots_digest"] == ballot_set_digest([*ids, late["ballot_id"]])


def test_a_repeated_marker_repeats_the_first_seal(vote: Vote, clock: Clock) -> None:
    vote.open("p1")
    vote.record(vote.ballot("p1", YES))
    [first] = [e for e in vote.record(marker("p1")).events if e["type"] == "ballot_box.sealed.v2"]
    clock.advance(minutes=5)
    [again] = [e for e in vote.record(marker("p1")).events if e["type"] == "ballot_box.sealed.v2"]
    assert again["payload"] == first["payload"]  # same count, digest and time


def test_a_ballot_ahead_of_the_opening_is_not_now_and_the_same_ballot_counts_later(
        vote: Vote) -> None:
    ballot = vote.ballot("p1", YES)
    early = vote.record(ballot)
    assert error(early.replies[0]) == ("poll_opening", 503)
    assert early.events == [] and vote.stored("p1") == []
    vote.open("p1")
    assert receipt(vote.record(ballot).replies[0])["sequence"] == 1
    assert len(vote.stored("p1")) == 1


def test_closed_before_opened(vote: Vote) -> None:
    assert types(deliver(vote.core, PollClosed(poll_id="p1", closed_at=AT))) == [
        "ballot_box.closed.v1"]
    out = vote.record(marker("p1"))
    [seal] = [e["payload"] for e in out.events if e["type"] == "ballot_box.sealed.v2"]
    assert seal["ballots_recorded"] == 0
    vote.open("p1")
    assert error(vote.record(vote.ballot("p1", YES)).replies[0]) == ("poll_closed", 409)


# --- a shard that moved: two deciders, one history ------------------------------------

def test_a_paused_worker_resuming_writes_nothing_new(vote: Vote) -> None:
    """Worker A read the voters, then paused; its shard went to worker B, which took the
    same messages and more. A resumes and writes its decisions: they are B's rows."""
    vote.open("p1")
    queue = [vote.ballot("p1", YES), vote.ballot("p1", NO, BOB), vote.ballot("p1", NO)]
    # What A decided from the store as it was (its writes never landed) ...
    decided_by_a = BallotIntake(_ReadOnly(vote.store), vote.verifier, shards=1,  # type: ignore[arg-type]
                                counting_shards=1, max_ballots=20).record(queue[:2], 0)
    by_b = vote.record(*queue)  # ... B takes the whole queue and commits it ...
    # ... so A's rows are B's rows (same ballot, sequence, tracker): an upsert of the
    # same values. And A processing its batch again finds them stored.
    assert [receipt(r) for r in decided_by_a.replies] == [receipt(r) for r in by_b.replies[:2]]
    replay = vote.record(*queue[:2])
    assert [receipt(r) for r in replay.replies] == [receipt(r) for r in by_b.replies[:2]]
    assert len(vote.stored("p1")) == 3  # nothing doubled, no second current ballot


class _ReadOnly:
    """The store as worker A saw it before pausing: reads only, writes dropped."""

    def __init__(self, store: SqliteVoteStore):
        self.store = store

    def __getattr__(self, name: str) -> object:
        if name in ("add_ballots", "close_shards"):
            return lambda *a, **k: None
        return getattr(self.store, name)


# --- the admission rule, as a property -----------------------------------------------

REQUESTS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["yes", "no"]),
                              st.sampled_from([None, "k1", "k2"])), max_size=25)


@settings(max_examples=60, deadline=None)
@given(requests=REQUESTS, replays=st.lists(st.integers(0, 24), max_size=8))
def test_admission_keeps_sequences_dense_and_retries_stable(
        requests: list[tuple[int, str, str | None]], replays: list[int]) -> None:
    """Any stream of one voter's requests, some delivered twice: the stored sequences
    are 1..n with no gap or duplicate, and a replay never changes what is stored."""
    stored: list[domain.Ballot] = []
    sent: list[domain.Request] = []
    for n, (_, answer, key) in enumerate(requests):
        choice = {"answer": answer}
        sent.append(domain.Request(f"{n:032x}", f"T{n}", choice, "online",
                                   AT + timedelta(seconds=n), key,
                                   domain.request_digest(choice, "online")))
    stream = list(sent) + [sent[i] for i in replays if i < len(sent)]
    for request in stream:
        decision = domain.admit("p", ALICE, stored, request, max_ballots=100)
        if isinstance(decision, domain.Admitted) and decision.new:
            stored.append(decision.ballot)
    assert [b.sequence for b in stored] == list(range(1, len(stored) + 1))
    keys = [b.idempotency_key for b in stored if b.idempotency_key]
    assert len(keys) == len(set(keys))  # a key names one ballot
    assert len({b.ballot_id for b in stored}) == len(stored)


def test_a_ballot_keeps_its_minute_only_and_its_receipt_reads_back_the_same(
        vote: Vote, clock: Clock) -> None:
    """Privacy by default: no store keeps a ballot's time to the second, which matched
    with identity's records could say whose it is; the lag is measured from the event's
    ``stored_at``, which no store keeps."""
    vote.open("p1")
    clock.now = clock.now.replace(second=41, microsecond=123_456)
    outcome = vote.record(vote.ballot("p1", YES, key="k"))
    first = receipt(outcome.replies[0])
    assert first["recorded_at"] == clock.now.strftime("%Y-%m-%dT%H:%M:00Z")
    [ballot] = vote.store.ballots_of("p1", {ALICE})[ALICE]
    assert ballot.recorded_at == clock.now.replace(second=0, microsecond=0)
    [event] = [e for e in outcome.events if e["type"] == "ballots.recorded.v1"]
    assert event["payload"]["stored_at"] == clock.now.isoformat().replace("+00:00", "Z")
    assert event["payload"]["ballots"][0]["recorded_at"] == first["recorded_at"]
    assert receipt(vote.record(vote.ballot("p1", YES, key="k")).replies[0]) == first


def test_the_enumeration_bucket_is_the_first_32_bits_of_the_voter_key_modulo_128() -> None:
    # The storage layout: changing it strands stored ballot ids, so it is pinned by value.
    assert domain.ENUMERATION_BUCKETS == 128
    assert domain.enumeration_bucket("00000000" + "f" * 56) == 0
    assert domain.enumeration_bucket("0000007f" + "0" * 56) == 127
    assert domain.enumeration_bucket("00000080" + "f" * 56) == 0
    assert domain.enumeration_bucket("1234abcd" + "0" * 56) == 0x1234ABCD % 128 == 77


# --- the close time ----------------------------------------------------------------

def test_a_ballot_received_after_the_close_time_is_refused_before_the_marker(vote: Vote
                                                                            ) -> None:
    closes_at = vote.clock() + timedelta(minutes=10)
    vote.open("p1")
    assert deliver(vote.core, PollOpened(poll_id="p1", consultation_id="c", rules=RULES,
                                         rules_hash=rules_hash(RULES), opened_at=vote.clock(),
                                         closes_at=closes_at)) == []
    intake = vote.intake()
    vote.clock.now = closes_at  # received at the very close time: still in
    in_time = vote.ballot("p1", YES)
    vote.clock.advance(milliseconds=1)  # received after it, no marker yet
    late = vote.ballot("p1", NO, voter_key=BOB)
    out = intake.record([in_time, late], 0)
    receipt(out.replies[0])
    assert error(out.replies[1]) == ("poll_closed", 409)
    assert vote.stored("p1") == [in_time["payload"]["ballot_id"]]  # the late one changed nothing


def test_an_extension_is_seen_by_an_intake_that_cached_the_box(vote: Vote) -> None:
    closes_at = vote.clock() + timedelta(minutes=10)
    deliver(vote.core, PollOpened(poll_id="p1", consultation_id="c", rules=RULES,
                                  rules_hash=rules_hash(RULES), opened_at=vote.clock(),
                                  closes_at=closes_at))
    intake = vote.intake()
    receipt(intake.record([vote.ballot("p1", YES)], 0).replies[0])  # the box is cached now
    later = closes_at + timedelta(minutes=5)
    # Extensions only move the close later, in whatever order they come.
    assert deliver(vote.core, PollCloseExtended(poll_id="p1", closes_at=later,
                                                previous_closes_at=closes_at, reason="r",
                                                extended_at=vote.clock())) == []
    assert deliver(vote.core, PollCloseExtended(poll_id="p1", closes_at=closes_at,
                                                previous_closes_at=None, reason="r",
                                                extended_at=vote.clock())) == []
    vote.clock.now = closes_at + timedelta(minutes=1)
    receipt(intake.record([vote.ballot("p1", NO, voter_key=BOB)], 0).replies[0])
    vote.clock.now = later + timedelta(seconds=1)
    late = intake.record([vote.ballot("p1", NO, voter_key=CHLOE)], 0).replies[0]
    assert error(late) == ("poll_closed", 409)


def test_a_close_time_set_on_a_poll_that_had_none_reaches_an_intake_that_cached_it(
        vote: Vote) -> None:
    vote.open("p1")  # no close time
    intake = vote.intake()
    receipt(intake.record([vote.ballot("p1", YES)], 0).replies[0])  # the box is cached now
    closes_at = vote.clock() + timedelta(minutes=10)
    assert deliver(vote.core, PollCloseExtended(poll_id="p1", closes_at=closes_at,
                                                previous_closes_at=None, reason="r",
                                                extended_at=vote.clock())) == []
    vote.clock.now = closes_at + timedelta(seconds=1)
    late = intake.record([vote.ballot("p1", NO, voter_key=BOB)], 0).replies[0]
    assert error(late) == ("poll_closed", 409)


def test_an_extension_before_opened_keeps_the_rules_coming(vote: Vote) -> None:
    closes_at = vote.clock() + timedelta(minutes=10)
    deliver(vote.core, PollCloseExtended(poll_id="p1", closes_at=closes_at + timedelta(hours=1),
                                         previous_closes_at=closes_at, reason="r",
                                         extended_at=vote.clock()))
    deliver(vote.core, PollOpened(poll_id="p1", consultation_id="c", rules=RULES,
                                  rules_hash=rules_hash(RULES), opened_at=vote.clock(),
                                  closes_at=closes_at))
    box = vote.store.ballot_box("p1")
    assert box is not None and box.rules == RULES and box.status == "open"
    assert box.closes_at == closes_at + timedelta(hours=1)  # the later one stays


def test_a_ballot_takes_its_channel_from_the_token_not_the_request(vote: Vote) -> None:
    vote.open("p1")
    paper = vote.issuer.voting_token(BOB, "p1", channel="paper")[0]
    out = vote.record(vote.ballot("p1", YES, BOB, token=paper), vote.ballot("p1", NO))
    assert [receipt(r)["sequence"] for r in out.replies] == [1, 1]
    recorded = {b["voter_key"]: b["channel"] for b in out.events[0]["payload"]["ballots"]}
    assert recorded == {BOB: "paper", ALICE: "online"}
    stored = {b.voter_key: b.channel for chunk in vote.store.stored_ballots("p1", 10)
              for b in chunk}
    assert stored == {BOB: "paper", ALICE: "online"}


# --- the cross-channel policy -------------------------------------------------------

def open_with(vote: Vote, poll_id: str, cross_channel: str) -> None:
    assert deliver(vote.core, PollOpened(poll_id=poll_id, consultation_id="c", rules=RULES,
                                         rules_hash=rules_hash(RULES), opened_at=AT,
                                         cross_channel=cross_channel)) == []


@pytest.mark.parametrize("policy", ["in_person_final", "latest_wins"])
def test_a_ballot_cast_at_a_desk_is_final_where_the_poll_says_so(vote: Vote,
                                                                 policy: str) -> None:
    open_with(vote, "p1", policy)
    desk = vote.issuer.voting_token(ALICE, "p1", channel="desk")[0]
    early = vote.ballot("p1", NO, key="early")  # online, before the desk
    assert receipt(vote.record(early).replies[0])["sequence"] == 1
    at_desk = receipt(vote.record(vote.ballot("p1", YES, token=desk)).replies[0])
    assert at_desk["replaces_previous"] is True  # at the desk after online: replaced
    later = vote.record(vote.ballot("p1", NO)).replies[0]
    if policy == "in_person_final":
        assert error(later) == ("voted_in_person", 409)
        # A retry of the ballot cast before the desk still gets its receipt.
        assert receipt(vote.record(early).replies[0])["sequence"] == 1
        # Another ballot at the desk is in person too.
        again = vote.record(vote.ballot("p1", NO, token=desk)).replies[0]
        assert receipt(again)["sequence"] == 3
    else:
        assert receipt(later)["sequence"] == 3
    # Closing keeps the policy (the box is written again).
    assert vote.core.on_event(wrap(PollClosed(poll_id="p1", closed_at=AT), "proposal"))
    assert vote.store.ballot_box("p1").cross_channel == policy


def test_a_desk_or_paper_ballot_keeps_its_agent_for_the_tally(vote: Vote) -> None:
    """The agent the token names (never the request's word) is stored with the ballot
    and sent to the tally, which reconciles each agent's ballots; online, none."""
    vote.open("p1")
    agent = "d" * 32
    desk = vote.issuer.voting_token(ALICE, "p1", channel="desk", agent=agent)[0]
    at_desk = vote.record(vote.ballot("p1", YES, token=desk))
    online = vote.record(vote.ballot("p1", NO, BOB))
    [sent] = [e for e in at_desk.events if e["type"] == "ballots.recorded.v1"]
    assert [b["agent"] for b in sent["payload"]["ballots"]] == [agent]
    [sent] = [e for e in online.events if e["type"] == "ballots.recorded.v1"]
    assert [b["agent"] for b in sent["payload"]["ballots"]] == [None]
    stored = {b.voter_key: b.agent for chunk in vote.store.stored_ballots("p1", 10)
              for b in chunk}
    assert stored == {ALICE: agent, BOB: None}


def test_a_box_opened_by_an_older_proposal_service_lets_the_latest_win(vote: Vote) -> None:
    vote.open("p1")  # poll.opened without cross_channel
    assert vote.store.ballot_box("p1").cross_channel == "latest_wins"


# --- paper marks ------------------------------------------------------------------

def paper_mark(vote: Vote, poll_id: str, voter_key: str = ALICE, *,
               mark_id: str | None = None, channel: str | None = None) -> RawEnvelope:
    """A mark; with ``channel``, one sent with an ordinary token of that channel."""
    token = (vote.issuer.voting_token(voter_key, poll_id, "nord", channel=channel)[0]
             if channel else
             vote.issuer.voting_token(voter_key, poll_id, "nord", paper_mark=True)[0])
    return wrap(CastPaperMark(poll_id=poll_id, voting_token=token,
                              mark_id=mark_id or new_ballot_id(), received_at=vote.clock()),
                "gateway")


def test_a_paper_mark_shuts_out_every_later_ballot_and_is_no_ballot(vote: Vote) -> None:
    vote.open("p1")
    mark = paper_mark(vote, "p1")
    first = vote.record(mark)
    assert first.replies[0]["ok"], first.replies[0]
    # On the sign-in list as a person on paper; nothing for the tally.
    assert types(first.events) == ["sign_in_list.marked.v1"]
    assert first.events[0]["payload"]["voters"] == [
        {"poll_id": "p1", "voter_key": ALICE, "channel": "paper", "district": "nord"}]
    assert vote.record(mark).replies[0]["ok"]  # redelivered: the same mark
    assert vote.record(paper_mark(vote, "p1")).replies[0]["ok"]  # another agent: the same
    desk = vote.issuer.voting_token(ALICE, "p1", channel="desk")[0]
    for ballot in (vote.ballot("p1", YES), vote.ballot("p1", YES, token=desk)):
        assert error(vote.record(ballot).replies[0]) == ("voted_on_paper", 409)
    # Someone who voted cannot be marked; a mark takes a paper token.
    receipt(vote.record(vote.ballot("p1", NO, BOB)).replies[0])
    assert error(vote.record(paper_mark(vote, "p1", BOB)).replies[0]) == ("already_voted", 409)
    for channel in ("desk", "paper"):  # a paper ballot's token marks nobody
        assert error(vote.record(paper_mark(vote, "p1", CHLOE, channel=channel)
                                 ).replies[0]) == ("forbidden", 403)
    # A mark's token casts no ballot.
    mark_token = vote.issuer.voting_token(CHLOE, "p1", paper_mark=True)[0]
    assert error(vote.record(vote.ballot("p1", YES, CHLOE, token=mark_token)).replies[0]) == (
        "forbidden", 403)
    # The mark is no ballot: not enumerated, not sealed.
    assert len(vote.stored("p1")) == 1
    assert [b.voter_key for chunk in vote.store.stored_ballots("p1", 10) for b in chunk] == [BOB]
    closed = vote.record(marker("p1"))
    [seal] = [e for e in closed.events if e["type"] == "ballot_box.sealed.v2"]
    assert seal["payload"]["ballots_recorded"] == 1


# --- retention -------------------------------------------------------------------

def test_missing_ballots_are_sent_again_from_the_shards_the_tally_is_short_of(
        vote: Vote) -> None:
    """The tally says how many ballots it holds of each counting shard: the vote service
    sends again the stored ballots of the shards it stored more of, not the whole poll;
    every ballot when the tally does not say, counts its shards otherwise, or is short
    of none by its counts."""
    vote.open("p1")
    keys = {"cc" * 32: 0, "dd" * 32: 1, "aa" * 32: 2, "ee" * 32: 2, "bb" * 32: 3}
    assert {k: counting_shard(k, 4) for k in keys} == keys
    for key in keys:
        receipt(vote.record(vote.ballot("p1", YES, key)).replies[0])
    receipt(vote.record(vote.ballot("p1", NO, "aa" * 32)).replies[0])  # a revote, shard 2
    four = VoteHandlers(vote.store, shards=4).core()

    def sent_again(by_shard: list[int] | None) -> dict[int, list[tuple[str, int]]]:
        events = deliver(four, BallotsMissing(poll_id="p1", received=sum(by_shard or [0]),
                                              sealed=6, received_by_shard=by_shard))
        assert set(types(events)) == {"ballots.recorded.v1"}
        return {e["payload"]["shard"]: sorted((b["voter_key"][:2], b["sequence"])
                                              for b in e["payload"]["ballots"])
                for e in events}

    everything = {0: [("cc", 1)], 1: [("dd", 1)], 2: [("aa", 1), ("aa", 2), ("ee", 1)],
                  3: [("bb", 1)]}
    assert sent_again([1, 1, 2, 1]) == {2: everything[2]}  # one of shard 2's lost
    assert sent_again([0, 1, 3, 0]) == {0: everything[0], 3: everything[3]}
    for unknown in (None, [1, 1, 3], [1, 1, 3, 1]):  # not said; 3 shards; none short
        assert sent_again(unknown) == everything

    # Finer, by voter cell (bits 32-63 of the key: cc..., dd..., aa..., ee..., bb... are
    # cells 12, 13, 10, 14, 11): only the short cell's voter, not all of its shard's.
    def by_cell(short_of_aa: int) -> list[list[int]]:
        cells = [[0] * 16 for _ in range(4)]
        cells[0][12] = cells[1][13] = cells[2][14] = cells[3][11] = 1
        cells[2][10] = 2 - short_of_aa
        return cells

    def sent_again_by_cell(cells: list[list[int]], by_shard: list[int]
                           ) -> dict[int, list[tuple[str, int]]]:
        events = deliver(four, BallotsMissing(poll_id="p1", received=sum(by_shard), sealed=6,
                                              received_by_shard=by_shard,
                                              received_by_cell=cells))
        return {e["payload"]["shard"]: sorted((b["voter_key"][:2], b["sequence"])
                                              for b in e["payload"]["ballots"])
                for e in events}

    assert sent_again_by_cell(by_cell(1), [1, 1, 2, 1]) == {2: [("aa", 1), ("aa", 2)]}
    # Cells not as ours (3 shards, or 8 cells): by shard, as before.
    assert sent_again_by_cell(by_cell(1)[:3], [1, 1, 2, 1]) == {2: everything[2]}
    assert sent_again_by_cell([c[:8] for c in by_cell(1)], [1, 1, 2, 1]) == \
        {2: everything[2]}
    # Short of no cell by its counts: by shard, then all.
    assert sent_again_by_cell(by_cell(0), [1, 1, 2, 1]) == {2: everything[2]}


def test_ballots_go_when_their_retention_after_the_result_is_over(
        tmp_path: Path, identity_key: SigningKey, clock: Clock) -> None:
    """URNE_VOTE_BALLOT_DAYS after the tally signed the result (result.published), the
    purge deletes the poll's ballots, looking at most every PURGE_EVERY; a poll whose
    result is not signed keeps them, however old."""
    store = SqliteVoteStore(service_db(tmp_path / "vote.db", "vote"))
    core = VoteHandlers(store, ballots_keep=timedelta(days=90), clock=clock).core()
    vote = Vote(core, store, TokenIssuer(identity_key), TokenVerifier(identity_key.public),
                clock)
    for poll in ("p1", "p2"):
        vote.open(poll)
        receipt(vote.record(vote.ballot(poll, YES)).replies[0])
        deliver(core, PollClosed(poll_id=poll, closed_at=clock()))
    signed = ResultPublished(poll_id="p1", record_root="0" * 64, ballots_counted=1,
                             published_at=clock())
    assert deliver(core, signed) == [] and deliver(core, signed) == []  # redelivered
    assert ok(core, PurgeBallots()) == ({"removed": {"polls": 0}}, [])  # kept 90 days
    clock.advance(days=90, seconds=-1)
    assert ok(core, PurgeBallots()) == ({"removed": {"polls": 0}}, [])
    clock.advance(seconds=2)
    assert ok(core, PurgeBallots()) == ({"removed": {}}, [])  # looked a second ago
    clock.advance(seconds=PURGE_EVERY.total_seconds())
    assert ok(core, PurgeBallots()) == ({"removed": {"polls": 1}}, [])
    assert vote.stored("p1") == [] and len(vote.stored("p2")) == 1
    assert store.ballot_box("p1").status == "closed"
    clock.advance(seconds=PURGE_EVERY.total_seconds())
    assert ok(core, PurgeBallots()) == ({"removed": {"polls": 0}}, [])  # once
