"""Tally: publication once everything has arrived, in any order; signed results; proofs."""

from __future__ import annotations

import hashlib
import itertools
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tests.unit.helpers import Clock, deliver, ok, refused, service_db, types
from urne import __version__
from urne.contracts import Event, wrap
from urne.contracts.commands import (
    CheckPolls,
    GetRecord,
    GetRecordLines,
    GetResult,
    ProveInclusion,
)
from urne.contracts.events import (
    BallotBoxSealed,
    BallotBoxSealedV2,
    BallotsRecorded,
    ElectorateCounted,
    PollClosed,
    PollOpened,
    RecordedBallot,
)
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import SigningKey, b64url_decode
from urne.messaging.kernel import ServiceCore
from urne.platform.metrics import RESULTS_WITHHELD
from urne.record import merkle
from urne.record.canonical import ballot_set_digest, canonical_json
from urne.services.tally.adapters.sqlite_store import SqliteTallyStore
from urne.services.tally.domain import LEAF_ENCODING, RESULT_FORMAT, ShardCount
from urne.services.tally.handlers import ALERT_AFTER, ASK_AFTER, ASK_AT_MOST, TallyHandlers
from urne.services.tally.shards import stored
from urne.storage.cassandra import StoreUnavailable

pytestmark = pytest.mark.unit

# Non-ASCII on purpose: canonical JSON keeps UTF-8 as is.
RULES = YesNoAbstainRules(method="yes_no_abstain", question="Piétonniser la place du marché ?")
POLL = "poll-1"
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def opened(poll_id: str = POLL) -> PollOpened:
    return PollOpened(poll_id=poll_id, consultation_id="c1", rules=RULES,
                      rules_hash=rules_hash(RULES), opened_at=AT)


def voter_key(voter: str) -> str:
    """A pseudonym as identity makes them: hex (its first bits pick the shard)."""
    return hashlib.sha256(voter.encode()).hexdigest()


def recorded(voter: str, sequence: int, answer: str, poll_id: str = POLL) -> RecordedBallot:
    return RecordedBallot(poll_id=poll_id, ballot_id=f"{voter}-{sequence}",
                          tracker=f"T{voter.upper()}{sequence}", voter_key=voter_key(voter),
                          sequence=sequence, choice={"answer": answer}, channel="online",
                          recorded_at=AT)


def ballot(voter: str, sequence: int, answer: str, poll_id: str = POLL) -> BallotsRecorded:
    """One ballot in its own batch event, so tests can order ballots one by one."""
    return BallotsRecorded(ballots=[recorded(voter, sequence, answer, poll_id)])


def closed(poll_id: str = POLL) -> PollClosed:
    return PollClosed(poll_id=poll_id, closed_at=AT)


def sealed(n: int, poll_id: str = POLL) -> BallotBoxSealedV2:
    """The vote service's seal of the first ``n`` ballots these tests store in
    ``poll_id``: BALLOTS (or ``many(n)``) in POLL, the one "z" ballot elsewhere."""
    if poll_id != POLL:
        ids = ["z-1"]
    elif n <= len(BALLOTS):
        ids = [b.ballots[0].ballot_id for b in BALLOTS]
    else:
        ids = [r.ballot_id for r in many(n).ballots]
    return BallotBoxSealedV2(poll_id=poll_id, ballots_recorded=n,
                             ballots_digest=ballot_set_digest(ids[:n]), sealed_at=AT)


# Three voters; "b" changed their mind, so 4 stored ballots and 3 counted:
# a=yes, b=no (replacing yes), c=yes -> adopted 2 to 1.
BALLOTS = [ballot("a", 1, "yes"), ballot("b", 1, "yes"), ballot("b", 2, "no"),
           ballot("c", 1, "yes")]
REPLACED_TRACKER = "TB1"


@dataclass
class Tally:
    core: ServiceCore
    store: SqliteTallyStore

    def feed(self, *events: Event) -> list[dict]:
        out: list[dict] = []
        for e in events:
            out.extend(deliver(self.core, e))
        return out


# The polls these tests use, closed by the proposal service (poll.closed) before
# anything else reaches the tally: the order of the other events is what they vary.
# Signing waits for poll.closed too: test_a_sealed_poll_is_signed_only_once_closed.
CLOSED_FIRST = (POLL, "poll-2")


