"""Approval with limits: approve between ``min_choices`` and ``max_choices`` options;
the ``seats`` options with the most approvals win.

An option needs at least one approval to win, so blank ballots (``min_choices`` 0)
never make a winner of an option nobody approved; fewer winners than seats is then
a decided outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from urne.counting import seats
from urne.counting.ballots import between, body, id_list
from urne.counting.derived import derived
from urne.counting.rules import ApprovalRules
from urne.counting.tally import Tally, Vector, id_positions

SHAPE = '{"approved": [option ids]}'


@dataclass(frozen=True)
class _Plan:
    ids: tuple[str, ...]
    index: dict[str, int]

    @classmethod
    def of(cls, rules: ApprovalRules) -> _Plan:
        ids = tuple(o.id for o in rules.options)
        return cls(ids, {option: i for i, option in enumerate(ids)})


def _plan(rules: ApprovalRules) -> _Plan:
    return derived(rules, "approval", _Plan.of)


def validate(rules: ApprovalRules, choice: Mapping[str, Any]) -> dict[str, Any]:
    approved = id_list(body(choice, rules.method, "approved", SHAPE), _plan(rules).index,
                       "option", "approved")
    between(len(approved), rules.min_choices, rules.max_choices, "options")
    return {"approved": sorted(approved)}


class ApprovalTally(Tally[ApprovalRules]):
    method = "approval"

    def _layout(self) -> tuple[Vector, ...]:
        return (Vector("counts", _plan(self.rules).ids),)

    def _apply(self, choice: Mapping[str, Any], sign: int) -> None:
        index = _plan(self.rules).index
        positions = id_positions(index, choice["approved"])
        counts = self.vectors["counts"]
        for i in positions:
            counts[i] += sign

    def _result(self) -> dict[str, Any]:
        counts = dict(zip(_plan(self.rules).ids, self.vectors["counts"], strict=True))
        ranking = sorted(counts, key=lambda option: -counts[option])  # stable: rules order
        groups = seats.tie_groups([o for o in ranking if counts[o] > 0],
                                  lambda a, b: counts[a] == counts[b])
        return {"method": self.method, "ballots": self.ballots, "counts": counts,
                **seats.seats_result(ranking, groups, self.rules.seats, self.ballots)}
