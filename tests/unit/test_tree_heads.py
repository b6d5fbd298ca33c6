"""The log grows during the vote (urne.record.v2): the tally appends an interval of the
ballots it has counted at most every ``head_every``, once ``head_min`` are ready, and
signs a tree head over it; publication appends the rest. The signed record extends every
head, which the verifier checks; a stop between an append and its signature heals, and a
head the log no longer extends keeps the result from being signed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.audit_schema import conforms
from tests.unit.helpers import Clock, deliver, ok, refused, service_db
from tests.unit.test_audit_verify import keys_of, resign
from tests.unit.test_tally import RULES, closed, opened, recorded
from urne.audit import heads
from urne.audit.verify import Documents, verify
from urne.contracts.commands import (
    CheckPolls,
    GetRecord,
    GetResult,
    GetTreeHeads,
    ProveConsistency,
)
from urne.contracts.events import BallotBoxSealedV2, BallotsRecorded
from urne.counting import rules_hash
from urne.crypto.keys import TALLY_RESULT_KEY, SigningKey, b64url, generate_keys, load_signing_key
from urne.messaging.kernel import ServiceCore
from urne.record import log, merkle
from urne.record.canonical import ballot_set_digest, canonical_json
from urne.services.tally.adapters.sqlite_store import SqliteTallyStore
from urne.services.tally.handlers import TallyHandlers

pytestmark = pytest.mark.unit

POLL = "poll-1"


class Tally:
    def __init__(self, path: Path, key: SigningKey, clock: Clock) -> None:
        self.store = SqliteTallyStore(service_db(path / "tally.db", "tally"))
        self.clock = clock
        self.core: ServiceCore = TallyHandlers(
            self.store, key, clock=clock, head_min=2, head_every=timedelta(minutes=1)).core()
        self.ballots: list = []
        deliver(self.core, closed())
        deliver(self.core, opened())

    def vote(self, *ballots: tuple[str, int, str]) -> None:
        recorded_ = [recorded(v, s, answer) for v, s, answer in ballots]
        self.ballots += recorded_
        deliver(self.core, BallotsRecorded(ballots=recorded_))

    def tick(self) -> list[dict]:
        self.clock.advance(minutes=1)
        ok(self.core, CheckPolls())
        return ok(self.core, GetTreeHeads(poll_id=POLL))[0]["heads"]

    def seal(self) -> list[dict]:
        ids = [b.ballot_id for b in self.ballots]
        return deliver(self.core, BallotBoxSealedV2(
            poll_id=POLL, ballots_recorded=len(ids), ballots_digest=ballot_set_digest(ids),
            sealed_at=self.clock()))


@pytest.fixture
def tally(tmp_path: Path, tally_key: SigningKey, clock: Clock) -> Tally:
    return Tally(tmp_path, tally_key, clock)


def documents(tally: Tally, key: SigningKey) -> Documents:
    return Documents(
        keys=keys_of(key),
        rules={"poll_id": POLL, "rules": RULES.model_dump(mode="json"),
               "rules_hash": rules_hash(RULES)},
        record=ok(tally.core, GetRecord(poll_id=POLL, limit=10_000))[0],
        signed=ok(tally.core, GetResult(poll_id=POLL))[0],
        heads=ok(tally.core, GetTreeHeads(poll_id=POLL))[0]["heads"])


def test_the_log_grows_by_signed_intervals_and_the_record_extends_them(
        tally: Tally, tally_key: SigningKey) -> None:
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"), ("c", 1, "no"))
    heads = tally.tick()
    assert [h["head"]["size"] for h in heads] == [3]
    assert heads[0]["head"]["issued_at"].endswith(":00+00:00")  # to the minute

    tally.vote(("b", 2, "no"), ("d", 1, "yes"))
    assert [h["head"]["size"] for h in tally.tick()] == [3, 5]

    # e's revote comes before e's first ballot (sent again later, say): it waits until
    # its voter's ballots are all here; one ballot alone is too few for an interval.
    tally.vote(("e", 2, "no"), ("f", 1, "yes"))
    assert [h["head"]["size"] for h in tally.tick()] == [3, 5]
    tally.vote(("e", 1, "yes"))
    assert [h["head"]["size"] for h in tally.tick()] == [3, 5, 8]
    tally.vote(("g", 1, "yes"))  # one more: logged at publication
    assert [h["head"]["size"] for h in tally.tick()] == [3, 5, 8]

    assert [e["type"] for e in tally.seal()] == ["result.published.v1"]
    result = ok(tally.core, GetResult(poll_id=POLL))[0]["result"]
    assert result["record"]["heads"] == [3, 5, 8, 9]
    assert (result["ballots_received"], result["ballots_counted"]) == (9, 7)
    entries = ok(tally.core, GetRecord(poll_id=POLL))[0]["entries"]
    by_tracker = {e["tracker"]: e for e in entries}
    assert by_tracker["TB2"]["supersedes"] == "TB1" and by_tracker["TE2"]["supersedes"] == "TE1"
    assert [e["tracker"] for e in entries[5:8]] == ["TE1", "TE2", "TF1"]
    assert {e["tracker"] for e in log.counted(entries)} == {"TA1", "TB2", "TC1", "TD1",
                                                            "TE2", "TF1", "TG1"}

    checks = verify(documents(tally, tally_key), tally_key.public.kid)
    assert [(c.name, c.ok) for c in checks] == [("signature", True), ("rules", True),
                                                ("record", True), ("tally", True),
                                                ("heads", True)], checks


def test_a_head_saved_during_the_vote_catches_a_rewritten_log(
        tally: Tally, tally_key: SigningKey) -> None:
    """An operator who rewrites the log after a head was saved, and signs the result
    again over the rewritten log, is caught by whoever saved the head."""
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"), ("c", 1, "no"))
    saved = tally.tick()[0]
    tally.vote(("d", 1, "yes"), ("e", 1, "no"))
    tally.seal()
    docs = documents(tally, tally_key)
    # The log as it stands verifies with the saved head too.
    held = Documents(**{**docs.__dict__, "heads": None, "saved_heads": [saved]})
    assert all(c.ok for c in verify(held))
    # Rewritten: c's ballot changed, the chain and the tree made again, all re-signed
    # with the tally's key.
    forged = resign(Documents(**{**held.__dict__, "record": {
        **held.record, "entries": [{**e, "choice": {"answer": "yes"}} if e["tracker"] == "TC1"
                                   else e for e in held.record["entries"]]}}), tally_key)
    forged.signed["result"]["record"]["heads"] = [3, 5]
    forged.signed["signature"] = b64url(tally_key.sign(canonical_json(forged.signed["result"])))
    forged = Documents(**{**forged.__dict__, "saved_heads": [saved]})
    [heads] = [c for c in verify(forged) if c.name == "heads"]
    assert not heads.ok and "rewritten after it was signed" in heads.detail
    assert [c.name for c in verify(forged) if not c.ok] == ["heads"]


def test_a_stop_between_an_append_and_its_signature_heals(tally: Tally) -> None:
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"))
    tally.tick()
    with tally.store.db.tx() as tx:
        tx.execute("DELETE FROM tree_heads")
    assert [h["head"]["size"] for h in tally.tick()] == [2]


def test_a_head_the_log_no_longer_extends_withholds_the_result(tally: Tally) -> None:
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"))
    [head] = tally.tick()
    head["head"]["root"] = "00" * 32
    with tally.store.db.tx() as tx:
        tx.execute("DELETE FROM tree_heads")
    tally.store.save_tree_head(POLL, 2, head)
    assert tally.seal() == []
    assert "the tree head signed at 2 entries is not the log's prefix" in \
        (tally.store.sheet(POLL).withheld or "")


def test_a_light_client_follows_the_log_by_consistency_proofs(
        tally: Tally, tally_key: SigningKey) -> None:
    """Whoever saved a head checks each later one by a few hashes (``urne audit
    head``), during the vote and after the close, without the record."""
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"), ("c", 1, "no"))
    saved = tally.tick()[0]
    tally.vote(("b", 2, "no"), ("d", 1, "yes"), ("e", 1, "no"))
    first_later = tally.tick()[-1]
    proof = ok(tally.core, ProveConsistency(poll_id=POLL, first=3))[0]
    assert (proof["first"], proof["second"], proof["second_root"]) == \
        (3, 6, first_later["head"]["root"])
    assert proof["path"]  # 3 is not a power of two: the proof is not empty
    checks = heads.check(keys_of(tally_key), saved, first_later, proof, tally_key.public.kid)
    assert [(c.name, c.ok) for c in checks] == [("saved head", True), ("latest head", True),
                                                ("consistency", True)], checks
    assert conforms("consistency_proof", proof) == []
    assert conforms("tree_heads", ok(tally.core, GetTreeHeads(poll_id=POLL))[0]) == []
    assert conforms("signed_tree_head", {**saved, "head": {**saved["head"], "size": 0}}) != []

    tally.vote(("f", 1, "yes"))
    tally.seal()  # the rest is logged, and the last head signed, at publication
    latest = ok(tally.core, GetTreeHeads(poll_id=POLL))[0]["heads"][-1]
    assert latest["head"]["size"] == 7
    for held in (saved, first_later):
        proof = ok(tally.core, ProveConsistency(poll_id=POLL,
                                                first=held["head"]["size"]))[0]
        assert proof["second"] == 7
        assert all(c.ok for c in heads.check(keys_of(tally_key), held, latest, proof))
    same = ok(tally.core, ProveConsistency(poll_id=POLL, first=7, second=7))[0]
    assert same["path"] == [] and all(
        c.ok for c in heads.check(keys_of(tally_key), latest, latest, same))


def test_a_consistency_proof_is_asked_between_signed_sizes(tally: Tally) -> None:
    assert refused(tally.core, ProveConsistency(poll_id=POLL, first=1))["code"] == \
        "tree_head_not_found"  # nothing signed yet
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"), ("c", 1, "no"))
    tally.tick()
    tally.vote(("d", 1, "yes"), ("e", 1, "no"))
    tally.tick()
    error = refused(tally.core, ProveConsistency(poll_id=POLL, first=4))
    assert error["code"] == "tree_head_not_found" and "3, 5" in error["detail"]
    assert refused(tally.core, ProveConsistency(poll_id=POLL, first=3, second=4))["code"] == \
        "tree_head_not_found"
    assert refused(tally.core, ProveConsistency(poll_id=POLL, first=5, second=3))["code"] == \
        "invalid_request"
    assert refused(tally.core, ProveConsistency(poll_id="nope", first=3))["code"] == \
        "poll_not_found"


def test_a_stored_log_that_no_longer_extends_its_heads_serves_no_proof(
        tally: Tally) -> None:
    """An operator who rewrites the stored tree under signed heads: the tally refuses
    to serve a proof (and logs the alarm) rather than one that would not verify."""
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"), ("c", 1, "no"))
    tally.tick()
    tally.vote(("d", 1, "yes"), ("e", 1, "no"))
    tally.tick()
    with tally.store.db.tx() as tx:
        tx.execute("UPDATE record_tiles SET hashes = ? WHERE level = 0",
                   (bytes(32 * 5),))
    error = refused(tally.core, ProveConsistency(poll_id=POLL, first=3))
    assert (error["code"], error["status"]) == ("record_unavailable", 503)


def test_a_head_re_signed_over_a_rewritten_log_fails_the_light_client(
        tally: Tally, tally_key: SigningKey) -> None:
    """The operator holds the tally's key, rewrites the log's first entries and signs a
    head over it: the proof it can serve cannot link the saved head to it."""
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"), ("c", 1, "no"))
    saved = tally.tick()[0]
    tally.vote(("d", 1, "yes"), ("e", 1, "no"))
    honest = tally.tick()[-1]
    leaves = [merkle.leaf_hash(f"forged {i}".encode()) for i in range(5)]
    forged_head = {**honest["head"], "root": merkle.root(leaves).hex()}
    forged = {**honest, "head": forged_head,
              "signature": b64url(tally_key.sign(canonical_json(forged_head)))}
    proof = {"poll_id": POLL, "first": 3, "second": 5, "second_root": forged_head["root"],
             "path": [h.hex() for h in merkle.consistency_proof_of(3, leaves)]}
    [*signed, consistency] = heads.check(keys_of(tally_key), saved, forged, proof)
    assert all(c.ok for c in signed)  # both are the tally's signatures
    assert not consistency.ok and "rewritten after the saved head" in consistency.detail


def test_the_light_client_checks_who_signed_and_which_proof(
        tally: Tally, tally_key: SigningKey, tmp_path: Path) -> None:
    tally.vote(("a", 1, "yes"), ("b", 1, "yes"), ("c", 1, "no"))
    saved = tally.tick()[0]
    tally.vote(("d", 1, "yes"), ("e", 1, "no"))
    latest = tally.tick()[-1]
    proof = ok(tally.core, ProveConsistency(poll_id=POLL, first=3))[0]
    keys = keys_of(tally_key)

    generate_keys(tmp_path / "other")
    other = load_signing_key(tmp_path / "other", TALLY_RESULT_KEY)
    stranger = {**latest, "signature": b64url(other.sign(canonical_json(latest["head"])))}
    checks = heads.check(keys, saved, stranger, proof)
    assert [c.name for c in checks if not c.ok] == ["latest head"]
    assert "does not verify" in checks[1].detail
    pinned = heads.check(keys, saved, latest, proof, pinned_kid="another-kid")
    assert "not the pinned another-kid" in pinned[0].detail
    elsewhere = {**latest, "head": {**latest["head"], "poll_id": "poll-2"}}
    elsewhere["signature"] = b64url(tally_key.sign(canonical_json(elsewhere["head"])))
    assert "not of one poll" in heads.check(keys, saved, elsewhere, proof)[-1].detail
    assert "not between these two heads" in heads.check(
        keys, saved, latest, {**proof, "first": 5})[-1].detail
    assert "does not read" in heads.check(
        keys, saved, latest, {**proof, "path": ["zz"]})[-1].detail
    assert not heads.check(keys, saved, latest, {**proof, "path": proof["path"][1:]})[-1].ok