def make_tally(path: Path, key: SigningKey, clock: Clock | None = None,
               closed_first: tuple[str, ...] = CLOSED_FIRST, min_cell: int = 5) -> Tally:
    store = SqliteTallyStore(service_db(path / "tally.db", "tally"))
    handlers = TallyHandlers(store, key, **({"clock": clock} if clock else {}),
                             min_cell=min_cell)
    tally = Tally(handlers.core(), store)
    assert tally.feed(*(closed(p) for p in closed_first)) == []
    return tally


@pytest.fixture
def tally(tmp_path: Path, tally_key: SigningKey, clock: Clock) -> Tally:
    return make_tally(tmp_path, tally_key, clock)


# The leaves of the record of BALLOTS, computed once outside urne from the literal
# canonical bytes with printf | sha256sum: leaf = sha256(0x00 || b'{"channel":"online",
# "choice":{"answer":"yes"},"height":0,"parent":"<RULES' hash>","tracker":"TA1"}'), each
# next entry's parent the hex leaf before it; root = sha256(0x01 || sha256(0x01 || l0 ||
# l1) || sha256(0x01 || l2 || l3)). tests/golden/ pins the format itself.
EXPECTED_LEAVES = ["336d5189b37ada38a1ef52b1113ea9274c073174438fbb8ceb2f69e9dcc13870",
                   "4f303d641a3a1e5bfb12669b2562f48fc1f0a1eeabd2c18770d504b2f6369cd6",
                   "079d64efc290a4e3ea9dcc9d2c86c7125fec5c5f94da936cd4005b42c10f8e9c",
                   "179bcb4438d67e5e85aee69935fc7a143935ff456cb0cf0f07f4b3e33569c61a"]
EXPECTED_ROOT = "889104eb2ba0e99906f83f5f5fa4279532f1c35643fa4fedfb8157287c896232"


def expected_entries() -> list[dict]:
    """The log of BALLOTS in one interval: every ballot by tracker, b's first replaced."""
    parents = [rules_hash(RULES), *EXPECTED_LEAVES[:3]]
    rows = [{"tracker": "TA1", "choice": {"answer": "yes"}},
            {"tracker": "TB1", "choice": {"answer": "yes"}},
            {"tracker": "TB2", "choice": {"answer": "no"}, "supersedes": "TB1"},
            {"tracker": "TC1", "choice": {"answer": "yes"}}]
    return [{"height": i, "parent": parents[i], "channel": "online", **row}
            for i, row in enumerate(rows)]
# The root of the empty tree: SHA-256 of the empty string (RFC 6962 section 2.1).
EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_normal_order_publishes_a_signed_result(tally: Tally, tally_key: SigningKey) -> None:
    assert tally.feed(opened(), *BALLOTS) == []
    assert refused(tally.core, GetResult(poll_id=POLL))["code"] == "result_not_published"
    events = tally.feed(sealed(len(BALLOTS)))
    assert types(events) == ["result.published.v1"]
    assert events[0]["producer"] == "tally"
    published = events[0]["payload"]
    assert published["poll_id"] == POLL
    assert published["ballots_counted"] == 3
    assert published["record_root"] == EXPECTED_ROOT

    signed = ok(tally.core, GetResult(poll_id=POLL))[0]
    assert signed["algorithm"] == "Ed25519"
    assert signed["key_id"] == tally_key.public.kid
    result = signed["result"]
    # Raises InvalidSignature if the document or signature were altered.
    tally_key.public.key.verify(b64url_decode(signed["signature"]), canonical_json(result))
    assert result["format"] == RESULT_FORMAT
    assert result["poll_id"] == POLL
    assert result["rules"] == RULES.model_dump(mode="json")
    assert result["rules_hash"] == rules_hash(RULES)
    assert result["software_version"] == __version__
    assert result["record"] == {"format": "urne.record.v2", "size": 4, "root": EXPECTED_ROOT,
                                "leaf_encoding": LEAF_ENCODING, "heads": [4]}
    assert (result["ballots_received"], result["ballots_counted"]) == (4, 3)
    assert result["reconciliation"] == {"channels": {"online": {"entries": 4, "counted": 3}}}
    assert result["tally"] == {"method": "yes_no_abstain",
                               "counts": {"yes": 2, "no": 1, "abstain": 0},
                               "ballots": 3, "outcome": "adopted"}


def test_a_tampered_result_does_not_verify(tally: Tally, tally_key: SigningKey) -> None:
    tally.feed(opened(), *BALLOTS, sealed(4))
    signed = ok(tally.core, GetResult(poll_id=POLL))[0]
    result = {**signed["result"], "tally": {**signed["result"]["tally"], "outcome": "rejected"}}
    with pytest.raises(InvalidSignature):
        tally_key.public.key.verify(b64url_decode(signed["signature"]), canonical_json(result))


