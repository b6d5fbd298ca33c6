"""A lost ``ballots.recorded`` heals by itself, on both stores: the tally's check finds
the sealed poll short of ballots, asks the vote service (``ballots.missing``), which
sends every stored ballot again; the tally keeps one copy of each and publishes, and
the published ballot ids are exactly those that got a receipt.

On SQLite the tally's event handler counts the ballots, as in the embedded profile; on
Cassandra a tally worker's counters do, from a counting stream (a list here: the
positions are what matters), as in the distributed profile."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.unit.helpers import Clock, deliver, ok, types
from urne.contracts import unwrap, wrap
from urne.contracts.commands import CastBallot, CheckPolls, GetRecord
from urne.contracts.events import BallotBoxSealedV2, BallotsRecorded, PollClosed, PollOpened
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.messaging.kernel import RawEnvelope, ServiceCore
from urne.record.canonical import ballot_set_digest
from urne.services.tally.adapters.sqlite_store import SqliteTallyStore
from urne.services.tally.handlers import ASK_AFTER, RESEND_AFTER, TallyHandlers
from urne.services.tally.shards import ShardCounters
from urne.services.vote.handlers import VoteHandlers
from urne.services.vote.intake import BallotIntake

RULES = YesNoAbstainRules(method="yes_no_abstain", question="A cycle lane on Main Street?")


def _to(core: ServiceCore, events: list[RawEnvelope]) -> list[RawEnvelope]:
    """Deliver events to a core, and publish what it emits in turn, as a transport would
    (telling the core they were published); returns those."""
    produced = [out for env in events for out in core.on_event(env)]
    core.published(produced)
    return produced


@dataclass
class Counting:
    """Ballot events to the tally as its profile counts them; other events to its core."""

    core: ServiceCore
    counters: ShardCounters | None  # None: the core's own handler (embedded)
    streams: dict[int, list[RawEnvelope]] = field(default_factory=dict)

    def __call__(self, events: list[RawEnvelope]) -> list[RawEnvelope]:
        if self.counters is None:
            return _to(self.core, events)
        for env in events:
            if env["type"] == BallotsRecorded.TYPE:
                shard = env["payload"]["shard"]
                stream = self.streams.setdefault(shard, [])
                stream.append(env)
                if len(stream) == 1:
                    assert self.counters.take(shard) == 0
                assert self.counters.apply({shard: [(len(stream) - 1, env)]}) == set()
        return _to(self.core, [e for e in events if e["type"] != BallotsRecorded.TYPE])


@dataclass
class Parts:
    """A vote service, its intake and a tally, on one backend's stores, for one poll."""

    clock: Clock
    vote: ServiceCore
    intake: BallotIntake
    tally: ServiceCore
    tally_store: Any
    counting: Counting
    streamed: bool  # counted by a worker (Cassandra), else by the tally's handler
    issuer: TokenIssuer
    poll_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    opened: PollOpened = field(init=False)

    def __post_init__(self) -> None:
        self.opened = PollOpened(poll_id=self.poll_id, consultation_id="c", rules=RULES,
                                 rules_hash=rules_hash(RULES), opened_at=self.clock())

    def cast(self, i: int) -> tuple[dict[str, Any], list[RawEnvelope]]:
        """Voter ``i``'s ballot through the intake: its receipt, and its events."""
        # Keys as identity makes them (an HMAC's hex): spread over the voter cells.
        token = self.issuer.voting_token(
            hashlib.sha256(f"{self.poll_id}{i}".encode()).hexdigest(), self.poll_id)[0]
        cast = wrap(CastBallot(poll_id=self.poll_id, voting_token=token,
                               choice={"answer": ("yes", "no")[i % 2]},
                               ballot_id=uuid.uuid4().hex, tracker=uuid.uuid4().hex[:16],
                               received_at=self.clock()), "gateway")
        outcome = self.intake.record([cast], 0)
        assert outcome.replies[0] is not None and outcome.replies[0]["ok"]
        return outcome.replies[0]["data"], outcome.events

    def seal(self) -> list[RawEnvelope]:
        """The poll closed: the vote service seals it (and the tally hears the close)."""
        poll_closed = PollClosed(poll_id=self.poll_id, closed_at=self.clock())
        assert deliver(self.tally, poll_closed) == []
        [closed_marker] = deliver(self.vote, poll_closed)
        sealed = self.intake.record([closed_marker], 0).events
        assert types(sealed) == ["ballot_box.sealed.v2"]
        return sealed


