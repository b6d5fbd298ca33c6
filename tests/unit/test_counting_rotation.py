"""When the counting streams rotate (urne.messaging.counting_rotation.plan): each step in
its turn, and an old generation deleted only once every shard's checkpoint left it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from urne.messaging.counting_rotation import Generation, Step, plan
from urne.messaging.counting_stream import (
    generation_of,
    position_of,
    rotated_to,
    stream_name,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def gen(n: int, bound: bool = True, at: datetime = T0) -> Generation:
    return Generation(n, at, bound)


def test_the_first_generation_is_recorded_then_marked_bound_at_once() -> None:
    assert plan([], [], T0, DAY, None, 2.0) == Step("open", 0)
    # Its streams are those the producers declared first: nothing to mark, no wait.
    assert plan([gen(0, bound=False)], [], T0, DAY, None, 2.0) == Step("mark", 0)
    assert plan([gen(0)], [], T0, DAY, None, 2.0) is None


def test_a_generation_opens_when_the_current_one_is_old_enough() -> None:
    assert plan([gen(0)], [0, 5], T0 + DAY - timedelta(seconds=1), DAY, None, 2.0) is None
    assert plan([gen(0)], [0, 5], T0 + DAY, DAY, None, 2.0) == Step("open", 1)


def test_a_new_generation_is_bound_then_marked_once_settled() -> None:
    generations = [gen(0), gen(1, bound=False, at=T0 + DAY)]
    assert plan(generations, [3, 4], T0 + DAY, DAY, None, 2.0) == Step("bind", 1)
    assert plan(generations, [3, 4], T0 + DAY, DAY, 1.9, 2.0) is None  # in flight: wait
    assert plan(generations, [3, 4], T0 + DAY, DAY, 2.0, 2.0) == Step("mark", 1)


def test_an_old_generation_goes_only_once_every_shard_left_it() -> None:
    generations = [gen(0), gen(1, at=T0 + DAY)]
    later = T0 + DAY + timedelta(hours=1)
    one_behind = [position_of(1, 7), position_of(0, 12)]
    assert plan(generations, one_behind, later, DAY, None, 2.0) is None
    assert plan(generations, [position_of(1, 7), position_of(1)], later, DAY, None,
                2.0) == Step("delete", 0)


def test_no_generation_opens_while_the_last_one_is_still_on_the_broker() -> None:
    """A shard slower than the rotation holds it back: two generations at most."""
    generations = [gen(0), gen(1, at=T0 + DAY)]
    behind = [position_of(0, 12), position_of(1, 3)]
    assert plan(generations, behind, T0 + 5 * DAY, DAY, None, 2.0) is None
    drained = [position_of(1, 12), position_of(1, 3)]
    assert plan(generations, drained, T0 + 5 * DAY, DAY, None, 2.0) == Step("delete", 0)
    assert plan(generations[1:], drained, T0 + 5 * DAY, DAY, None, 2.0) == Step("open", 2)


def test_two_generations_behind_keeps_both_and_deletes_in_order() -> None:
    generations = [gen(0), gen(1), gen(2)]
    assert plan(generations, [position_of(0, 9), position_of(2, 1)], T0, DAY, None,
                2.0) is None
    assert plan(generations, [position_of(1, 9), position_of(2, 1)], T0, DAY, None,
                2.0) == Step("delete", 0)
    assert plan(generations[1:], [position_of(2), position_of(2, 1)], T0, DAY, None,
                2.0) == Step("delete", 1)


def test_positions_name_their_generation_and_stream() -> None:
    assert generation_of(position_of(3, 41)) == 3 and position_of(3, 41) % 10**12 == 41
    assert position_of(1) > position_of(0, 10**9)  # positions grow across generations
    assert stream_name(5) == "urne.counting.shard-005"  # the first keeps its old name
    assert stream_name(5, 2) == "urne.counting.shard-005.g2"


def test_only_a_rotation_marker_moves_a_shard_on() -> None:
    marker = {"type": "counting.rotated.v1", "payload": {"shard": 0, "generation": 2}}
    assert rotated_to(marker) == 2
    assert rotated_to({**marker, "type": "ballots.recorded.v1"}) is None
    assert rotated_to({**marker, "payload": {"generation": 0}}) is None
    assert rotated_to({**marker, "payload": {"generation": "2"}}) is None
    assert rotated_to({"refused": "unsigned"}) is None
    assert rotated_to([1]) is None