def test_record_and_inclusion_proofs(tally: Tally) -> None:
    tally.feed(opened(), *BALLOTS, sealed(4))
    record = ok(tally.core, GetRecord(poll_id=POLL))[0]
    assert record["entries"] == expected_entries()  # by tracker; no voter keys
    assert record["size"] == 4
    assert record["root"] == EXPECTED_ROOT
    assert record["leaf_encoding"] == LEAF_ENCODING
    assert "a" * 16 not in str(record)

    for i, entry in enumerate(expected_entries()):
        proof = ok(tally.core, ProveInclusion(poll_id=POLL, tracker=entry["tracker"]))[0]
        assert (proof["index"], proof["size"], proof["root"]) == (i, 4, EXPECTED_ROOT)
        assert proof["leaf"] == EXPECTED_LEAVES[i]
        leaf = bytes.fromhex(EXPECTED_LEAVES[i])
        assert merkle.verify_inclusion(leaf, proof["index"], proof["size"],
                                       [bytes.fromhex(h) for h in proof["path"]],
                                       bytes.fromhex(proof["root"]))


def many(n: int) -> BallotsRecorded:
    """``n`` voters' ballots in one event: yes from the even ones, no from the odd."""
    return BallotsRecorded(ballots=[recorded(f"v{i:04d}", 1, ("yes", "no")[i % 2])
                                    for i in range(n)])


def test_the_record_pages_cross_its_stored_chunks(tally: Tally) -> None:
    tally.feed(opened(), many(600), sealed(600))  # three chunks of 256 entries
    whole = ok(tally.core, GetRecord(poll_id=POLL, limit=10_000))[0]
    assert (whole["size"], whole["start"], whole["next"]) == (600, 0, None)
    assert [e["tracker"] for e in whole["entries"]] == sorted(
        f"TV{i:04d}1" for i in range(600))
    leaves = [merkle.leaf_hash(canonical_json(e)) for e in whole["entries"]]
    assert whole["root"] == merkle.root(leaves).hex()
    paged, start = [], 0
    while start is not None:
        page = ok(tally.core, GetRecord(poll_id=POLL, start=start, limit=250))[0]
        assert page["start"] == start and (page["root"], page["size"]) == (whole["root"], 600)
        paged += page["entries"]
        start = page["next"]
    assert paged == whole["entries"]
    beyond = ok(tally.core, GetRecord(poll_id=POLL, start=600))[0]
    assert (beyond["entries"], beyond["next"]) == ([], None)
    lines = ok(tally.core, GetRecordLines(poll_id=POLL, start=255, limit=3))[0]
    assert lines["lines"].encode() == b"".join(
        canonical_json(e) + b"\n" for e in whole["entries"][255:258])
    assert lines["next"] == 258
    # Proofs come from the stored tree: the plain tree's paths, for any entry.
    for index in (0, 255, 256, 511, 599):
        tracker = whole["entries"][index]["tracker"]
        proof = ok(tally.core, ProveInclusion(poll_id=POLL, tracker=tracker))[0]
        assert (proof["index"], proof["leaf"]) == (index, leaves[index].hex())
        assert proof["path"] == [h.hex() for h in merkle.inclusion_proof(index, leaves)]


def test_a_result_without_its_stored_record_gets_it_from_the_copy(tally: Tally) -> None:
    """A result signed before records were stored (or whose record was lost) is served
    again from the copy, if the copy is what the result commits to; else refused."""
    tally.feed(opened(), *BALLOTS, sealed(4))
    with tally.store.db.tx() as tx:
        for table in ("record_heads", "record_chunks", "record_tiles", "record_trackers"):
            tx.execute(f"DELETE FROM {table}")
    record = ok(tally.core, GetRecord(poll_id=POLL))[0]
    assert (record["entries"], record["root"]) == (expected_entries(), EXPECTED_ROOT)
    assert tally.store.record_head(POLL) == (4, EXPECTED_ROOT)
    proof = ok(tally.core, ProveInclusion(poll_id=POLL, tracker="TB2"))[0]
    assert proof["leaf"] == EXPECTED_LEAVES[2]
    # The copy no longer holds what was signed: nothing is served from it.
    with tally.store.db.tx() as tx:
        tx.execute("DELETE FROM record_heads")
        tx.execute("UPDATE ballots SET choice = '{\"answer\": \"no\"}' WHERE tracker = 'TA1'")
    for query in (GetRecord(poll_id=POLL), GetRecordLines(poll_id=POLL),
                  ProveInclusion(poll_id=POLL, tracker="TA1")):
        error = refused(tally.core, query)
        assert (error["code"], error["status"]) == ("record_unavailable", 503)
    assert tally.store.record_head(POLL) is None


