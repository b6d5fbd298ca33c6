"""Ranking with points per rank (Borda by default): rank 1 to ``max_ranks``
options, best first; rank r earns ``rank_points()[r - 1]``; the ``seats`` options
with the most points win.

An option needs more than 0 points to win (the organiser may give 0 points to the
last ranks). Equal points are a tie, reported as such: first preferences are
published but break nothing, since the rules do not say they would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from urne.counting import seats
from urne.counting.ballots import between, body, id_list
from urne.counting.derived import derived
from urne.counting.rules import RankingRules
from urne.counting.tally import Tally, Vector, id_positions

SHAPE = '{"ranking": [option ids, best first]}'


@dataclass(frozen=True)
class _Plan:
    ids: tuple[str, ...]
    index: dict[str, int]
    points: tuple[int, ...]

    @classmethod
    def of(cls, rules: RankingRules) -> _Plan:
        ids = tuple(o.id for o in rules.options)
        return cls(ids, {option: i for i, option in enumerate(ids)}, rules.rank_points())


def _plan(rules: RankingRules) -> _Plan:
    return derived(rules, "ranking", _Plan.of)


def validate(rules: RankingRules, choice: Mapping[str, Any]) -> dict[str, Any]:
    ranking = id_list(body(choice, rules.method, "ranking", SHAPE), _plan(rules).index,
                      "option", "ranking")
    between(len(ranking), 1, rules.max_ranks, "options to rank")
    return {"ranking": list(ranking)}


class RankingTally(Tally[RankingRules]):
    method = "ranking"

    def _layout(self) -> tuple[Vector, ...]:
        ids = _plan(self.rules).ids
        return (Vector("points", ids), Vector("first_preferences", ids))

    def _apply(self, choice: Mapping[str, Any], sign: int) -> None:
        plan = _plan(self.rules)
        positions = id_positions(plan.index, choice["ranking"])
        earned = [plan.points[rank] for rank in range(len(positions))]  # IndexError: too long
        first = positions[0]  # IndexError: an empty ranking was never valid
        points = self.vectors["points"]
        for i, n in zip(positions, earned, strict=True):
            points[i] += sign * n
        self.vectors["first_preferences"][first] += sign

    def _result(self) -> dict[str, Any]:
        ids = _plan(self.rules).ids
        points = dict(zip(ids, self.vectors["points"], strict=True))
        first = dict(zip(ids, self.vectors["first_preferences"], strict=True))
        ranking = sorted(points, key=lambda option: -points[option])  # stable: rules order
        groups = seats.tie_groups([o for o in ranking if points[o] > 0],
                                  lambda a, b: points[a] == points[b])
        return {"method": self.method, "ballots": self.ballots, "points": points,
                "first_preferences": first,
                **seats.seats_result(ranking, groups, self.rules.seats, self.ballots)}
