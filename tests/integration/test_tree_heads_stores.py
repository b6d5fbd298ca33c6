"""The log grows during the vote on both stores (urne.record.v2): on SQLite from the
tally's own copy, as in the embedded profile; on Cassandra from the rows a tally worker's
counters wrote below each shard's checkpoint (a counting stream, here a list), as in the
distributed profile. Intervals are signed as tree heads, publication appends the rest,
and the published record, its result and its heads pass the auditor's verifier."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.integration.test_tally_heals import RULES, Counting, _to
from tests.unit.helpers import Clock, deliver, ok, types
from urne.audit import heads as audit_heads
from urne.audit.verify import Documents, verify
from urne.contracts import wrap
from urne.contracts.commands import (
    CastBallot,
    CheckPolls,
    GetRecord,
    GetResult,
    GetTreeHeads,
    ProveConsistency,
)
from urne.contracts.events import PollClosed, PollOpened
from urne.counting import rules_hash
from urne.crypto.keys import generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.record import log
from urne.services.tally.adapters.sqlite_store import SqliteTallyStore
from urne.services.tally.handlers import TallyHandlers
from urne.services.tally.shards import ShardCounters
from urne.services.vote.handlers import VoteHandlers
from urne.services.vote.intake import BallotIntake

SHARDS = 2


def test_the_log_grows_signed_and_the_record_extends_it(backend: Callable[[str], Any],
                                                         tmp_path: Path) -> None:
    generate_keys(tmp_path)
    identity, signer = load_signing_key(tmp_path, "identity-token"), \
        load_signing_key(tmp_path, "tally-result")
    clock = Clock()
    vote_store, tally_store = backend("vote"), backend("tally")
    vote = VoteHandlers(vote_store).core()
    streamed = not isinstance(tally_store, SqliteTallyStore)
    stream = f"test-{uuid.uuid4().hex}"  # checkpoints of its own in a shared keyspace
    tally = TallyHandlers(tally_store, signer, clock=clock, stream=stream, shards=SHARDS,
                          counted_by_workers=streamed, head_min=3,
                          head_every=timedelta(minutes=1)).core()
    counting = Counting(tally, ShardCounters(tally_store, stream, SHARDS) if streamed
                        else None)
    intake = BallotIntake(vote_store, TokenVerifier(identity.public), shards=1,
                          counting_shards=SHARDS, max_ballots=5, clock=clock)
    poll_id = uuid.uuid4().hex
    opened = PollOpened(poll_id=poll_id, consultation_id="c", rules=RULES,
                        rules_hash=rules_hash(RULES), opened_at=clock())
    deliver(vote, opened)
    deliver(tally, opened)
    issuer = TokenIssuer(identity)

    def cast(voter: int, answer: str) -> dict[str, Any]:
        token = issuer.voting_token(f"{voter:064x}", poll_id)[0]
        envelope = wrap(CastBallot(poll_id=poll_id, voting_token=token,
                                   choice={"answer": answer}, ballot_id=uuid.uuid4().hex,
                                   tracker=uuid.uuid4().hex[:16], received_at=clock()),
                        "gateway")
        outcome = intake.record([envelope], 0)
        assert outcome.replies[0] is not None and outcome.replies[0]["ok"], outcome.replies
        counting(outcome.events)
        return outcome.replies[0]["data"]

    def tick() -> list[int]:
        clock.advance(minutes=1)
        ok(tally, CheckPolls())
        return [h["head"]["size"] for h in ok(tally, GetTreeHeads(poll_id=poll_id))[0]["heads"]]

    receipts = [cast(v, "yes") for v in range(6)]
    assert tick() == [6]
    receipts += [cast(1, "no"), cast(2, "no"), cast(6, "yes")]  # two revotes
    assert tick() == [6, 9]
    receipts += [cast(7, "no")]  # too few for an interval: logged at publication
    assert tick() == [6, 9]
    during = ok(tally, GetTreeHeads(poll_id=poll_id))[0]["heads"]
    keys = {"keys": [{"name": "tally-result", "kid": signer.public.kid,
                      "public_key": signer.public.raw_b64url()}]}
    proof = ok(tally, ProveConsistency(poll_id=poll_id, first=6))[0]  # from the stored tiles
    assert all(c.ok for c in audit_heads.check(keys, during[0], during[1], proof)), proof

    closed = PollClosed(poll_id=poll_id, closed_at=clock())
    deliver(tally, closed)
    [marker] = deliver(vote, closed)
    published = _to(tally, intake.record([marker], 0).events)  # every ballot is counted
    assert types(published) == ["result.published.v1"]

    record = ok(tally, GetRecord(poll_id=poll_id, limit=10_000))[0]
    signed = ok(tally, GetResult(poll_id=poll_id))[0]
    heads = ok(tally, GetTreeHeads(poll_id=poll_id))[0]["heads"]
    assert signed["result"]["record"]["heads"] == [6, 9, 10]
    assert [h["head"]["size"] for h in heads] == [6, 9, 10]  # and one at publication
    for saved in during:
        proof = ok(tally, ProveConsistency(poll_id=poll_id, first=saved["head"]["size"]))[0]
        assert all(c.ok for c in audit_heads.check(keys, saved, heads[-1], proof)), proof
    assert sorted(e["tracker"] for e in record["entries"]) == \
        sorted(r["tracker"] for r in receipts)
    assert len(log.counted(record["entries"])) == signed["result"]["ballots_counted"] == 8
    public = signer.public
    docs = Documents(keys={"keys": [{"name": "tally-result", "kid": public.kid,
                                     "public_key": public.raw_b64url()}]},
                     rules={"poll_id": poll_id, "rules": RULES.model_dump(mode="json"),
                            "rules_hash": rules_hash(RULES)},
                     record=record, signed=signed, heads=heads)
    checks = verify(docs, public.kid)
    assert [(c.name, c.ok) for c in checks] == [
        ("signature", True), ("rules", True), ("record", True), ("tally", True),
        ("heads", True)], checks
    assert poll_id not in tally_store.logging()  # published: the log is whole