@pytest.mark.parametrize("damage", ["zeroblob(128)", "zeroblob(96)"],
                         ids=["zeroed", "short"])
def test_a_damaged_stored_tree_proves_nothing(tally: Tally, damage: str) -> None:
    tally.feed(opened(), *BALLOTS, sealed(4))
    with tally.store.db.tx() as tx:
        tx.execute(f"UPDATE record_tiles SET hashes = {damage}")
    error = refused(tally.core, ProveInclusion(poll_id=POLL, tracker="TA1"))
    assert (error["code"], error["status"]) == ("record_unavailable", 503)


def test_a_replaced_ballot_is_in_the_record_as_replaced(tally: Tally) -> None:
    tally.feed(opened(), *BALLOTS, sealed(4))
    proof = ok(tally.core, ProveInclusion(poll_id=POLL, tracker=REPLACED_TRACKER))[0]
    entries = ok(tally.core, GetRecord(poll_id=POLL))[0]["entries"]
    assert entries[proof["index"]]["tracker"] == REPLACED_TRACKER
    assert [e["tracker"] for e in entries if e.get("supersedes") == REPLACED_TRACKER] == ["TB2"]
    error = refused(tally.core, ProveInclusion(poll_id=POLL, tracker="NOPE"))
    assert (error["code"], error["status"]) == ("tracker_not_found", 404)


def test_queries_before_publication_and_for_unknown_polls(tally: Tally) -> None:
    for query in (GetResult(poll_id="nope"), GetRecord(poll_id="nope"),
                  GetRecordLines(poll_id="nope"), ProveInclusion(poll_id="nope", tracker="TA1")):
        error = refused(tally.core, query)
        assert (error["code"], error["status"]) == ("poll_not_found", 404)
    tally.feed(opened(), *BALLOTS)
    # The embargo covers the record and the proofs too.
    for query in (GetResult(poll_id=POLL), GetRecord(poll_id=POLL),
                  GetRecordLines(poll_id=POLL), ProveInclusion(poll_id=POLL, tracker="TA1")):
        error = refused(tally.core, query)
        assert (error["code"], error["status"]) == ("result_not_published", 409)


def test_one_event_may_carry_a_whole_batch_of_ballots(tally: Tally) -> None:
    batch = BallotsRecorded(ballots=[b.ballots[0] for b in BALLOTS])
    events = tally.feed(opened(), batch, batch, sealed(4))  # redelivered too
    assert types(events) == ["result.published.v1"]
    assert events[0]["payload"]["record_root"] == EXPECTED_ROOT


def test_seal_before_ballots(tally: Tally) -> None:
    assert tally.feed(opened(), sealed(4), *BALLOTS[:3]) == []
    events = tally.feed(BALLOTS[3])
    assert types(events) == ["result.published.v1"]
    assert events[0]["payload"]["ballots_counted"] == 3


def test_seal_before_poll_opened(tally: Tally) -> None:
    assert tally.feed(sealed(4), *BALLOTS) == []
    assert refused(tally.core, GetResult(poll_id=POLL))["code"] == "result_not_published"
    events = tally.feed(opened())
    assert types(events) == ["result.published.v1"]
    assert events[0]["payload"]["record_root"] == EXPECTED_ROOT


def test_duplicate_deliveries_publish_exactly_once(tally: Tally) -> None:
    events = tally.feed(opened(), *BALLOTS, *BALLOTS, sealed(4), *BALLOTS, sealed(4),
                        opened(), BALLOTS[0])
    assert types(events) == ["result.published.v1"]
    assert events[0]["payload"]["ballots_counted"] == 3
    assert len(list(tally.store.ballots(POLL))) == 4


def test_more_ballots_than_sealed_is_never_published(tally: Tally) -> None:
    assert tally.feed(opened(), *BALLOTS, sealed(3)) == []
    withheld = refused(tally.core, GetResult(poll_id=POLL))
    assert withheld["code"] == "result_withheld"
    assert "the shards counted 4 ballots, the vote service sealed 3" in withheld["detail"]


