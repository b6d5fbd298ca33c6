"""Participatory budget: each voter picks projects whose total cost fits the budget
(their district's, with budgets per district); projects are then funded greedily.

Selection, in each district (or once, for a single budget): projects are considered
by votes (most first), then by cost (cheapest first), then in the order of the
rules; a project is selected when its cost fits what remains of the budget
(exactly fitting included), otherwise skipped, and the next one is considered
("greedy, skipping", as CONSUL does). A project nobody voted for is never selected.
The order is total, so there is no tie to report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from urne.counting.ballots import InvalidBallot, between, body, id_list, shown
from urne.counting.derived import derived
from urne.counting.rules import BudgetRules
from urne.counting.tally import Tally, Vector, id_positions

SHAPE = '{"projects": [project ids]}'
# The key of the single budget in a result's "districts": district names follow the
# id pattern, which cannot produce it.
WHOLE_POLL = "*"


@dataclass(frozen=True)
class _Plan:
    ids: tuple[str, ...]
    index: dict[str, int]
    cost: dict[str, int]
    district: dict[str, str | None]
    districts: tuple[str, ...]  # per district: the districts in rules order; else ()
    district_index: dict[str, int]

    @classmethod
    def of(cls, rules: BudgetRules) -> _Plan:
        ids = tuple(p.id for p in rules.projects)
        districts = tuple(rules.budgets or ())
        return cls(ids, {project: i for i, project in enumerate(ids)},
                   {p.id: p.cost for p in rules.projects},
                   {p.id: p.district for p in rules.projects},
                   districts, {d: i for i, d in enumerate(districts)})


def _plan(rules: BudgetRules) -> _Plan:
    return derived(rules, "budget", _Plan.of)


def validate(rules: BudgetRules, choice: Mapping[str, Any],
             district: str | None) -> dict[str, Any]:
    plan = _plan(rules)
    projects = id_list(body(choice, rules.method, "projects", SHAPE), plan.cost, "project",
                       "projects")
    between(len(projects), rules.min_projects, rules.max_projects, "projects")
    if rules.budgets is None:
        assert rules.budget is not None
        budget = rules.budget
    else:
        if district is None:
            raise InvalidBallot("this poll has a budget per district, and the voting token "
                                "names no district")
        if type(district) is not str or district not in rules.budgets:
            raise InvalidBallot(f"this poll has no budget for district {shown(district)}")
        budget = rules.budgets[district]
        elsewhere = [p for p in projects if plan.district[p] != district]
        if elsewhere:
            raise InvalidBallot(f"project {elsewhere[0]} is not in district {district}, "
                                "where this ballot is cast")
    spent = sum(plan.cost[p] for p in projects)
    if spent > budget:
        raise InvalidBallot(f"the chosen projects cost {spent} {rules.currency}, more than "
                            f"the budget of {budget} {rules.currency}")
    normalised: dict[str, Any] = {"projects": sorted(projects)}
    if rules.budgets is not None:
        normalised["district"] = district
    return normalised


def select(projects: list[tuple[str, int, int]], budget: int) -> tuple[list[str], list[str]]:
    """(considered, selected) for (id, votes, cost) in rules order, under ``budget``."""
    order = sorted(range(len(projects)), key=lambda i: (-projects[i][1], projects[i][2], i))
    selected, remaining = [], budget
    for i in order:
        project, votes, cost = projects[i]
        if votes > 0 and cost <= remaining:
            selected.append(project)
            remaining -= cost
    return [projects[i][0] for i in order], selected


class BudgetTally(Tally[BudgetRules]):
    method = "budget"

    def _layout(self) -> tuple[Vector, ...]:
        plan = _plan(self.rules)
        votes = Vector("votes", plan.ids)
        if self.rules.budgets is None:
            return (votes,)
        return (votes, Vector("district_ballots", plan.districts))

    def _apply(self, choice: Mapping[str, Any], sign: int) -> None:
        plan = _plan(self.rules)
        positions = id_positions(plan.index, choice["projects"])
        district = (plan.district_index[choice["district"]] if self.rules.budgets is not None
                    else None)
        votes = self.vectors["votes"]
        for i in positions:
            votes[i] += sign
        if district is not None:
            self.vectors["district_ballots"][district] += sign

    def _result(self) -> dict[str, Any]:
        plan = _plan(self.rules)
        votes = dict(zip(plan.ids, self.vectors["votes"], strict=True))
        if self.rules.budgets is None:
            ballots = {WHOLE_POLL: self.ballots}
        else:
            ballots = dict(zip(plan.districts, self.vectors["district_ballots"], strict=True))
        districts: dict[str, Any] = {}
        chosen: set[str] = set()
        for district, budget in self.rules.district_budgets().items():
            key = WHOLE_POLL if district is None else district
            mine = [(p, votes[p], plan.cost[p]) for p in plan.ids if plan.district[p] == district]
            considered, selected = select(mine, budget)
            spent = sum(plan.cost[p] for p in selected)
            districts[key] = {"budget": budget, "ballots": ballots[key],
                              "votes": {p: n for p, n, _ in mine}, "ranking": considered,
                              "selected": selected, "spent": spent,
                              "remaining": budget - spent}
            chosen.update(selected)
        return {"method": self.method, "ballots": self.ballots, "currency": self.rules.currency,
                "districts": districts, "winners": [p for p in plan.ids if p in chosen],
                "outcome": "decided" if self.ballots else "no_ballots"}