def parts(backend: Callable[[str], Any], tmp_path: Path) -> Parts:
    generate_keys(tmp_path)
    identity, signer = load_signing_key(tmp_path, "identity-token"), \
        load_signing_key(tmp_path, "tally-result")
    clock = Clock()
    vote_store, tally_store = backend("vote"), backend("tally")
    streamed = not isinstance(tally_store, SqliteTallyStore)
    stream = f"test-{uuid.uuid4().hex}"  # checkpoints of its own in a shared keyspace
    tally = TallyHandlers(tally_store, signer, clock=clock, stream=stream,
                          counted_by_workers=streamed).core()
    return Parts(clock, VoteHandlers(vote_store).core(),
                 BallotIntake(vote_store, TokenVerifier(identity.public), shards=1,
                              counting_shards=1, max_ballots=5, clock=clock),
                 tally, tally_store,
                 Counting(tally, ShardCounters(tally_store, stream, 1) if streamed else None),
                 streamed, TokenIssuer(identity))


def test_a_lost_ballots_recorded_is_fetched_again(backend: Callable[[str], Any],
                                                   tmp_path: Path) -> None:
    run = parts(backend, tmp_path)
    clock, vote, tally, counting = run.clock, run.vote, run.tally, run.counting
    tally_store, streamed, poll_id = run.tally_store, run.streamed, run.poll_id
    deliver(vote, run.opened)
    deliver(tally, run.opened)

    receipts: list[dict[str, Any]] = []
    lost: list[list[RawEnvelope]] = []
    for i in range(30):  # thirty voters, a batch each; the tally never hears of three
        receipt, events = run.cast(i)
        receipts.append(receipt)
        if i % 10 == 3:
            lost.append(events)  # a ballots.recorded lost on the way
        else:
            counting(events)
    sealed = run.seal()
    assert _to(tally, sealed) == []  # short of three ballots: nothing published

    def check() -> tuple[dict[str, Any], list[RawEnvelope]]:
        """One check, as it concerns this poll (Cassandra's keyspace is shared)."""
        checked, events = ok(tally, CheckPolls())
        return ({k: [p for p in checked[k] if p == poll_id] for k in ("published", "asked")},
                [e for e in events if e["payload"]["poll_id"] == poll_id])

    assert check() == ({"published": [], "asked": []}, [])
    counting(lost.pop(0))  # one comes late: a tally behind, not one that lost any
    clock.advance(seconds=ASK_AFTER.total_seconds())
    assert check()[1] == []  # it counted on meanwhile: no asking yet
    clock.advance(seconds=ASK_AFTER.total_seconds() - 1)
    assert check()[1] == []
    clock.advance(seconds=1)  # stuck for ASK_AFTER: two are lost
    checked, asks = check()
    assert checked["asked"] == [poll_id] and types(asks) == ["ballots.missing.v1"]
    assert unwrap(asks[0])[1].model_dump(include={"received", "sealed"}) == \
        {"received": 28, "sealed": 30}
    assert check()[1] == []  # asked again only ASK_AFTER later
    again = _to(vote, asks)
    sent = {b["ballot_id"] for env in again for b in env["payload"]["ballots"]}
    assert {receipts[13]["ballot_id"], receipts[23]["ballot_id"]} <= sent  # the lost two
    # The tally's partials count by voter cell: only the short cells' ballots go again.
    assert len(sent) < len(receipts) / 2, len(sent)
    published = counting(again)
    if streamed:  # counted by a worker: the check, every second, signs it
        published = check()[1]
        tally.published(published)  # the broker confirmed the announcement
    assert types(published) == ["result.published.v1"]
    record = ok(tally, GetRecord(poll_id=poll_id))[0]
    assert sorted(e["tracker"] for e in record["entries"]) == \
        sorted(r["tracker"] for r in receipts)
    assert sorted(b.ballot_id for b in tally_store.ballots(poll_id)) == \
        sorted(r["ballot_id"] for r in receipts)
    assert check()[1] == []  # the result is there: nothing asked (it leaves the list)
    assert check() == ({"published": [], "asked": []}, [])  # off the list
    assert counting(again) == []  # a late repeat publishes nothing twice
    assert len(lost) == 2


