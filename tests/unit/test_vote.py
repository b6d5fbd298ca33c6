"""Vote: ballot intake, revotes, refusals and the seal at close."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.unit.helpers import Clock, deliver, ok, refused, service_db, types
from urne.contracts import wrap
from urne.contracts.commands import CastBallot
from urne.contracts.events import PollClosed, PollOpened
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import SigningKey
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.messaging.kernel import ServiceCore
from urne.services.vote import domain
from urne.services.vote.adapters.sqlite_store import SqliteVoteStore
from urne.services.vote.handlers import MAX_SEQUENCE_RETRIES, VoteHandlers
from urne.storage.sqlite import SqliteDb

pytestmark = pytest.mark.unit

RULES = YesNoAbstainRules(method="yes_no_abstain", question="Extend the opening hours of the pool?")
YES, NO = {"answer": "yes"}, {"answer": "no"}


@dataclass
class Vote:
    core: ServiceCore
    store: SqliteVoteStore
    issuer: TokenIssuer
    clock: Clock

    def token(self, poll_id: str, voter_key: str = "a1" * 32) -> str:
        return self.issuer.voting_token(voter_key, poll_id)[0]

    def open(self, poll_id: str) -> None:
        assert deliver(self.core, PollOpened(poll_id=poll_id, consultation_id="c", rules=RULES,
                                             rules_hash=rules_hash(RULES),
                                             opened_at=self.clock())) == []

    def close(self, poll_id: str) -> list[dict]:
        return deliver(self.core, PollClosed(poll_id=poll_id, closed_at=self.clock()))

    def cast(self, poll_id: str, choice: dict, token: str | None = None) -> tuple[dict, list]:
        return ok(self.core, CastBallot(poll_id=poll_id, voting_token=token or self.token(poll_id),
                                        choice=choice))

    def refused(self, poll_id: str, choice: dict, token: str | None = None) -> dict:
        return refused(self.core, CastBallot(poll_id=poll_id,
                                             voting_token=token or self.token(poll_id),
                                             choice=choice))


def make_vote(tmp_path: Path, identity_key: SigningKey, clock: Clock,
              store: SqliteVoteStore | None = None) -> Vote:
    store = store or SqliteVoteStore(service_db(tmp_path / "vote.db", "vote"))
    core = VoteHandlers(store, TokenVerifier(identity_key.public), clock=clock).core()
    return Vote(core, store, TokenIssuer(identity_key), clock)


@pytest.fixture
def vote(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Vote:
    return make_vote(tmp_path, identity_key, clock)


def test_cast_then_revote(vote: Vote) -> None:
    vote.open("p1")
    token = vote.token("p1", voter_key="k" * 64)
    first, events = vote.cast("p1", YES, token)
    assert first["sequence"] == 1
    assert first["replaces_previous"] is False
    assert first["poll_id"] == "p1"
    assert re.fullmatch(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", first["tracker"])
    assert types(events) == ["ballot.recorded.v1"]
    recorded = events[0]["payload"]
    assert events[0]["producer"] == "vote"
    assert recorded["voter_key"] == "k" * 64  # the token's sub
    assert {k: recorded[k] for k in ("ballot_id", "tracker", "sequence", "choice", "channel")} == {
        "ballot_id": first["ballot_id"], "tracker": first["tracker"], "sequence": 1,
        "choice": YES, "channel": "online"}
    assert recorded["recorded_at"] == first["recorded_at"]

    second, events = vote.cast("p1", NO, token)
    assert (second["sequence"], second["replaces_previous"]) == (2, True)
    assert second["tracker"] != first["tracker"]
    assert second["ballot_id"] != first["ballot_id"]
    assert events[0]["payload"]["sequence"] == 2
    assert events[0]["payload"]["choice"] == NO
    assert len(list(vote.store.ballot_ids("p1"))) == 2  # immutable rows: the first one is kept


def test_voters_are_independent(vote: Vote) -> None:
    vote.open("p1")
    a, _ = vote.cast("p1", YES, vote.token("p1", "aa" * 32))
    b, _ = vote.cast("p1", YES, vote.token("p1", "bb" * 32))
    assert (a["sequence"], b["sequence"]) == (1, 1)


def test_a_token_for_another_poll_is_forbidden(vote: Vote) -> None:
    vote.open("p1")
    vote.open("p2")
    error = vote.refused("p1", YES, token=vote.token("p2"))
    assert (error["code"], error["status"]) == ("voting_token_wrong_poll", 403)
    assert len(list(vote.store.ballot_ids("p1"))) == len(list(vote.store.ballot_ids("p2"))) == 0


def test_invalid_tokens_are_unauthorized(vote: Vote, identity_key: SigningKey) -> None:
    vote.open("p1")
    error = vote.refused("p1", YES, token="not-a-token")
    assert (error["code"], error["status"]) == ("voting_token_invalid", 401)
    access = TokenIssuer(identity_key).access_token("person-1", "participant")[0]
    assert vote.refused("p1", YES, token=access)["code"] == "voting_token_invalid"
    expired = TokenIssuer(identity_key, voting_ttl=-5).voting_token("k" * 64, "p1")[0]
    assert vote.refused("p1", YES, token=expired)["code"] == "voting_token_invalid"


def test_unknown_or_not_yet_opened_poll(vote: Vote) -> None:
    error = vote.refused("p1", YES)
    assert (error["code"], error["status"]) == ("poll_not_open", 409)


def test_closed_poll(vote: Vote) -> None:
    vote.open("p1")
    token = vote.token("p1")
    vote.cast("p1", YES, token)
    vote.close("p1")
    error = vote.refused("p1", NO, token)
    assert (error["code"], error["status"]) == ("poll_closed", 409)
    assert len(list(vote.store.ballot_ids("p1"))) == 1


@pytest.mark.parametrize(
    "choice", [{}, {"answer": "maybe"}, {"answer": "yes", "extra": 1}, {"answer": 1}], ids=repr)
def test_invalid_choice_stores_nothing(vote: Vote, choice: dict) -> None:
    vote.open("p1")
    error = vote.refused("p1", choice)
    assert (error["code"], error["status"]) == ("ballot_invalid", 422)
    assert len(list(vote.store.ballot_ids("p1"))) == 0


def test_only_the_online_channel_is_accepted_by_the_contract(vote: Vote) -> None:
    vote.open("p1")
    raw = wrap(CastBallot(poll_id="p1", voting_token=vote.token("p1"), choice=YES), "test")
    raw["payload"]["channel"] = "paper"
    reply, events = vote.core.handle(raw)
    assert (reply["error"]["code"], events) == ("invalid_message", [])
    assert len(list(vote.store.ballot_ids("p1"))) == 0


def test_seal_counts_every_stored_ballot_idempotently(vote: Vote) -> None:
    vote.open("p1")
    vote.open("p2")
    alice, bob = vote.token("p1", "aa" * 32), vote.token("p1", "bb" * 32)
    vote.cast("p1", YES, alice)
    vote.cast("p1", NO, alice)  # a revote is a stored row too
    vote.cast("p1", YES, bob)
    vote.cast("p2", YES)  # another poll is not counted
    events = vote.close("p1")
    assert types(events) == ["ballot_box.sealed.v1"]
    assert events[0]["producer"] == "vote"
    assert events[0]["payload"]["poll_id"] == "p1"
    assert events[0]["payload"]["ballots_recorded"] == 3
    vote.clock.advance(minutes=1)
    again = vote.close("p1")  # redelivery: same count, nothing else changes
    assert again[0]["payload"]["ballots_recorded"] == 3
    assert vote.store.ballot_box("p1").status == "closed"
    assert vote.store.ballot_box("p1").rules == RULES


def test_closed_before_opened(vote: Vote) -> None:
    events = vote.close("p1")
    assert events[0]["payload"]["ballots_recorded"] == 0
    vote.open("p1")  # late: must not reopen
    assert vote.store.ballot_box("p1").status == "closed"
    assert vote.refused("p1", YES)["code"] == "poll_closed"


def test_late_poll_opened_does_not_reopen(vote: Vote) -> None:
    vote.open("p1")
    vote.close("p1")
    vote.open("p1")
    assert vote.refused("p1", YES)["code"] == "poll_closed"


class LosingStore(SqliteVoteStore):
    """Every insert loses the race to a concurrent request of the same voter."""

    def insert_ballot(self, ballot: domain.Ballot) -> bool:
        self.attempts = getattr(self, "attempts", 0) + 1
        return False


def test_a_lost_sequence_race_is_retried_then_refused(tmp_path: Path, identity_key: SigningKey,
                                                      clock: Clock) -> None:
    store = LosingStore(service_db(tmp_path / "vote.db", "vote"))
    vote = make_vote(tmp_path, identity_key, clock, store)
    vote.open("p1")
    error = vote.refused("p1", YES)
    assert (error["code"], error["status"]) == ("ballot_race", 409)
    assert store.attempts == MAX_SEQUENCE_RETRIES


def test_store_refuses_a_duplicate_sequence(vote: Vote, clock: Clock) -> None:
    ballot = domain.Ballot("p1", "k" * 64, 1, "b1", "T", YES, "online", clock())
    assert vote.store.insert_ballot(ballot)
    assert not vote.store.insert_ballot(replace(ballot, ballot_id="b2"))
    assert vote.store.latest_sequence("p1", "k" * 64) == 1
    assert vote.store.latest_sequence("p1", "x" * 64) == 0


def test_bucket_is_the_first_32_bits_of_the_voter_key_modulo_16() -> None:
    # The storage layout: changing it strands stored ballots, so it is pinned by value.
    assert domain.BALLOT_BUCKETS == 16
    assert domain.bucket("00000000" + "f" * 56) == 0
    assert domain.bucket("0000000f" + "0" * 56) == 15
    assert domain.bucket("00000010" + "f" * 56) == 0
    assert domain.bucket("ffffffff" + "0" * 56) == 15
    assert domain.bucket("1234abcd" + "0" * 56) == 0x1234ABCD % 16 == 13


class PausingStore(SqliteVoteStore):
    """Holds a cast between its "is the poll open?" check and its insert, as a slow
    store would, so another thread can handle PollClosed meanwhile."""

    def __init__(self, db: SqliteDb):
        super().__init__(db)
        self.reached, self.release = threading.Event(), threading.Event()

    def latest_sequence(self, poll_id: str, voter_key: str) -> int:
        self.reached.set()
        assert self.release.wait(10)
        return super().latest_sequence(poll_id, voter_key)


def test_a_ballot_accepted_during_close_is_in_the_seal(tmp_path: Path, identity_key: SigningKey,
                                                       clock: Clock) -> None:
    store = PausingStore(service_db(tmp_path / "vote.db", "vote"))
    vote = make_vote(tmp_path, identity_key, clock, store)
    vote.open("p1")
    token = vote.token("p1")
    replies: list[dict] = []
    caster = threading.Thread(target=lambda: replies.append(vote.core.handle(
        wrap(CastBallot(poll_id="p1", voting_token=token, choice=YES), "test"))[0]))
    caster.start()
    assert store.reached.wait(10)  # the cast passed its status check
    seals: list[dict] = []
    closer = threading.Thread(target=lambda: seals.extend(vote.close("p1")))
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "the close must wait for the cast in flight"
    store.release.set()
    caster.join(10)
    closer.join(10)
    [seal], [reply] = seals, replies
    assert reply["ok"], reply
    # Accepted, so counted in the seal; and no ballot gets in after the seal.
    assert seal["payload"]["ballots_recorded"] == len(list(store.ballot_ids("p1"))) == 1
    error = vote.refused("p1", NO)
    assert error["code"] == "poll_closed"