def test_shard_counts_that_differ_from_the_recount_withhold_the_result(tally: Tally,
                                                                     clock: Clock) -> None:
    """The partials say one thing, the copy another (a partial damaged, a ballot
    counted twice): nothing is signed, the result routes say why, and the check alerts."""
    tally.feed(opened(), *BALLOTS)
    [state] = tally.store.partials("embedded", 1, POLL).values()
    yes = state["tally"]["counts"]
    state["tally"]["counts"] = {**yes, "yes": yes["yes"] - 1, "no": yes["no"] + 1}
    tally.store.save_partials("embedded", 0, None, 0, {POLL: state})
    assert tally.feed(sealed(4)) == []
    withheld = refused(tally.core, GetResult(poll_id=POLL))
    assert withheld == {**withheld, "code": "result_withheld", "status": 409}
    assert "differ from the recount" in withheld["detail"]
    checked = ok(tally.core, CheckPolls())[0]
    assert checked["published"] == [] and checked["waiting"] == 1
    assert RESULTS_WITHHELD._value.get() == 1
    # Mended (here by hand): the next recheck signs it, and nothing is withheld.
    state["tally"]["counts"] = yes
    tally.store.save_partials("embedded", 0, None, 0, {POLL: state})
    clock.advance(seconds=31)
    assert ok(tally.core, CheckPolls())[0]["published"] == [POLL]
    assert ok(tally.core, GetResult(poll_id=POLL))[0]["result"]["tally"]["counts"] == yes
    assert tally.store.sheet(POLL).withheld is None


def test_an_empty_poll_publishes_the_empty_tree(tally: Tally) -> None:
    events = tally.feed(opened(), sealed(0))
    assert events[0]["payload"]["ballots_counted"] == 0
    assert events[0]["payload"]["record_root"] == EMPTY_ROOT
    result = ok(tally.core, GetResult(poll_id=POLL))[0]["result"]
    assert result["tally"]["outcome"] == "tied"


def test_polls_are_kept_apart(tally: Tally) -> None:
    events = tally.feed(opened(), opened("poll-2"), *BALLOTS,
                        ballot("z", 1, "no", poll_id="poll-2"), sealed(1, "poll-2"))
    assert [e["payload"]["poll_id"] for e in events] == ["poll-2"]
    assert events[0]["payload"]["ballots_counted"] == 1
    assert [e["payload"]["poll_id"] for e in tally.feed(sealed(4))] == [POLL]
    assert ok(tally.core, GetResult(poll_id=POLL))[0]["result"]["ballots_counted"] == 3
    assert ok(tally.core, GetResult(poll_id="poll-2"))[0]["result"]["tally"]["counts"]["no"] == 1


def _publications(events: list[Event], key: SigningKey,
                  closed_first: tuple[str, ...] = CLOSED_FIRST) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        t = make_tally(Path(d), key, closed_first=closed_first)
        out = t.feed(*events)
        t.store.db.close()
    return [e for e in out if e["type"] == "result.published.v1"]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_order_of_opened_ballots_and_seal(order: tuple[int, ...],
                                                tally_key: SigningKey) -> None:
    groups = [[opened()], BALLOTS, [sealed(4)]]
    events = [e for i in order for e in groups[i]]
    [published] = _publications(events, tally_key)
    assert published["payload"]["ballots_counted"] == 3
    assert published["payload"]["record_root"] == EXPECTED_ROOT


@settings(max_examples=25, deadline=None)
@given(events=st.permutations([opened(), *BALLOTS, sealed(4), closed()]),
       redelivered=st.lists(st.sampled_from([opened(), *BALLOTS, sealed(4), closed()]),
                            max_size=4))
def test_any_interleaving_with_redeliveries_publishes_once(
        events: list[Event], redelivered: list[Event], tally_key: SigningKey) -> None:
    [published] = _publications([*events, *redelivered], tally_key, closed_first=())
    assert published["payload"]["ballots_counted"] == 3
    assert published["payload"]["record_root"] == EXPECTED_ROOT


def test_a_sealed_poll_is_signed_only_once_closed(tmp_path: Path, tally_key: SigningKey,
                                                   clock: Clock) -> None:
    """The vote service's seal alone does not make the tally sign, nor does the proposal
    service's close alone: each service's broker user can forge only its own events
    (issue 10)."""
    tally = make_tally(tmp_path, tally_key, clock, closed_first=())
    assert tally.feed(opened(), *BALLOTS, sealed(4)) == []
    assert ok(tally.core, CheckPolls())[1] == []
    assert refused(tally.core, GetResult(poll_id=POLL))["code"] == "result_not_published"
    assert types(tally.feed(closed())) == ["result.published.v1"]
    assert tally.feed(closed()) == []  # redelivered: signed once
    other = make_tally(tmp_path / "other", tally_key, clock, closed_first=())
    assert other.feed(opened(), closed(), *BALLOTS) == []  # closed, not sealed: waits
    assert types(other.feed(sealed(4))) == ["result.published.v1"]