def test_a_seal_before_poll_opened_keeps_its_count(backend: Callable[[str], Any],
                                                    tmp_path: Path) -> None:
    """The tally hears the close and the seal before ``poll.opened`` (delayed, or sent
    again by a retried open): the late rules must not erase the sealed count, and the
    ballots counted once the rules are there publish, every receipt in the record. On
    Cassandra the sheet's rules and seal are separate cells of one row, written apart."""
    run = parts(backend, tmp_path)
    deliver(run.vote, run.opened)  # the vote service heard it; the tally, not yet
    casts = [run.cast(i) for i in range(6)]
    sealed = run.seal()
    assert _to(run.tally, sealed) == []  # no rules yet: nothing to sign
    assert deliver(run.tally, run.opened) == []  # still short of the six ballots
    sheet = run.tally_store.sheet(run.poll_id)
    assert sheet.rules is not None and sheet.sealed_count == 6
    published: list[RawEnvelope] = []
    for _, events in casts:
        published += run.counting(events)
    if run.streamed:  # counted by a worker: the check signs it
        published = [e for e in ok(run.tally, CheckPolls())[1]
                     if e["payload"]["poll_id"] == run.poll_id]
    assert types(published) == ["result.published.v1"]
    assert published[0]["payload"]["ballots_counted"] == 6
    record = ok(run.tally, GetRecord(poll_id=run.poll_id))[0]
    assert sorted(e["tracker"] for e in record["entries"]) == \
        sorted(receipt["tracker"] for receipt, _ in casts)
    assert deliver(run.tally, run.opened) == []  # the open again: nothing twice


def test_a_result_announcement_a_crash_kept_from_the_broker_goes_again(
        cassandra: Any, tmp_path: Path) -> None:
    """The result is signed and stored, and the process dies before the broker confirmed
    its ``result.published``: the check announces it again, the same, until a transport
    confirms it. (SQLite needs none of this: the embedded bus commits the event with the
    result.)"""
    from urne.services.tally.adapters.cassandra_store import CassandraTallyStore

    generate_keys(tmp_path)
    clock = Clock()
    store = CassandraTallyStore(cassandra.session, cassandra.keyspaces["tally"])
    tally = TallyHandlers(store, load_signing_key(tmp_path, "tally-result"), clock=clock).core()
    poll_id = uuid.uuid4().hex
    deliver(tally, PollOpened(poll_id=poll_id, consultation_id="c", rules=RULES,
                              rules_hash=rules_hash(RULES), opened_at=clock()))
    deliver(tally, PollClosed(poll_id=poll_id, closed_at=clock()))
    lost = deliver(tally, BallotBoxSealedV2(poll_id=poll_id, ballots_recorded=0,
                                          ballots_digest=ballot_set_digest([]),
                                          sealed_at=clock()))
    assert types(lost) == ["result.published.v1"]  # ... and the process dies

    def announced() -> list[RawEnvelope]:  # this poll's, of one check (shared keyspace)
        return [e for e in ok(tally, CheckPolls())[1] if e["payload"]["poll_id"] == poll_id]

    assert announced() == []  # not yet: its confirmation may be on its way
    clock.advance(seconds=RESEND_AFTER.total_seconds())
    [again] = announced()
    assert again["payload"] == lost[0]["payload"]  # the same announcement
    assert announced() == []  # sent again only RESEND_AFTER later
    clock.advance(seconds=RESEND_AFTER.total_seconds())
    [third] = announced()
    tally.published([third])  # the broker confirmed it
    clock.advance(seconds=RESEND_AFTER.total_seconds())
    assert announced() == []
    assert poll_id not in store.awaiting()


