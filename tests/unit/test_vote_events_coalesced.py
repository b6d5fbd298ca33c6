"""A vote worker's held-back events as few messages (services/vote/intake.coalesce): what
the tally and identity learn from them is what the batches' own events said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from urne.contracts import unwrap, wrap
from urne.contracts.events import (
    BallotBoxSealedV2,
    BallotsRecorded,
    RecordedBallot,
    SignInListEntry,
    SignInListMarked,
)
from urne.services.vote.intake import PRODUCER, SIGN_IN_CHUNK, coalesce

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def ballot(voter: str, sequence: int = 1) -> RecordedBallot:
    return RecordedBallot(poll_id="p1", ballot_id=f"{voter}-{sequence}", tracker=f"T{voter}",
                          voter_key=voter, sequence=sequence, choice={"answer": "yes"},
                          channel="online", recorded_at=AT)


def recorded(shard: int, stored_at: datetime | None, *ballots: RecordedBallot) -> dict:
    return wrap(BallotsRecorded(ballots=list(ballots), shard=shard, stored_at=stored_at),
                PRODUCER)


def marked(*voters: str) -> dict:
    return wrap(SignInListMarked(voters=[SignInListEntry(poll_id="p1", voter_key=v,
                                                         channel="online") for v in voters]),
                PRODUCER)


def payloads(events: list[dict]) -> list[tuple[str, object]]:
    return [(env["type"], unwrap(env)[1]) for env in events]


def test_one_message_per_counting_shard_in_arrival_order_from_the_earliest_store() -> None:
    later = AT + timedelta(seconds=1)
    events = [recorded(0, later, ballot("a"), ballot("b")), marked("a", "b"),
              recorded(1, later, ballot("c")),
              recorded(0, AT, ballot("d"), ballot("a", 2)), marked("d", "a")]
    merged = payloads(coalesce(events))
    assert [kind for kind, _ in merged] == [BallotsRecorded.TYPE] * 2 + [SignInListMarked.TYPE]
    by_shard = {m.shard: m for _, m in merged if isinstance(m, BallotsRecorded)}
    assert [b.ballot_id for b in by_shard[0].ballots] == ["a-1", "b-1", "d-1", "a-2"]
    assert by_shard[0].stored_at == AT  # the earliest batch's, so the lag is not shortened
    assert [b.ballot_id for b in by_shard[1].ballots] == ["c-1"]
    assert by_shard[1].stored_at == later
    sign_in = merged[-1][1]
    assert isinstance(sign_in, SignInListMarked)
    assert [v.voter_key for v in sign_in.voters] == ["a", "b", "d"]  # each voter once


def test_a_ballot_sent_twice_is_announced_once_and_other_events_follow() -> None:
    seal = wrap(BallotBoxSealedV2(poll_id="p1", ballots_recorded=1, ballots_digest="0" * 64,
                                  sealed_at=AT), PRODUCER)
    merged = payloads(coalesce([recorded(2, AT, ballot("a")), seal,
                                recorded(2, AT, ballot("a"))]))
    assert [kind for kind, _ in merged] == [BallotsRecorded.TYPE, BallotBoxSealedV2.TYPE]
    first = merged[0][1]
    assert isinstance(first, BallotsRecorded)
    assert [b.ballot_id for b in first.ballots] == ["a-1"]


def test_a_ballot_from_an_older_producer_keeps_the_tally_on_its_own_time() -> None:
    merged = payloads(coalesce([recorded(0, AT, ballot("a")), recorded(0, None, ballot("b"))]))
    only = merged[0][1]
    assert isinstance(only, BallotsRecorded)
    assert only.stored_at is None  # the tally falls back to each ballot's recorded_at


def test_the_sign_in_list_stays_in_chunks() -> None:
    voters = [f"v{i}" for i in range(SIGN_IN_CHUNK + 5)]
    merged = payloads(coalesce([marked(*voters[:SIGN_IN_CHUNK]), marked(*voters[SIGN_IN_CHUNK:])]))
    assert [len(m.voters) for _, m in merged if isinstance(m, SignInListMarked)] == [
        SIGN_IN_CHUNK, 5]


def test_one_event_is_left_as_it_is() -> None:
    events = [recorded(0, AT, ballot("a"))]
    assert coalesce(events) == events