def test_a_seal_without_its_digest_never_signs(tally: Tally) -> None:
    """v1 seals had an optional digest, which a forger could leave out: they are no
    longer taken, and a seal stored from one before the upgrade does not make the tally
    sign on its count alone."""
    legacy = wrap(BallotBoxSealed(poll_id=POLL, ballots_recorded=4, sealed_at=AT), "vote")
    assert tally.core.on_event(legacy) == []  # not subscribed: nothing happens
    assert tally.store.sheet(POLL) is None or tally.store.sheet(POLL).sealed_count is None
    tally.feed(opened(), *BALLOTS)
    tally.store.save_seal(POLL, 4, None)  # what a v1 seal without digest left behind
    assert ok(tally.core, CheckPolls())[1] == []
    withheld = refused(tally.core, GetResult(poll_id=POLL))
    assert withheld["code"] == "result_withheld" and "no digest" in withheld["detail"]
    assert types(tally.feed(sealed(4))) == ["result.published.v1"]  # the v2 seal signs


def test_publishes_when_the_sealed_digest_matches(tally: Tally) -> None:
    digest = ballot_set_digest(b.ballots[0].ballot_id for b in BALLOTS)
    tally.feed(opened(), *BALLOTS)
    events = tally.feed(sealed(len(BALLOTS)).model_copy(update={"ballots_digest": digest}))
    assert types(events) == ["result.published.v1"]
    assert tally.store.sheet(POLL).sealed_digest == digest


def test_same_count_other_ballots_is_not_published(tally: Tally) -> None:
    """One ballot lost and a stranger in its place: the count matches, the set does not."""
    stranger = BallotsRecorded(ballots=[
        BALLOTS[0].ballots[0].model_copy(update={"ballot_id": "not-in-the-store"})])
    sealed_digest = ballot_set_digest(b.ballots[0].ballot_id for b in BALLOTS)
    tally.feed(opened(), stranger, *BALLOTS[1:])
    seal = sealed(len(BALLOTS)).model_copy(update={"ballots_digest": sealed_digest})
    assert tally.feed(seal) == []
    withheld = refused(tally.core, GetResult(poll_id=POLL))
    assert withheld["code"] == "result_withheld" and "digest" in withheld["detail"]


def test_the_copy_of_the_ballots_goes_when_its_retention_is_over(
        tmp_path: Path, tally_key: SigningKey, clock: Clock) -> None:
    """URNE_TALLY_COPY_DAYS after the result was signed, the tally's check deletes its
    copy of the poll's ballots (voter keys and choices); the result, the stored record
    and its proofs stay, and still verify. A poll signed later keeps its copy."""
    tally = make_tally(tmp_path, tally_key, clock)
    tally.feed(opened(), *BALLOTS, sealed(4))
    record = ok(tally.core, GetRecord(poll_id=POLL))[0]
    other = "poll-2"
    clock.advance(days=30)
    tally.feed(closed(other), opened(other), ballot("z", 1, "no", other), sealed(1, other))
    assert ok(tally.core, GetResult(poll_id=other))[0]

    clock.advance(days=60, minutes=-10)  # not quite 90 days since POLL was signed
    ok(tally.core, CheckPolls())
    assert len(list(tally.store.ballots(POLL))) == 4
    assert tally.store.partials("embedded", 1, POLL) != {}
    clock.advance(minutes=9)  # 90 days, but the last look was less than 10 minutes ago
    ok(tally.core, CheckPolls())
    assert len(list(tally.store.ballots(POLL))) == 4
    clock.advance(minutes=1, seconds=1)
    ok(tally.core, CheckPolls())
    assert list(tally.store.ballots(POLL)) == [] and len(list(tally.store.ballots(other))) == 1
    # Its partial counts too (the shards' checkpoints are read whole at each start).
    assert tally.store.partials("embedded", 1, POLL) == {}
    assert tally.store.partials("embedded", 1, other) != {}
    assert tally.store.copies_to_purge(clock()) == [other]  # POLL's is gone, not listed
    # The public proof is all still served, and holds.
    assert ok(tally.core, GetRecord(poll_id=POLL))[0] == record
    assert ok(tally.core, ProveInclusion(poll_id=POLL, tracker="TA1"))[0]["root"] == \
        record["root"]
    assert ok(tally.core, GetResult(poll_id=POLL))[0]["result"]["record"]["root"] == \
        record["root"]
    # Looked for at most every ten minutes; then the second poll's turn comes.
    clock.advance(days=30)
    ok(tally.core, CheckPolls())
    assert list(tally.store.ballots(other)) == []


