"""A vote batch that failed halfway on Cassandra heals when it is decided again.

Cassandra writes a ballot's row and its id in the index (what the seal counts) as
separate mutations: a timeout may leave the row stored and its index row not. The
batch is then retried (nothing was acked), finds the ballot stored, and answers with
its receipt: it must also write the index row again, or the seal counts one ballot
fewer than the tally and the result is withheld for good. The same for a paper mark
and the index the retention purge finds it by."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import CassandraRun
from tests.unit.helpers import Clock, deliver
from urne.contracts import wrap
from urne.contracts.commands import CastBallot, CastPaperMark
from urne.contracts.events import BallotBoxClosed, PollOpened
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.record.canonical import ballot_set_digest
from urne.services.vote.adapters.cassandra_store import CassandraVoteStore
from urne.services.vote.domain import Ballot
from urne.services.vote.handlers import VoteHandlers
from urne.services.vote.intake import BallotIntake
from urne.storage.cassandra import StoreUnavailable

pytestmark = pytest.mark.integration

RULES = YesNoAbstainRules(method="yes_no_abstain", question="A cycle lane on Main Street?")


class IndexLost(CassandraVoteStore):
    """The first write of ballots stores their rows, loses their index rows, and fails
    as a timeout would (``StoreUnavailable``); every later write goes through."""

    lose = True

    def _index_rows(self, timed: list[tuple[Ballot, int]]) -> list[tuple[Any, tuple[Any, ...]]]:
        return [] if self.lose else super()._index_rows(timed)

    def add_ballots(self, ballots: list[Ballot], again: Sequence[Ballot] = ()) -> None:
        super().add_ballots(ballots, again)
        if self.lose:
            self.lose = False
            raise StoreUnavailable("the write timed out halfway")


def test_a_batch_that_failed_halfway_writes_its_index_when_retried(
        cassandra: CassandraRun, tmp_path: Path) -> None:
    generate_keys(tmp_path)
    identity_key = load_signing_key(tmp_path, "identity-token")
    clock = Clock()
    store = IndexLost(cassandra.session, cassandra.keyspaces["vote"])
    core = VoteHandlers(store).core()
    poll_id = uuid.uuid4().hex
    deliver(core, PollOpened(poll_id=poll_id, consultation_id="c", rules=RULES,
                             rules_hash=rules_hash(RULES), opened_at=clock()))
    intake = BallotIntake(store, TokenVerifier(identity_key.public), shards=1,
                          counting_shards=1, max_ballots=5, clock=clock)
    issuer = TokenIssuer(identity_key)
    ballots = [wrap(CastBallot(poll_id=poll_id,
                               voting_token=issuer.voting_token(f"{i:064x}", poll_id)[0],
                               choice={"answer": "yes"}, ballot_id=uuid.uuid4().hex,
                               tracker=uuid.uuid4().hex[:16], received_at=clock()), "gateway")
               for i in range(3)]
    paper_voter = "e" * 64
    mark = wrap(CastPaperMark(poll_id=poll_id, voting_token=issuer.voting_token(
        paper_voter, poll_id, channel="paper", paper_mark=True)[0], mark_id=uuid.uuid4().hex,
        received_at=clock()), "gateway")

    with pytest.raises(StoreUnavailable):
        intake.record([*ballots, mark], 0)
    assert list(store.ballot_ids(poll_id)) == []  # the rows are there, the index is not
    assert store.ballots_of(poll_id, [paper_voter])  # the mark's row too

    retried = intake.record([*ballots, mark], 0)  # redelivered: nothing was acked
    ids = [r["data"]["ballot_id"] for r in retried.replies if r and "ballot_id" in r["data"]]
    assert sorted(ids) == sorted(b["payload"]["ballot_id"] for b in ballots)
    assert sorted(store.ballot_ids(poll_id)) == sorted(ids)
    marks = cassandra.session.execute(
        f"SELECT voter_key FROM {cassandra.keyspaces['vote']}.paper_marks "
        "WHERE poll_id = %s AND bucket = %s", (poll_id, int(paper_voter[:8], 16) % 128))
    assert [r.voter_key for r in marks] == [paper_voter]

    sealed = intake.record([wrap(BallotBoxClosed(poll_id=poll_id,
                                                 closed_at=datetime.now(UTC)), "vote")], 0)
    [seal] = [e["payload"] for e in sealed.events if e["type"] == "ballot_box.sealed.v2"]
    assert (seal["ballots_recorded"], seal["ballots_digest"]) == (3, ballot_set_digest(ids))
