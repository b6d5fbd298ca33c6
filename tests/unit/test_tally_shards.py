"""Counting by shard, as the tally workers do it (services/tally/shards.py, domain.py).

For random ballot streams of every voting method, with revotes, ballots delivered twice,
ballots sent again out of order (``ballots.missing``) and workers that crash and resume
from their last checkpoint: the merged partial counts of the shards equal the recount
of the tally's copy, which equals the naive reference counter of
``test_counting_properties``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_counting_properties import (
    FAST,
    approval_rules,
    budget_rules,
    judgment_rules,
    ranking_rules,
    reference,
    streams,
    yes_no_rules,
)
from urne.counting import count
from urne.counting.rules import PollRules, YesNoAbstainRules
from urne.messaging.counting_stream import counting_shard
from urne.services.tally.domain import ShardCount, StoredBallot, counted, merge

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 30, tzinfo=UTC)
YES_NO = YesNoAbstainRules(method="yes_no_abstain", question="?")


def voter_key(voter: int) -> str:
    # Spread over the first 32 bits, which pick the shard; the rest is filler.
    return f"{(voter * 2654435761) % 2**32:08x}" + "ab" * 28


def ballots_of(events: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> list[StoredBallot]:
    """The stored ballots of a stream of (voter, sent, normalised): each new ballot of a
    voter gets the next sequence; a repeated event is the same ballot again."""
    out: list[StoredBallot] = []
    sequences: dict[int, int] = {}
    previous: tuple[int, dict[str, Any], dict[str, Any]] | None = None
    for event in events:
        voter, _, choice = event
        if event is previous:  # streams() repeats the very same tuple
            out.append(out[-1])
            continue
        sequences[voter] = sequences.get(voter, 0) + 1
        seq = sequences[voter]
        out.append(StoredBallot("p", voter_key(voter), seq, f"b{voter}-{seq}",
                                f"t{voter}-{seq}", choice, "web", AT))
        previous = event
    return out


class Worker:
    """One shard's counting, as ``ShardCounters`` does it, against an in-memory copy
    and checkpoint; ``crash`` forgets everything not checkpointed."""

    def __init__(self, rules: PollRules, copy: dict[tuple[str, int], StoredBallot]):
        self.rules, self.copy = rules, copy
        self.checkpoint: tuple[int, dict[str, Any] | None] = (0, None)
        self.count: ShardCount | None = None
        self.position = 0

    def crash(self) -> None:
        self.count = None

    def apply(self, offset: int, ballot: StoredBallot, checkpoint: bool) -> None:
        if self.count is None:  # resume: the checkpoint, and the copy before it
            self.position, state = self.checkpoint
            self.count = (ShardCount.from_state(self.rules, json.loads(json.dumps(state)))
                          if state else ShardCount(self.rules))
            for b in self.copy.values():
                if b.position < self.position:
                    self.count.remember(b)
        if offset < self.position:
            return
        placed = replace(ballot, position=offset)
        if self.count.add(placed):
            self.copy[(placed.voter_key, placed.sequence)] = placed  # an upsert
        self.position = offset + 1
        if checkpoint:
            self.checkpoint = (self.position, self.count.state())


def check(data: st.DataObject, rules_strategy: st.SearchStrategy[PollRules]) -> None:
    rules, events, _ = data.draw(streams(rules_strategy))
    shards = data.draw(st.sampled_from([1, 2, 4, 8]))
    ballots = ballots_of(events)
    # Each shard's stream: its ballots in the order they came, then some sent again (the
    # vote service answering ballots.missing), in any order.
    stream: dict[int, list[StoredBallot]] = {s: [] for s in range(shards)}
    for b in ballots:
        stream[counting_shard(b.voter_key, shards)].append(b)
    for s in stream:
        again = data.draw(st.lists(st.sampled_from(stream[s]), max_size=5)) if stream[s] else []
        stream[s] += again
    copies = {s: {} for s in range(shards)}  # type: dict[int, dict[tuple[str, int], StoredBallot]]
    workers = {s: Worker(rules, copies[s]) for s in range(shards)}
    for s, messages in stream.items():
        offset, crashes = 0, 0
        while offset < len(messages):
            workers[s].apply(offset, messages[offset], checkpoint=data.draw(st.booleans()))
            offset += 1
            if crashes < 3 and data.draw(st.integers(0, 6)) == 0:
                crashes += 1  # a crash: back to the checkpoint
                workers[s].crash()
                offset = workers[s].checkpoint[0]
        if workers[s].count is not None:  # the last batch's checkpoint
            workers[s].checkpoint = (offset, workers[s].count.state())
    states = [w.checkpoint[1] for w in workers.values() if w.checkpoint[1] is not None]
    order = data.draw(st.permutations(states))
    merged = merge(rules, order)
    copy = [b for c in copies.values() for b in c.values()]
    latest = {b.voter_key: b for b in sorted(ballots, key=lambda b: b.sequence)}
    expected = reference(rules, [b.choice for b in latest.values()])
    recount = count(rules, [b.choice for b in counted(copy)])
    assert merged.tally.result() == recount == expected
    assert merged.received == len(copy) == len({(b.voter_key, b.sequence) for b in ballots})


@FAST
@given(st.data())
def test_yes_no_abstain_by_shard(data: st.DataObject) -> None:
    check(data, yes_no_rules())


@FAST
@given(st.data())
def test_approval_by_shard(data: st.DataObject) -> None:
    check(data, approval_rules())


@FAST
@given(st.data())
def test_ranking_by_shard(data: st.DataObject) -> None:
    check(data, ranking_rules())


@FAST
@given(st.data())
def test_majority_judgment_by_shard(data: st.DataObject) -> None:
    check(data, judgment_rules())


@FAST
@given(st.data())
def test_budget_by_shard(data: st.DataObject) -> None:
    check(data, budget_rules())


def test_a_late_older_ballot_is_seen_but_not_counted_and_a_repeat_changes_nothing() -> None:
    rules = YES_NO
    key = voter_key(1)
    first = StoredBallot("p", key, 1, "b1", "t1", {"answer": "yes"}, "web", AT)
    second = StoredBallot("p", key, 2, "b2", "t2", {"answer": "no"}, "web", AT)
    running = ShardCount(rules)
    assert running.add(second) and running.add(first)
    assert running.result()["counts"] == {"yes": 0, "no": 1, "abstain": 0}
    assert not running.add(second) and not running.add(first)
    assert (running.ballots, running.received) == (1, 2)


def test_a_restored_partial_removes_the_ballot_a_revote_replaces() -> None:
    rules = YES_NO
    key = voter_key(2)
    first = StoredBallot("p", key, 1, "b1", "t1", {"answer": "yes"}, "web", AT)
    running = ShardCount(rules)
    running.add(first)
    restored = ShardCount.from_state(rules, json.loads(json.dumps(running.state())))
    restored.remember(first)  # from the copy, before the checkpoint
    restored.add(StoredBallot("p", key, 2, "b2", "t2", {"answer": "no"}, "web", AT))
    assert restored.result()["counts"] == {"yes": 0, "no": 1, "abstain": 0}
    # Without the voter's earlier ballot, the revote would count twice: the test
    # above would catch a restore that forgot to remember.
    forgetful = ShardCount.from_state(rules, running.state())
    forgetful.add(StoredBallot("p", key, 2, "b2", "t2", {"answer": "no"}, "web", AT))
    assert forgetful.result()["counts"] == {"yes": 1, "no": 1, "abstain": 0}