def census_opened(poll_id: str = POLL) -> PollOpened:
    return opened(poll_id).model_copy(update={"electorate": "census"})


def test_a_census_poll_signs_its_eligible_people_and_voters(tally: Tally,
                                                            tally_key: SigningKey) -> None:
    """Closed and sealed, a census poll still waits for identity's count of its
    electorate; the signed reconciliation then names it beside the voters (three of the
    four ballots count: b voted twice). A redelivered count changes nothing."""
    assert tally.feed(census_opened(), *BALLOTS, sealed(4)) == []
    assert refused(tally.core, GetResult(poll_id=POLL))["code"] == "result_not_published"
    counted = ElectorateCounted(poll_id=POLL, eligible=5, counted_at=AT)
    assert types(tally.feed(counted)) == ["result.published.v1"]
    assert tally.feed(counted) == []
    signed = ok(tally.core, GetResult(poll_id=POLL))[0]
    reconciliation = signed["result"]["reconciliation"]
    assert (reconciliation["eligible"], reconciliation["voters"]) == (5, 3)
    assert signed["result"]["ballots_counted"] == 3
    tally_key.public.verify(b64url_decode(signed["signature"]),
                            canonical_json(signed["result"]))


def test_a_poll_open_to_all_signs_no_electorate(tally: Tally) -> None:
    """Anyone could sign in: no number of eligible people, and no wait for one (the v2
    result of such a poll is as it was: its voters are ballots_counted)."""
    assert types(tally.feed(opened(), *BALLOTS, sealed(4))) == ["result.published.v1"]
    reconciliation = ok(tally.core, GetResult(poll_id=POLL))[0]["result"]["reconciliation"]
    assert "eligible" not in reconciliation and "voters" not in reconciliation


def test_ballots_asked_for_again_ever_less_often_while_the_count_stands_still(
        tally: Tally, clock: Clock) -> None:
    """A sealed poll short of ballots whose count does not move (events lost, or the
    tally's workers stopped: the check cannot tell): asked after ASK_AFTER, again
    ASK_AFTER later, then after twice as long each time, up to ASK_AT_MOST; once the
    count moves, ASK_AFTER again."""
    assert tally.feed(opened(), *BALLOTS[:2], closed(), sealed(4)) == []
    assert ok(tally.core, CheckPolls())[0]["asked"] == []  # seen waiting from now

    def asks_within(seconds: float) -> list[float]:
        """When, in whole seconds from now, the checks of the next ``seconds`` ask."""
        at = []
        for s in range(1, int(seconds) + 1):
            clock.advance(seconds=1)
            if "ballots.missing.v1" in types(ok(tally.core, CheckPolls())[1]):
                at.append(s)
        return at

    step = ASK_AFTER.total_seconds()
    assert asks_within(8 * step) == [step, 2 * step, 4 * step, 8 * step]  # +10, 20, 40
    tally.feed(BALLOTS[2])  # the count moves (the next check, a second on, sees it) ...
    assert asks_within(step + 1) == [step + 1]  # ... and ASK_AFTER after that, asked
    # However long it stands, never longer than ASK_AT_MOST between two asks.
    waits = asks_within(4 * ASK_AT_MOST.total_seconds())
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert max(gaps) == ASK_AT_MOST.total_seconds() and len(waits) >= 4


def test_a_sealed_poll_left_unpublished_is_counted_and_alerted_once(
        tally: Tally, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """What the operator's "closed, not signed" alert reads (docs/operations.md): the
    polls waiting, as a gauge, every check; an error logged once the wait passes
    ALERT_AFTER, once a poll; both gone when the poll is signed."""
    assert tally.feed(opened(), *BALLOTS[:2], closed(), sealed(4)) == []

    def check() -> dict:
        return ok(tally.core, CheckPolls())[0]

    def alerts() -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.getMessage() == "sealed poll still unpublished"]

    def awaiting() -> float | None:
        return REGISTRY.get_sample_value("urne_tally_polls_awaiting")

    assert check()["waiting"] == 1 and awaiting() == 1
    clock.advance(seconds=ALERT_AFTER.total_seconds() - 1)
    check()
    assert alerts() == []  # not yet
    clock.advance(seconds=1)
    check()
    assert alerts() == ["sealed poll still unpublished"]
    clock.advance(seconds=ALERT_AFTER.total_seconds())
    check()
    assert len(alerts()) == 1  # once a poll, not every check
    assert types(tally.feed(*BALLOTS[2:])) == ["result.published.v1"]
    assert check()["waiting"] == 0 and awaiting() == 0


