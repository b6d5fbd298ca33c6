"""Counting: results of each method on examples worked by hand, ties and budget edge
cases included, and the tally's contract (remove, merge, state, refusals)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from urne.counting import (
    InvalidBallot,
    PollRules,
    TallyError,
    count,
    new_tally,
    rules_adapter,
    tally_from_state,
    validate_choice,
)
from urne.record.canonical import canonical_json

pytestmark = pytest.mark.unit


def rules(method: str, **fields: Any) -> PollRules:
    return rules_adapter.validate_python({"method": method, "question": "?", **fields})


def options(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "title": i.upper()} for i in ids]


def approvals(seats: int, *ballots: str) -> dict[str, Any]:
    poll = rules("approval", options=options("a", "b", "c", "d"), max_choices=4, seats=seats)
    return count(poll, [validate_choice(poll, {"approved": list(b)}) for b in ballots])


# Approval -----------------------------------------------------------------------


def test_approval_most_approved_wins() -> None:
    assert approvals(1, "ab", "a", "bc", "a") == {
        "method": "approval", "ballots": 4,
        "counts": {"a": 3, "b": 2, "c": 1, "d": 0},
        "ranking": ["a", "b", "c", "d"], "winners": ["a"], "tied": [], "outcome": "decided"}


def test_approval_ties_keep_the_rules_order_and_are_reported() -> None:
    result = approvals(1, "cb", "a", "ab", "c")
    assert result["counts"] == {"a": 2, "b": 2, "c": 2, "d": 0}
    assert result["ranking"] == ["a", "b", "c", "d"]
    assert (result["winners"], result["tied"], result["outcome"]) == ([], ["a", "b", "c"], "tied")


def test_approval_a_tie_across_the_last_seat() -> None:
    # a is above the tie and wins; b and c share the second seat: the organiser decides.
    result = approvals(2, "ab", "a", "ac", "d")
    assert result["counts"] == {"a": 3, "b": 1, "c": 1, "d": 1}
    assert (result["winners"], result["tied"], result["outcome"]) == (
        ["a"], ["b", "c", "d"], "tied")


def test_approval_a_tie_that_fills_the_seats_exactly_is_decided() -> None:
    result = approvals(2, "ab", "ab", "c")
    assert (result["winners"], result["tied"], result["outcome"]) == (["a", "b"], [], "decided")


def test_approval_an_option_nobody_approved_never_wins() -> None:
    poll = rules("approval", options=options("a", "b", "c"), max_choices=2, seats=2)
    result = count(poll, [{"approved": ["b"]}, {"approved": []}])
    assert (result["winners"], result["tied"], result["outcome"]) == (["b"], [], "decided")
    blank = count(poll, [{"approved": []}])
    assert (blank["ballots"], blank["winners"], blank["outcome"]) == (1, [], "decided")


def test_approval_without_ballots() -> None:
    assert approvals(1) == {
        "method": "approval", "ballots": 0, "counts": {"a": 0, "b": 0, "c": 0, "d": 0},
        "ranking": ["a", "b", "c", "d"], "winners": [], "tied": [], "outcome": "no_ballots"}


# Ranking ------------------------------------------------------------------------


def rank(points: list[int] | None, seats: int, *ballots: str) -> dict[str, Any]:
    poll = rules("ranking", options=options("a", "b", "c", "d"), max_ranks=3, points=points,
                 seats=seats)
    return count(poll, [validate_choice(poll, {"ranking": list(b)}) for b in ballots])


def test_ranking_borda_points() -> None:
    # Borda with 3 ranks: 3, 2, 1. a: 3+2, b: 2+3, c: 1+3, d: nothing.
    assert rank(None, 1, "abc", "ba", "c") == {
        "method": "ranking", "ballots": 3,
        "points": {"a": 5, "b": 5, "c": 4, "d": 0},
        "first_preferences": {"a": 1, "b": 1, "c": 1, "d": 0},
        "ranking": ["a", "b", "c", "d"], "winners": [], "tied": ["a", "b"], "outcome": "tied"}


def test_ranking_points_decide_and_first_preferences_do_not() -> None:
    result = rank(None, 1, "abc", "bca", "cab", "dab")
    # a: 3+1+2+2 = 8, b: 2+3+1+1 = 7, c: 1+2+3 = 6, d: 3
    assert result["points"] == {"a": 8, "b": 7, "c": 6, "d": 3}
    assert result["first_preferences"] == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert (result["winners"], result["outcome"]) == (["a"], "decided")


def test_ranking_custom_points_and_options_without_points() -> None:
    # Only the first rank earns a point: b and c, ranked but never first, cannot win.
    result = rank([1, 0, 0], 3, "abc", "abc", "dbc")
    assert result["points"] == {"a": 2, "b": 0, "c": 0, "d": 1}
    assert result["ranking"] == ["a", "d", "b", "c"]
    assert (result["winners"], result["tied"], result["outcome"]) == (["a", "d"], [], "decided")


def test_ranking_a_tie_across_the_last_seat() -> None:
    result = rank([5, 3, 1], 2, "abc", "acb", "d")
    # a: 10, b: 3+1 = 4, c: 1+3 = 4, d: 5
    assert result["points"] == {"a": 10, "b": 4, "c": 4, "d": 5}
    assert (result["ranking"], result["winners"], result["tied"]) == (
        ["a", "d", "b", "c"], ["a", "d"], [])
    result = rank([5, 3, 1], 3, "abc", "acb", "d")
    assert (result["winners"], result["tied"], result["outcome"]) == (
        ["a", "d"], ["b", "c"], "tied")


def test_ranking_without_ballots() -> None:
    result = rank(None, 1)
    assert (result["ballots"], result["winners"], result["tied"], result["outcome"]) == (
        0, [], [], "no_ballots")


# Majority judgment -------------------------------------------------------------

GRADES = ["great", "good", "fair", "poor"]


def judge(seats: int, *ballots: dict[str, str], ids: str = "abc") -> dict[str, Any]:
    poll = rules("majority_judgment", options=options(*ids), grades=GRADES, seats=seats)
    return count(poll, [validate_choice(poll, {"grades": b}) for b in ballots])


def test_majority_judgment_majority_grades_and_counts() -> None:
    result = judge(1, {"a": "great", "b": "good", "c": "poor"},
                   {"a": "poor", "b": "good", "c": "great"},
                   {"a": "good", "b": "good", "c": "good"})
    assert result == {
        "method": "majority_judgment", "ballots": 3,
        "grades": {"a": [1, 1, 0, 1], "b": [0, 3, 0, 0], "c": [1, 1, 0, 1]},
        "majority_grade": {"a": "good", "b": "good", "c": "good"},
        # All three have "good"; then a and c meet "poor" (a lower median after one
        # "good" is removed from great/good/poor) where b still has "good".
        "ranking": ["b", "a", "c"], "winners": ["b"], "tied": [], "outcome": "decided"}


def test_majority_judgment_uses_the_lower_median() -> None:
    # Two ballots: a's middle grades are great and poor; the lower median is poor.
    # b's are good and good. With the upper median a would win; with the lower, b.
    result = judge(1, {"a": "great", "b": "good"}, {"a": "poor", "b": "good"}, ids="ab")
    assert result["majority_grade"] == {"a": "poor", "b": "good"}
    assert result["winners"] == ["b"]


def test_majority_judgment_breaks_ties_by_removing_medians() -> None:
    # a: great good good poor, b: great good good good. Majority values:
    # a: good, good, poor, great; b: good, good, good, great: b wins at the 3rd term.
    a, b = ["great", "good", "good", "poor"], ["good", "good", "good", "great"]
    result = judge(1, *({"a": x, "b": y} for x, y in zip(a, b, strict=True)), ids="ab")
    assert result["majority_grade"] == {"a": "good", "b": "good"}
    assert (result["ranking"], result["winners"]) == (["b", "a"], ["b"])


def test_majority_judgment_odd_ballots_deep_tie_break() -> None:
    # a: great good poor -> good, poor, great; b: good good poor -> good, poor, good.
    a, b = ["great", "good", "poor"], ["good", "poor", "good"]
    result = judge(1, *({"a": x, "b": y} for x, y in zip(a, b, strict=True)), ids="ab")
    assert (result["ranking"], result["winners"], result["outcome"]) == (
        ["a", "b"], ["a"], "decided")


def test_majority_judgment_identical_grades_tie() -> None:
    result = judge(1, {"a": "good", "b": "fair", "c": "good"},
                   {"a": "fair", "b": "good", "c": "fair"})
    # b has the same grades as a and c (one good, one fair), in other ballots.
    assert result["grades"] == {"a": [0, 1, 1, 0], "b": [0, 1, 1, 0], "c": [0, 1, 1, 0]}
    assert (result["winners"], result["tied"], result["outcome"]) == ([], ["a", "b", "c"], "tied")
    two = judge(2, {"a": "great", "b": "fair", "c": "fair"})
    assert (two["ranking"], two["winners"], two["tied"]) == (["a", "b", "c"], ["a"], ["b", "c"])


def test_majority_judgment_without_ballots() -> None:
    result = judge(1)
    assert result == {
        "method": "majority_judgment", "ballots": 0,
        "grades": {"a": [0, 0, 0, 0], "b": [0, 0, 0, 0], "c": [0, 0, 0, 0]},
        "majority_grade": {}, "ranking": ["a", "b", "c"], "winners": [], "tied": [],
        "outcome": "no_ballots"}


# Budget -------------------------------------------------------------------------


def projects(**costs: int) -> list[dict[str, Any]]:
    return [{"id": i, "title": i.upper(), "cost": c} for i, c in costs.items()]


def test_budget_greedy_by_votes_then_cost_and_an_exact_fit() -> None:
    poll = rules("budget", budget=100, projects=projects(p1=60, p2=50, p3=40, p4=10))
    ballots = [["p1", "p3"], ["p1"], ["p1", "p4"], ["p2", "p3"], ["p2"]]
    result = count(poll, [validate_choice(poll, {"projects": b}) for b in ballots])
    # p1 (3 votes) first: 40 remain. p2 and p3 have 2 votes each: the cheaper, p3,
    # is considered first and costs exactly the 40 that remain: selected. Nothing
    # remains for p2 or p4.
    assert result == {
        "method": "budget", "ballots": 5, "currency": "EUR",
        "districts": {"*": {"budget": 100, "ballots": 5,
                            "votes": {"p1": 3, "p2": 2, "p3": 2, "p4": 1},
                            "ranking": ["p1", "p3", "p2", "p4"], "selected": ["p1", "p3"],
                            "spent": 100, "remaining": 0}},
        "winners": ["p1", "p3"], "outcome": "decided"}


def test_budget_a_project_too_dear_is_skipped_for_a_cheaper_one_below() -> None:
    poll = rules("budget", budget=100, currency="CHF",
                 projects=projects(p1=70, p2=50, p3=20, p4=5))
    ballots = [["p1", "p3"], ["p1"], ["p1"], ["p2"], ["p2"]]
    result = count(poll, [validate_choice(poll, {"projects": b}) for b in ballots])
    district = result["districts"]["*"]
    # p1 selected (30 remain), p2 (50) skipped, p3 (20) selected; p4 would fit in the
    # 10 that remain, but nobody voted for it.
    assert district["votes"] == {"p1": 3, "p2": 2, "p3": 1, "p4": 0}
    assert district["ranking"] == ["p1", "p2", "p3", "p4"]
    assert (district["selected"], district["spent"], district["remaining"]) == (
        ["p1", "p3"], 90, 10)
    assert (result["winners"], result["currency"]) == (["p1", "p3"], "CHF")


def test_budget_equal_votes_and_costs_follow_the_rules_order() -> None:
    poll = rules("budget", budget=10, projects=projects(z=10, y=10, x=10))
    result = count(poll, [{"projects": ["x"]}, {"projects": ["z"]}])
    assert result["districts"]["*"]["ranking"] == ["z", "x", "y"]
    assert result["winners"] == ["z"]


def test_budget_per_district() -> None:
    poll = rules("budget", budgets={"north": 100, "south": 30, "east": 10},
                 projects=[{"id": "n1", "title": "N1", "cost": 60, "district": "north"},
                           {"id": "s1", "title": "S1", "cost": 30, "district": "south"},
                           {"id": "n2", "title": "N2", "cost": 50, "district": "north"},
                           {"id": "n3", "title": "N3", "cost": 40, "district": "north"},
                           {"id": "s2", "title": "S2", "cost": 10, "district": "south"},
                           {"id": "e1", "title": "E1", "cost": 10, "district": "east"}])
    cast = [("north", ["n1", "n3"]), ("north", ["n2"]), ("north", ["n2", "n3"]),
            ("south", ["s1"]), ("south", ["s2"])]
    choices = [validate_choice(poll, {"projects": p}, district=d) for d, p in cast]
    result = count(poll, choices)
    assert result["districts"] == {
        # n2 and n3 have 2 votes; n3 is cheaper: n3 (60 remain), n2 (10 remain), n1 no.
        "north": {"budget": 100, "ballots": 3, "votes": {"n1": 1, "n2": 2, "n3": 2},
                  "ranking": ["n3", "n2", "n1"], "selected": ["n3", "n2"], "spent": 90,
                  "remaining": 10},
        # One vote each: s2 is cheaper (20 remain), s1 (30) no longer fits.
        "south": {"budget": 30, "ballots": 2, "votes": {"s1": 1, "s2": 1},
                  "ranking": ["s2", "s1"], "selected": ["s2"], "spent": 10, "remaining": 20},
        "east": {"budget": 10, "ballots": 0, "votes": {"e1": 0}, "ranking": ["e1"],
                 "selected": [], "spent": 0, "remaining": 10},
    }
    assert (result["ballots"], result["winners"], result["outcome"]) == (
        5, ["n2", "n3", "s2"], "decided")


def test_budget_without_ballots() -> None:
    poll = rules("budget", budget=100, projects=projects(p1=60))
    assert count(poll, []) == {
        "method": "budget", "ballots": 0, "currency": "EUR",
        "districts": {"*": {"budget": 100, "ballots": 0, "votes": {"p1": 0},
                            "ranking": ["p1"], "selected": [], "spent": 0, "remaining": 100}},
        "winners": [], "outcome": "no_ballots"}


# The tally's contract -----------------------------------------------------------

APPROVAL = rules("approval", options=options("a", "b", "c"), max_choices=2)
DISTRICTS = rules("budget", budgets={"n": 10, "s": 10},
                  projects=[{"id": "n1", "title": "N", "cost": 5, "district": "n"},
                            {"id": "s1", "title": "S", "cost": 5, "district": "s"}])
JUDGMENT = rules("majority_judgment", options=options("a", "b"), grades=["good", "bad"])
EXAMPLES: list[tuple[PollRules, list[dict[str, Any]]]] = [
    (rules("yes_no_abstain"), [{"answer": "yes"}, {"answer": "no"}, {"answer": "yes"}]),
    (APPROVAL, [{"approved": ["a", "b"]}, {"approved": ["c"]}, {"approved": []}]),
    (DISTRICTS, [{"projects": ["n1"], "district": "n"}, {"projects": [], "district": "s"}]),
    (rules("ranking", options=options("a", "b"), max_ranks=2),
     [{"ranking": ["a", "b"]}, {"ranking": ["b"]}]),
    (JUDGMENT, [{"grades": {"a": "good", "b": "bad"}}, {"grades": {"a": "bad", "b": "bad"}}]),
]


@pytest.mark.parametrize(("poll", "choices"), EXAMPLES, ids=lambda x: getattr(x, "method", ""))
def test_state_is_json_and_round_trips(poll: PollRules, choices: list[dict[str, Any]]) -> None:
    tally = new_tally(poll)
    for choice in choices:
        tally.add(choice)
    state = json.loads(json.dumps(tally.state()))
    assert state == tally.state()
    assert (state["method"], state["ballots"]) == (poll.method, len(choices))
    canonical_json(state)  # plain JSON integers and strings, nothing JCS refuses
    again = tally_from_state(poll, state)
    assert again.state() == tally.state()
    assert again.result() == tally.result() == count(poll, choices)
    canonical_json(tally.result())


@pytest.mark.parametrize(("poll", "choices"), EXAMPLES, ids=lambda x: getattr(x, "method", ""))
def test_remove_undoes_add_and_merge_adds(poll: PollRules, choices: list[dict[str, Any]]) -> None:
    empty = new_tally(poll).state()
    tally = new_tally(poll)
    for choice in choices:
        tally.add(choice)
    for choice in reversed(choices):
        tally.remove(choice)
    assert tally.state() == empty
    # Shards: one saw the first ballot, the other the rest plus a replaced ballot.
    first, rest = new_tally(poll), new_tally(poll)
    first.add(choices[0])
    for choice in choices[1:]:
        rest.add(choice)
    rest.add(choices[0])
    rest.remove(choices[0])
    first.merge(rest)
    assert first.result() == count(poll, choices)


def test_a_partial_may_go_negative_but_a_result_may_not() -> None:
    # A partial tally that removed a ballot another partial added is negative until
    # they merge; a result from negative counts is refused.
    added, removed = new_tally(APPROVAL), new_tally(APPROVAL)
    added.add({"approved": ["a"]})
    removed.remove({"approved": ["a"]})
    assert removed.state()["counts"]["a"] == -1
    restored = tally_from_state(APPROVAL, removed.state())
    with pytest.raises(TallyError, match="negative"):
        restored.result()
    added.merge(restored)
    assert added.result() == count(APPROVAL, [])


def test_a_refused_ballot_leaves_the_tally_untouched() -> None:
    tally = new_tally(APPROVAL)
    tally.add({"approved": ["a"]})
    before = tally.state()
    # A string is iterable and a repeated id would count twice: both refused too.
    bad_ballots: list[Any] = [{"approved": ["b", "zz"]}, {"answer": "yes"}, {"approved": "ab"},
                              {"approved": ["b", "b"]}, {"approved": [["b"]]}, {}, ["a"]]
    for bad in bad_ballots:
        with pytest.raises(InvalidBallot, match="not a valid approval ballot"):
            tally.add(bad)
    with pytest.raises(InvalidBallot):
        new_tally(DISTRICTS).add({"projects": ["n1"]})  # no district recorded
    with pytest.raises(InvalidBallot):
        new_tally(JUDGMENT).add({"grades": {"a": "good"}})  # b not graded
    with pytest.raises(InvalidBallot):
        new_tally(rules("ranking", options=options("a", "b"), max_ranks=1)).add(
            {"ranking": ["a", "b"]})  # more ranks than the rules have points for
    with pytest.raises(InvalidBallot):
        new_tally(rules("ranking", options=options("a", "b"), max_ranks=1)).add(
            {"ranking": []})
    assert tally.state() == before


def test_tallies_of_other_rules_do_not_mix() -> None:
    other = rules("approval", options=options("a", "b", "c"), max_choices=3)
    tally = new_tally(APPROVAL)
    with pytest.raises(TallyError, match="same method and rules"):
        tally.merge(new_tally(other))
    with pytest.raises(TallyError, match="same method and rules"):
        tally.merge(new_tally(JUDGMENT))
    with pytest.raises(TallyError, match="other rules"):
        tally_from_state(other, tally.state())
    with pytest.raises(TallyError, match="not the state of a majority_judgment tally"):
        tally_from_state(JUDGMENT, tally.state())
    # The same rules, parsed again, are the same rules.
    same = rules_adapter.validate_json(rules_adapter.dump_json(APPROVAL))
    tally.merge(new_tally(same))
    tally_from_state(same, tally.state())


@pytest.mark.parametrize("change", [
    {"ballots": True},
    {"ballots": 1.0},
    {"ballots": "1"},
    {"counts": {"a": 1, "b": 0}},
    {"counts": {"a": 1, "b": 0, "c": 0, "d": 0}},
    {"counts": {"a": None, "b": 0, "c": 0}},
    {"extra": 1},
    {"rules_hash": "0" * 64},
], ids=repr)
def test_a_malformed_state_is_refused(change: dict[str, Any]) -> None:
    state = {**new_tally(APPROVAL).state(), **change}
    with pytest.raises(TallyError):
        tally_from_state(APPROVAL, state)


@pytest.mark.parametrize("row", [[1], [1, 0, 0], [True, 0], "10", None], ids=repr)
def test_a_malformed_grade_row_is_refused(row: Any) -> None:
    state = new_tally(JUDGMENT).state()
    state["grades"]["a"] = row
    with pytest.raises(TallyError):
        tally_from_state(JUDGMENT, state)


def test_inconsistent_grade_counts_are_refused() -> None:
    state = new_tally(JUDGMENT).state()
    state["ballots"] = 1
    state["grades"]["a"] = [1, 0]  # b has no grade from that ballot
    with pytest.raises(TallyError, match="do not add up"):
        tally_from_state(JUDGMENT, state).result()


def test_the_yes_no_abstain_state() -> None:
    tally = new_tally(rules("yes_no_abstain"))
    tally.add({"answer": "no"})
    state = tally.state()
    assert {k: v for k, v in state.items() if k != "rules_hash"} == {
        "method": "yes_no_abstain", "ballots": 1, "counts": {"yes": 0, "no": 1, "abstain": 0}}
    assert len(state["rules_hash"]) == 64
