"""Reading a quantile off the tally's lag histogram (``loadtests/lag.py``)."""

from __future__ import annotations

import math

from loadtests.lag import quantile_bound

BEFORE = {0.1: 10.0, 0.5: 10.0, 1.0: 10.0, math.inf: 10.0}  # cumulative, as served


def test_the_bucket_holding_the_quantile_of_what_came_between_two_readings() -> None:
    # 100 new observations: 90 under 0.1 s, 9 more under 0.5 s, 1 more under 1 s.
    after = {0.1: 100.0, 0.5: 109.0, 1.0: 110.0, math.inf: 110.0}
    assert quantile_bound(BEFORE, after, 0.50) == 0.1
    assert quantile_bound(BEFORE, after, 0.95) == 0.5
    assert quantile_bound(BEFORE, after, 0.99) == 0.5
    assert quantile_bound(BEFORE, after, 1.0) == 1.0


def test_nothing_observed_or_beyond_the_last_bound_gives_none() -> None:
    assert quantile_bound(BEFORE, BEFORE, 0.99) is None
    beyond = {0.1: 10.0, 0.5: 10.0, 1.0: 10.0, math.inf: 20.0}
    assert quantile_bound(BEFORE, beyond, 0.99) is None