def test_the_ask_for_missing_ballots_says_what_each_shard_holds(
        tally: Tally, clock: Clock) -> None:
    """So the vote service sends again the ballots of the short shards, and of their
    short voter cells, only."""
    assert tally.feed(opened(), *BALLOTS[:2], closed(), sealed(4)) == []
    ok(tally.core, CheckPolls())
    clock.advance(seconds=ASK_AFTER.total_seconds())
    [asked] = ok(tally.core, CheckPolls())[1]
    # SHA-256("a") = ca978112 ca1bbdca..., SHA-256("b") = 3e23e816 0039594a...: bits
    # 32-63 end in hex a, so both voters are in cell 10 of 16.
    cells = [0] * 10 + [2] + [0] * 5
    assert (asked["type"], asked["payload"]) == ("ballots.missing.v1", {
        "poll_id": POLL, "received": 2, "sealed": 4, "received_by_shard": [2],
        "received_by_cell": [cells]})


def test_a_shard_counts_its_ballots_by_voter_cell_in_its_checkpoint() -> None:
    count = ShardCount(RULES)
    for b in BALLOTS:  # a and b (twice): cell 10 (above); c: SHA-256 2e7d2c03 a9507ae2: 2
        assert count.add(stored(b.ballots[0]))
    assert count.received == 4 and count.cells == [0, 0, 1] + [0] * 7 + [3] + [0] * 5
    again = ShardCount.from_state(RULES, count.state())
    assert (again.received, again.cells) == (4, count.cells)
    # Checkpointed before cells were counted, or counted otherwise: unknown, not zeros.
    for state in ({"tally": count.state()["tally"], "received": 4},
                  {**count.state(), "cells": [4]},
                  {**count.state(), "cells": [0] * 16}):
        assert ShardCount.from_state(RULES, state).cells is None


def test_a_poll_the_store_does_not_answer_for_does_not_stop_the_others_checks(
        tally: Tally, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """One sealed poll's reads time out: the check goes on to the others, and what it
    sent for them is kept; only when no poll can be checked is the store said away."""
    assert tally.feed(opened(), *BALLOTS[:2], sealed(4),
                      opened("poll-2"), sealed(1, "poll-2")) == []
    ok(tally.core, CheckPolls())
    clock.advance(seconds=ASK_AFTER.total_seconds())
    sheet = tally.store.sheet
    away = {POLL}

    def flaky(poll_id: str) -> object:
        if poll_id in away:
            raise StoreUnavailable("the store did not answer")
        return sheet(poll_id)

    monkeypatch.setattr(tally.store, "sheet", flaky)
    reply, events = ok(tally.core, CheckPolls())
    assert (reply["asked"], reply["waiting"]) == (["poll-2"], 2)
    assert [(e["type"], e["payload"]["poll_id"]) for e in events] == [
        ("ballots.missing.v1", "poll-2")]
    away.add("poll-2")
    problem = refused(tally.core, CheckPolls())
    assert (problem["status"], problem["code"]) == (503, "store_unavailable")


def test_a_lost_census_count_is_asked_for_again(tally: Tally, clock: Clock) -> None:
    """electorate.counted lost on the way: the check asks identity again, ASK_AFTER
    after it first saw the poll waiting, then no more often; once the count comes, the
    poll is signed and nothing more is asked."""
    assert tally.feed(census_opened(), *BALLOTS, sealed(4)) == []
    assert ok(tally.core, CheckPolls()) == ({"published": [], "asked": [], "waiting": 1}, [])
    clock.advance(seconds=ASK_AFTER.total_seconds())
    reply, events = ok(tally.core, CheckPolls())
    assert reply["asked"] == [POLL]
    assert [(e["type"], e["payload"]) for e in events] == [
        ("electorate.missing.v1", {"poll_id": POLL})]
    clock.advance(seconds=1)
    assert ok(tally.core, CheckPolls())[1] == []  # asked a second ago: not again
    clock.advance(seconds=ASK_AFTER.total_seconds())
    assert types(ok(tally.core, CheckPolls())[1]) == ["electorate.missing.v1"]
    assert types(tally.feed(ElectorateCounted(poll_id=POLL, eligible=3, counted_at=AT))) \
        == ["result.published.v1"]
    clock.advance(seconds=ASK_AFTER.total_seconds())
    assert "electorate.missing.v1" not in types(ok(tally.core, CheckPolls())[1])
