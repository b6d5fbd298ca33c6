"""How long a shard worker's loop waits for the broker (urne/messaging/channels.py)."""

from __future__ import annotations

import pytest

from urne.messaging.channels import IDLE_WAIT_SECONDS, wait_before

pytestmark = pytest.mark.unit


def test_with_nothing_due_it_waits_the_idle_wait() -> None:
    assert wait_before(100.0) == IDLE_WAIT_SECONDS
    assert wait_before(100.0, None, None) == IDLE_WAIT_SECONDS


def test_it_waits_until_the_nearest_deadline() -> None:
    assert wait_before(100.0, 100.2, None, 100.05) == pytest.approx(0.05)


def test_a_deadline_passed_means_no_wait() -> None:
    assert wait_before(100.0, 99.0, 100.1) == 0.0


def test_far_deadlines_are_capped_so_a_stop_is_seen_soon() -> None:
    assert wait_before(100.0, 105.0, 200.0) == IDLE_WAIT_SECONDS