def test_an_indexed_id_without_its_row_is_not_sealed(cassandra: Any, tmp_path: Path,
                                                      caplog: Any) -> None:
    """The seal counts the voters' own rows (what the tally receives and what is sent
    again), not the id index: an id the index holds but no row does is left out, and
    said, so the tally is never left waiting for a ballot that does not exist."""
    from urne.services.vote.adapters.cassandra_store import CassandraVoteStore
    from urne.services.vote.domain import enumeration_bucket

    generate_keys(tmp_path)
    identity = load_signing_key(tmp_path, "identity-token")
    clock = Clock()
    store = CassandraVoteStore(cassandra.session, cassandra.keyspaces["vote"])
    vote = VoteHandlers(store).core()
    intake = BallotIntake(store, TokenVerifier(identity.public), shards=1, counting_shards=1,
                          max_ballots=5, clock=clock)
    poll_id = uuid.uuid4().hex
    deliver(vote, PollOpened(poll_id=poll_id, consultation_id="c", rules=RULES,
                             rules_hash=rules_hash(RULES), opened_at=clock()))
    voter = f"{7:064x}"
    token = TokenIssuer(identity).voting_token(voter, poll_id)[0]
    cast = wrap(CastBallot(poll_id=poll_id, voting_token=token, choice={"answer": "yes"},
                           ballot_id=uuid.uuid4().hex, tracker="T1", received_at=clock()),
                "gateway")
    assert intake.record([cast], 0).replies[0]["ok"]  # type: ignore[index]
    orphan = uuid.uuid4().hex  # an id in the index whose row was never written
    store.s.execute(store._add_id, (poll_id, enumeration_bucket(voter), orphan, voter))
    [marker] = deliver(vote, PollClosed(poll_id=poll_id, closed_at=clock()))
    with caplog.at_level("ERROR"):
        [seal] = intake.record([marker], 0).events
    assert seal["payload"]["ballots_recorded"] == 1
    said = [r for r in caplog.records if "has no ballot row" in r.getMessage()]
    assert [getattr(r, "fields", {}).get("ballot_id") for r in said] == [orphan]


def test_a_lost_census_count_is_counted_again_the_same(backend: Callable[[str], Any],
                                                        tmp_path: Path) -> None:
    """Identity counts a census poll's eligible people at its close, and its
    ``electorate.counted`` is lost (or identity stops before sending it): the tally,
    closed and sealed, signs nothing; its check asks identity (``electorate.missing``),
    which sends the count it kept, the same, and the tally signs it in the
    reconciliation. Both services on real stores of one kind."""
    from tests.unit.test_identity import CapturingSender
    from urne.contracts.commands import Actor, CensusRow, GetResult, ImportCensus
    from urne.services.identity.handlers import IdentityHandlers

    generate_keys(tmp_path)
    clock = Clock()
    identity = IdentityHandlers(
        store=backend("identity"), sender=CapturingSender(),
        tokens=TokenIssuer(load_signing_key(tmp_path, "identity-token")), secret="s",
        code_secret="c", organisers=frozenset(), admins=frozenset(), clock=clock).core()
    tally = TallyHandlers(backend("tally"), load_signing_key(tmp_path, "tally-result"),
                          clock=clock).core()
    consultation, poll_id = uuid.uuid4().hex, uuid.uuid4().hex
    rows = [CensusRow(family_name=f"Name{i}", given_name="A", birth_date=date(1980, 1, 1 + i),
                      district="nord", resident=i != 0) for i in range(5)]
    ok(identity, ImportCensus(consultation_id=consultation, rows=rows, minimum_age=18,
                              age_on=date(2026, 1, 1), actor=Actor(person_id="o",
                                                                   role="organiser")))
    opened = PollOpened(poll_id=poll_id, consultation_id=consultation, rules=RULES,
                        rules_hash=rules_hash(RULES), opened_at=clock(), electorate="census")
    assert deliver(identity, opened) == [] and deliver(tally, opened) == []
    closed = PollClosed(poll_id=poll_id, closed_at=clock())
    lost = deliver(identity, closed)  # never reaches the tally
    assert [(e["type"], e["payload"]["eligible"]) for e in lost] == [
        ("electorate.counted.v1", 4)]
    assert deliver(tally, closed) == []
    assert deliver(tally, BallotBoxSealedV2(poll_id=poll_id, ballots_recorded=0,
                                            ballots_digest=ballot_set_digest([]),
                                            sealed_at=clock())) == []

    def asked() -> list[RawEnvelope]:  # this poll's, of one check (shared keyspace)
        return [e for e in ok(tally, CheckPolls())[1] if e["payload"]["poll_id"] == poll_id]

    assert asked() == []
    clock.advance(seconds=ASK_AFTER.total_seconds())
    asks = asked()
    assert types(asks) == ["electorate.missing.v1"]
    again = _to(identity, asks)
    assert [e["payload"] for e in again] == [e["payload"] for e in lost]  # the same count
    assert types(_to(tally, again)) == ["result.published.v1"]
    result = ok(tally, GetResult(poll_id=poll_id))[0]["result"]
    assert (result["reconciliation"]["eligible"], result["reconciliation"]["voters"]) == (4, 0)
    assert _to(tally, again) == []  # a late repeat signs nothing twice


