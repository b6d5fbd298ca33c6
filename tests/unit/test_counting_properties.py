"""Counting, by property: for random rules and random ballot streams (revotes,
repeated ballots, any order, split over shards that checkpoint and merge), the
streamed result equals ``count`` over the final choices, which equals a second,
deliberately naive implementation written here from docs/auditing.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cmp_to_key
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urne.counting import (
    ApprovalRules,
    BudgetRules,
    MajorityJudgmentRules,
    PollRules,
    RankingRules,
    YesNoAbstainRules,
    choice_adapter,
    count,
    new_tally,
    rules_adapter,
    tally_from_state,
    validate_choice,
    validate_recorded,
)
from urne.counting.majority_judgment import MajorityValue, compare

pytestmark = pytest.mark.unit

FAST = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
IDS = [f"o{i}" for i in range(8)]
DISTRICTS = ["north", "south", "east"]
Draw = Callable[[st.SearchStrategy[Any]], Any]


# Random rules ------------------------------------------------------------------


def options(n: int) -> list[dict[str, str]]:
    return [{"id": i, "title": i.upper()} for i in IDS[:n]]


def yes_no_rules() -> st.SearchStrategy[PollRules]:
    return st.just(YesNoAbstainRules(method="yes_no_abstain", question="?"))


@st.composite
def approval_rules(draw: Draw) -> PollRules:
    n = draw(st.integers(1, 6))
    high = draw(st.integers(1, n))
    return rules_adapter.validate_python({
        "method": "approval", "question": "?", "options": options(n),
        "min_choices": draw(st.integers(0, high)), "max_choices": high,
        "seats": draw(st.integers(1, n))})


@st.composite
def ranking_rules(draw: Draw) -> PollRules:
    n = draw(st.integers(1, 6))
    ranks = draw(st.integers(1, n))
    points = None
    if draw(st.booleans()):
        points = sorted(draw(st.lists(st.integers(0, 6), min_size=ranks, max_size=ranks)),
                        reverse=True)
        points[0] = max(points[0], 1)
    return rules_adapter.validate_python({
        "method": "ranking", "question": "?", "options": options(n), "max_ranks": ranks,
        "points": points, "seats": draw(st.integers(1, n))})


@st.composite
def judgment_rules(draw: Draw) -> PollRules:
    n = draw(st.integers(1, 5))
    grades = draw(st.integers(2, 4))
    return rules_adapter.validate_python({
        "method": "majority_judgment", "question": "?", "options": options(n),
        "grades": [f"grade {g}" for g in range(grades)], "seats": draw(st.integers(1, n))})


@st.composite
def budget_rules(draw: Draw) -> PollRules:
    per_district = draw(st.booleans())
    names = DISTRICTS[: draw(st.integers(1, 3))] if per_district else [None]
    projects: list[dict[str, Any]] = []
    budgets: dict[str | None, int] = {}
    for district in names:
        costs = draw(st.lists(st.integers(1, 20), min_size=1, max_size=4))
        for cost in costs:
            projects.append({"id": f"p{len(projects)}", "title": "P", "cost": cost,
                             "district": district})
        # At least the dearest project fits; sometimes all of them do.
        budgets[district] = draw(st.integers(max(costs), sum(costs) + 5))
    low = draw(st.integers(0, 1))
    fields: dict[str, Any] = {
        "method": "budget", "question": "?", "projects": projects, "min_projects": low,
        "max_projects": draw(st.none() | st.integers(max(1, low), 4))}
    if per_district:
        fields["budgets"] = budgets
    else:
        fields["budget"] = budgets[None]
    return rules_adapter.validate_python(fields)


# Random valid ballots, as a voter would send them (any order, maybe ``method``) ---


def sent(draw: Draw, method: str, key: str, value: Any) -> dict[str, Any]:
    return {"method": method, key: value} if draw(st.booleans()) else {key: value}


def ballot(draw: Draw, rules: PollRules, district: str | None) -> dict[str, Any]:
    if isinstance(rules, YesNoAbstainRules):
        return sent(draw, rules.method, "answer", draw(st.sampled_from(["yes", "no", "abstain"])))
    if isinstance(rules, ApprovalRules):
        ids = draw(st.permutations([o.id for o in rules.options]))
        size = draw(st.integers(rules.min_choices, rules.max_choices))
        return sent(draw, rules.method, "approved", ids[:size])
    if isinstance(rules, RankingRules):
        ids = draw(st.permutations([o.id for o in rules.options]))
        return sent(draw, rules.method, "ranking", ids[: draw(st.integers(1, rules.max_ranks))])
    if isinstance(rules, MajorityJudgmentRules):
        return sent(draw, rules.method, "grades", {
            o.id: draw(st.sampled_from(rules.grades)) for o in rules.options})
    assert isinstance(rules, BudgetRules)
    mine = [p for p in rules.projects if p.district == district]
    budget = rules.district_budgets()[district]
    limit = min(draw(st.integers(rules.min_projects, len(mine))),
                rules.max_projects or len(mine))
    chosen: list[str] = []
    spent = 0
    for project in draw(st.permutations(mine)):
        if len(chosen) < limit and spent + project.cost <= budget:
            chosen.append(project.id)
            spent += project.cost
    return sent(draw, rules.method, "projects", chosen)


# The naive references -------------------------------------------------------------


def reference(rules: PollRules, choices: list[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(rules, YesNoAbstainRules):
        counts = {a: sum(c["answer"] == a for c in choices) for a in ("yes", "no", "abstain")}
        outcome = ("adopted" if counts["yes"] > counts["no"] else
                   "rejected" if counts["yes"] < counts["no"] else "tied")
        return {"method": rules.method, "counts": counts, "ballots": len(choices),
                "outcome": outcome}
    if isinstance(rules, ApprovalRules):
        return approval_reference(rules, choices)
    if isinstance(rules, RankingRules):
        return ranking_reference(rules, choices)
    if isinstance(rules, MajorityJudgmentRules):
        return judgment_reference(rules, choices)
    assert isinstance(rules, BudgetRules)
    return budget_reference(rules, choices)


def seats_reference(ranking: list[str], better: Callable[[str, str], bool],
                    eligible: list[str], seats: int, ballots: int) -> dict[str, Any]:
    """Winners by the score of the last seat: strictly better ones win; if those
    equal to it do not all fit, they are the tie."""
    if ballots == 0:
        return {"ranking": ranking, "winners": [], "tied": [], "outcome": "no_ballots"}
    if len(eligible) <= seats:
        return {"ranking": ranking, "winners": eligible, "tied": [], "outcome": "decided"}
    last = eligible[seats - 1]
    above = [o for o in eligible if better(o, last)]
    level = [o for o in eligible if not better(o, last) and not better(last, o)]
    if len(above) + len(level) <= seats:
        return {"ranking": ranking, "winners": above + level, "tied": [], "outcome": "decided"}
    return {"ranking": ranking, "winners": above, "tied": level, "outcome": "tied"}


def approval_reference(rules: ApprovalRules, choices: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [o.id for o in rules.options]
    counts = {i: 0 for i in ids}
    for choice in choices:
        for option in choice["approved"]:
            counts[option] += 1
    ranking = sorted(ids, key=lambda i: (-counts[i], ids.index(i)))
    return {"method": "approval", "ballots": len(choices), "counts": counts,
            **seats_reference(ranking, lambda a, b: counts[a] > counts[b],
                              [i for i in ranking if counts[i] > 0], rules.seats, len(choices))}


def ranking_reference(rules: RankingRules, choices: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [o.id for o in rules.options]
    table = list(rules.points) if rules.points is not None else [
        rules.max_ranks - r for r in range(rules.max_ranks)]
    points, first = {i: 0 for i in ids}, {i: 0 for i in ids}
    for choice in choices:
        for rank, option in enumerate(choice["ranking"]):
            points[option] += table[rank]
        first[choice["ranking"][0]] += 1
    ranking = sorted(ids, key=lambda i: (-points[i], ids.index(i)))
    return {"method": "ranking", "ballots": len(choices), "points": points,
            "first_preferences": first,
            **seats_reference(ranking, lambda a, b: points[a] > points[b],
                              [i for i in ranking if points[i] > 0], rules.seats, len(choices))}


def naive_majority_value(grades: list[int]) -> list[int]:
    """Repeatedly take out the lower median (index len // 2 of the grades sorted best
    first, 0 the best), as Balinski and Laraki define the majority value."""
    left, value = sorted(grades), []
    while left:
        value.append(left.pop(len(left) // 2))
    return value


def judgment_reference(rules: MajorityJudgmentRules,
                       choices: list[dict[str, Any]]) -> dict[str, Any]:
    ids, labels = [o.id for o in rules.options], list(rules.grades)
    given = {i: [labels.index(c["grades"][i]) for c in choices] for i in ids}
    values = {i: naive_majority_value(given[i]) for i in ids}
    ranking = sorted(ids, key=lambda i: (values[i], ids.index(i)))
    return {"method": "majority_judgment", "ballots": len(choices),
            "grades": {i: [given[i].count(g) for g in range(len(labels))] for i in ids},
            "majority_grade": {i: labels[values[i][0]] for i in ids} if choices else {},
            **seats_reference(ranking, lambda a, b: values[a] < values[b], ranking,
                              rules.seats, len(choices))}


def budget_reference(rules: BudgetRules, choices: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [p.id for p in rules.projects]
    votes = {i: sum(i in c["projects"] for c in choices) for i in ids}
    cost = {p.id: p.cost for p in rules.projects}
    districts, winners = {}, set()
    for district, budget in rules.district_budgets().items():
        mine = [p.id for p in rules.projects if p.district == district]
        considered = sorted(mine, key=lambda i: (-votes[i], cost[i], ids.index(i)))
        # Greedy by another road: repeatedly fund the first affordable voted project.
        left, selected, waiting = budget, [], list(considered)
        while True:
            affordable = [i for i in waiting if votes[i] > 0 and cost[i] <= left]
            if not affordable:
                break
            best = affordable[0]
            selected.append(best)
            left -= cost[best]
            waiting = waiting[waiting.index(best) + 1:]
        key = "*" if district is None else district
        districts[key] = {
            "budget": budget,
            "ballots": len(choices) if district is None else sum(
                c["district"] == district for c in choices),
            "votes": {i: votes[i] for i in mine}, "ranking": considered,
            "selected": selected, "spent": budget - left, "remaining": left}
        winners.update(selected)
    return {"method": "budget", "ballots": len(choices), "currency": rules.currency,
            "districts": districts, "winners": [i for i in ids if i in winners],
            "outcome": "decided" if choices else "no_ballots"}


# The streams ---------------------------------------------------------------------


@st.composite
def streams(draw: Draw, rules_strategy: st.SearchStrategy[PollRules]) -> tuple[
        PollRules, list[tuple[int, dict[str, Any], dict[str, Any]]], int]:
    """Rules, then (voter, sent, normalised) ballots in arrival order, and a shard
    count. Voters revote; some ballots arrive twice."""
    rules = draw(rules_strategy)
    voters = draw(st.integers(1, 10))
    home = {v: draw(st.sampled_from(sorted(rules.budgets)))
            if isinstance(rules, BudgetRules) and rules.budgets else None
            for v in range(voters)}
    events: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for _ in range(draw(st.integers(0, 25))):
        if events and draw(st.integers(0, 5)) == 0:
            events.append(events[-1])  # the same ballot again
            continue
        voter = draw(st.integers(0, voters - 1))
        choice = ballot(draw, rules, home[voter])
        events.append((voter, choice, validate_choice(rules, choice, district=home[voter])))
    return rules, events, draw(st.integers(1, 4))


def check_stream(data: st.DataObject, rules_strategy: st.SearchStrategy[PollRules]) -> None:
    rules, events, shards = data.draw(streams(rules_strategy))
    tallies = [new_tally(rules) for _ in range(shards)]
    latest: dict[int, dict[str, Any]] = {}
    for voter, choice, normalised in events:
        assert "method" not in normalised
        assert validate_recorded(rules, normalised) == normalised
        choice_adapter.validate_python({"method": rules.method, **choice})
        shard = data.draw(st.integers(0, shards - 1))
        if data.draw(st.integers(0, 9)) == 0:  # a checkpoint, restored through JSON
            state = json.loads(json.dumps(tallies[shard].state()))
            tallies[shard] = tally_from_state(rules, state)
        if voter in latest:  # a revote: the replaced ballot leaves the count
            tallies[shard].remove(latest[voter])
        tallies[shard].add(normalised)
        latest[voter] = normalised
    order = data.draw(st.permutations(range(shards)))
    merged = new_tally(rules)
    for shard in order:
        merged.merge(tally_from_state(rules, tallies[shard].state()))
    final = list(latest.values())
    shuffled = data.draw(st.permutations(final))
    expected = reference(rules, final)
    assert merged.result() == count(rules, shuffled) == expected
    assert json.loads(json.dumps(expected)) == expected


@FAST
@given(st.data())
def test_yes_no_abstain_streams(data: st.DataObject) -> None:
    check_stream(data, yes_no_rules())


@FAST
@given(st.data())
def test_approval_streams(data: st.DataObject) -> None:
    check_stream(data, approval_rules())


@FAST
@given(st.data())
def test_ranking_streams(data: st.DataObject) -> None:
    check_stream(data, ranking_rules())


@FAST
@given(st.data())
def test_majority_judgment_streams(data: st.DataObject) -> None:
    check_stream(data, judgment_rules())


@FAST
@given(st.data())
def test_budget_streams(data: st.DataObject) -> None:
    check_stream(data, budget_rules())


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.integers(0, 2), min_size=n, max_size=n),
    st.lists(st.integers(0, 2), min_size=n, max_size=n))))
def test_majority_values_compare_like_the_naive_ones(case: tuple[int, list[int], list[int]]
                                                     ) -> None:
    # Many ballots and few grades make deep ties, where only later terms decide.
    n, a, b = case
    def histogram(grades: list[int]) -> list[int]:
        return [grades.count(g) for g in range(3)]
    naive_a, naive_b = naive_majority_value(a), naive_majority_value(b)
    got = compare(MajorityValue.of(histogram(a), n), MajorityValue.of(histogram(b), n))
    want = (naive_a > naive_b) - (naive_a < naive_b)
    assert (got > 0) - (got < 0) == want


def test_majority_values_sort_like_the_naive_ones() -> None:
    # A fixed, exhaustive check: every histogram of 6 ballots over 3 grades.
    grades = [[a, b, c] for a in range(7) for b in range(7) for c in range(7) if a + b + c == 6]
    def naive(h: list[int]) -> list[int]:
        return naive_majority_value([g for g in range(3) for _ in range(h[g])])
    def by_value(x: list[int], y: list[int]) -> int:
        return compare(MajorityValue.of(x, 6), MajorityValue.of(y, 6))

    mine = sorted(grades, key=cmp_to_key(by_value))
    assert mine == sorted(grades, key=naive)
