"""Winners and ties for the methods that rank options and fill ``seats``.

Ties are never broken by chance or by an unpublished rule: a tie across the last
seat is reported, so that the rule the organiser published decides it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def tie_groups(ordered: Sequence[str], same: Callable[[str, str], bool]) -> list[list[str]]:
    """``ordered`` (best first) cut into runs of options that ``same`` says are tied."""
    groups: list[list[str]] = []
    for option in ordered:
        if groups and same(groups[-1][0], option):
            groups[-1].append(option)
        else:
            groups.append([option])
    return groups


def fill(groups: Sequence[Sequence[str]], seats: int) -> tuple[list[str], list[str]]:
    """(winners, tied): whole groups win while they fit in the seats; the group that
    straddles the last seat is ``tied`` (and its members are not winners)."""
    winners: list[str] = []
    for group in groups:
        free = seats - len(winners)
        if free <= 0:
            break
        if len(group) > free:
            return winners, list(group)
        winners.extend(group)
    return winners, []


def seats_result(ranking: Sequence[str], groups: Sequence[Sequence[str]], seats: int,
                 ballots: int) -> dict[str, Any]:
    """The ``ranking``, ``winners``, ``tied`` and ``outcome`` fields of a result;
    ``groups`` are the options that may win, best first, in tie groups."""
    if ballots == 0:
        return {"ranking": list(ranking), "winners": [], "tied": [], "outcome": "no_ballots"}
    winners, tied = fill(groups, seats)
    return {"ranking": list(ranking), "winners": winners, "tied": tied,
            "outcome": "tied" if tied else "decided"}
