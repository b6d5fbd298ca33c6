"""How many vote workers ``urne loadtest`` starts when not told: one per two cores."""

from __future__ import annotations

import pytest

from loadtests.run import default_vote_workers, parse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4)])
def test_one_vote_worker_per_two_cores(cores: int, workers: int) -> None:
    assert default_vote_workers(cores) == workers


def test_the_option_defaults_to_the_machine_and_can_be_set() -> None:
    assert parse([]).vote_workers == default_vote_workers()
    assert parse(["--vote-workers", "3"]).vote_workers == 3