class CheckpointLost:
    """A tally store whose checkpoint writes fail once ``armed``, as if the worker died
    right after writing its copy of a batch and before moving its checkpoints."""

    def __init__(self, store: Any):
        self.store, self.armed = store, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def save_checkpoints(self, stream: str, moves: list[Any]) -> list[bool]:
        if self.armed:
            raise RuntimeError("killed after its copy, before its checkpoint")
        return self.store.save_checkpoints(stream, moves)  # type: ignore[no-any-return]


def test_a_tally_worker_killed_between_its_copy_and_its_checkpoint_counts_once(
        cassandra: Any) -> None:
    """The crash window of a counting batch, aimed at: the copy's rows are written, the
    checkpoint never moves. The next worker reads the shard from the checkpoint, meets
    the rows already there (revotes among them) and counts the stream on: its partial
    is the one a worker that never crashed makes, and the copy holds each ballot once."""
    from tests.unit.test_tally import ballot
    from urne.services.tally.adapters.cassandra_store import CassandraTallyStore

    store = CassandraTallyStore(cassandra.session, cassandra.keyspaces["tally"])
    votes = [("a", 1, "yes"), ("b", 1, "yes"), ("b", 2, "no"), ("c", 1, "abstain"),
             ("a", 2, "no"), ("d", 1, "yes")]

    def stream_of(poll_id: str) -> list[tuple[int, RawEnvelope]]:
        store.save_rules(poll_id, RULES, rules_hash(RULES), "after_close")
        return [(offset, wrap(ballot(*vote, poll_id=poll_id), "vote"))
                for offset, vote in enumerate(votes)]

    crashed, steady = uuid.uuid4().hex, uuid.uuid4().hex
    first, then = f"test-{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex}"
    messages = stream_of(crashed)
    dies = CheckpointLost(store)
    dying = ShardCounters(dies, first, 1)  # type: ignore[arg-type]
    assert dying.take(0) == 0
    assert dying.apply({0: messages[:3]}) == set()  # checkpointed at 3
    dies.armed = True
    with pytest.raises(RuntimeError, match="before its checkpoint"):
        dying.apply({0: messages[3:5]})  # c and a's revote copied, never checkpointed
    assert len(list(store.ballots(crashed))) == 5
    successor = ShardCounters(store, first, 1)
    assert successor.take(0) == 3
    assert successor.apply({0: messages[3:]}) == set()

    reference = ShardCounters(store, then, 1)
    reference.take(0)
    assert reference.apply({0: stream_of(steady)}) == set()
    assert store.partial(first, 0, crashed) == store.partial(then, 0, steady)
    partial = store.partial(first, 0, crashed)
    assert partial is not None and partial["tally"]["counts"] == {"yes": 1, "no": 2,
                                                                  "abstain": 1}
    assert sorted(b.ballot_id for b in store.ballots(crashed)) == \
        sorted(f"{voter}-{sequence}" for voter, sequence, _ in votes)
