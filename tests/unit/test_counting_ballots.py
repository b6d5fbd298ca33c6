"""Counting: one ballot checked against its poll's rules, per method; the stored
choice is normalised, never carries ``method``, and validates to itself."""

from __future__ import annotations

from typing import Any

import pytest

from urne.counting import (
    InvalidBallot,
    PollRules,
    rules_adapter,
    validate_choice,
    validate_recorded,
)

pytestmark = pytest.mark.unit


def rules(method: str, **fields: Any) -> PollRules:
    return rules_adapter.validate_python({"method": method, "question": "?", **fields})


def options(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "title": i.upper()} for i in ids]


YES_NO = rules("yes_no_abstain")
APPROVAL = rules("approval", options=options("a", "b", "c", "d"), min_choices=1, max_choices=3)
BLANK_APPROVAL = rules("approval", options=options("a", "b"), max_choices=1)
BUDGET = rules("budget", budget=100, max_projects=3,
               projects=[{"id": "p1", "title": "Park", "cost": 60},
                         {"id": "p2", "title": "Bikes", "cost": 40},
                         {"id": "p3", "title": "Bench", "cost": 5},
                         {"id": "p4", "title": "Lamp", "cost": 1}])
DISTRICTS = rules("budget", budgets={"north": 100, "south": 30}, min_projects=1,
                  projects=[{"id": "n1", "title": "Park", "cost": 60, "district": "north"},
                            {"id": "n2", "title": "Pool", "cost": 50, "district": "north"},
                            {"id": "s1", "title": "Bench", "cost": 30, "district": "south"},
                            {"id": "s2", "title": "Lamp", "cost": 1, "district": "south"}])
RANKING = rules("ranking", options=options("a", "b", "c", "d"), max_ranks=3)
JUDGMENT = rules("majority_judgment", options=options("a", "b"),
                 grades=["great", "good", "poor"])

VALID: list[tuple[PollRules, dict[str, Any], dict[str, Any], str | None]] = [
    (YES_NO, {"answer": "abstain"}, {"answer": "abstain"}, None),
    (YES_NO, {"method": "yes_no_abstain", "answer": "yes"}, {"answer": "yes"}, None),
    (APPROVAL, {"approved": ["c", "a"]}, {"approved": ["a", "c"]}, None),
    (APPROVAL, {"approved": ["d"]}, {"approved": ["d"]}, None),
    (APPROVAL, {"method": "approval", "approved": ["b", "d", "a"]},
     {"approved": ["a", "b", "d"]}, None),
    (BLANK_APPROVAL, {"approved": []}, {"approved": []}, None),  # min_choices 0: blank
    (BUDGET, {"projects": ["p2", "p1"]}, {"projects": ["p1", "p2"]}, None),  # exactly 100
    (BUDGET, {"projects": []}, {"projects": []}, None),
    (BUDGET, {"method": "budget", "projects": ["p4"]}, {"projects": ["p4"]}, None),
    # A district on the token of a single-budget poll is not recorded.
    (BUDGET, {"projects": ["p3"]}, {"projects": ["p3"]}, "north"),
    (DISTRICTS, {"projects": ["n2"]}, {"projects": ["n2"], "district": "north"}, "north"),
    (DISTRICTS, {"projects": ["s1"]}, {"projects": ["s1"], "district": "south"}, "south"),
    (RANKING, {"ranking": ["c", "a"]}, {"ranking": ["c", "a"]}, None),
    (RANKING, {"ranking": ["d"]}, {"ranking": ["d"]}, None),
    (RANKING, {"method": "ranking", "ranking": ["b", "d", "a"]}, {"ranking": ["b", "d", "a"]},
     None),
    (JUDGMENT, {"grades": {"b": "poor", "a": "great"}},
     {"grades": {"a": "great", "b": "poor"}}, None),
    (JUDGMENT, {"method": "majority_judgment", "grades": {"a": "good", "b": "good"}},
     {"grades": {"a": "good", "b": "good"}}, None),
]


@pytest.mark.parametrize(("poll", "choice", "stored", "district"),
                         VALID, ids=repr)
def test_valid_ballots_are_normalised(poll: PollRules, choice: dict[str, Any],
                                      stored: dict[str, Any], district: str | None) -> None:
    normalised = validate_choice(poll, choice, district=district)
    assert normalised == stored
    assert "method" not in normalised
    assert normalised is not choice
    # What is stored is a fixed point: re-checked as a recorded choice, it is itself.
    assert validate_recorded(poll, normalised) == normalised


def test_normalised_lists_are_fresh_copies() -> None:
    sent = {"ranking": ["c", "a"]}
    normalised = validate_choice(RANKING, sent)
    normalised["ranking"].append("b")
    assert sent == {"ranking": ["c", "a"]}


def test_an_over_budget_district_ballot_is_refused() -> None:
    with pytest.raises(InvalidBallot, match="cost 31 EUR, more than the budget of 30 EUR"):
        validate_choice(DISTRICTS, {"projects": ["s2", "s1"]}, district="south")


INVALID: list[tuple[PollRules, Any, str | None, str]] = [
    # Every method: the envelope.
    (APPROVAL, ["a"], None, "a ballot is a JSON object"),
    (APPROVAL, "a", None, "a ballot is a JSON object"),
    (APPROVAL, {}, None, "an approval ballot is"),
    (APPROVAL, {"approved": ["a"], "extra": 1}, None, "approval ballot is"),
    (APPROVAL, {"approve": ["a"]}, None, "approval ballot is"),
    (APPROVAL, {"method": "ranking", "approved": ["a"]}, None,
     "voted by approval, not by 'ranking'"),
    (APPROVAL, {"method": None, "approved": ["a"]}, None, "voted by approval"),
    (APPROVAL, {"method": "approval"}, None, "approval ballot is"),
    (YES_NO, {"method": "approval", "answer": "yes"}, None, "voted by yes_no_abstain"),
    (YES_NO, {"method": "yes_no_abstain"}, None, "a yes/no/abstain ballot is"),
    # Approval.
    (APPROVAL, {"approved": "a"}, None, "approved must be a list of option ids"),
    (APPROVAL, {"approved": {"a": True}}, None, "approved must be a list"),
    (APPROVAL, {"approved": ("a",)}, None, "approved must be a list"),
    (APPROVAL, {"approved": None}, None, "approved must be a list"),
    (APPROVAL, {"approved": [1]}, None, "not 1"),
    (APPROVAL, {"approved": [True]}, None, "not True"),
    (APPROVAL, {"approved": [["a"]]}, None, "option ids, not"),
    (APPROVAL, {"approved": ["a", None]}, None, "option ids, not None"),
    (APPROVAL, {"approved": ["e"]}, None, "unknown option 'e'"),
    (APPROVAL, {"approved": ["A"]}, None, "unknown option 'A'"),
    (APPROVAL, {"approved": [" a"]}, None, "unknown option"),
    (APPROVAL, {"approved": ["x" * 100]}, None, r"unknown option 'xxx.*\.\.\.$"),
    (APPROVAL, {"approved": ["a", "b", "a"]}, None, "option 'a' is chosen more than once"),
    (APPROVAL, {"approved": []}, None, "choose between 1 and 3 options, not 0"),
    (APPROVAL, {"approved": ["a", "b", "c", "d"]}, None, "between 1 and 3 options, not 4"),
    (BLANK_APPROVAL, {"approved": ["a", "b"]}, None, "choose between 0 and 1 options, not 2"),
    # Budget, one budget.
    (BUDGET, {"projects": ["p1", "p2", "p3"]}, None, "cost 105 EUR, more than the budget of 100"),
    (BUDGET, {"projects": ["p1", "p3", "p4", "p2"]}, None,
     "choose between 0 and 3 projects, not 4"),
    (BUDGET, {"projects": ["p9"]}, None, "unknown project 'p9'"),
    (BUDGET, {"projects": ["p1", "p1"]}, None, "project 'p1' is chosen more than once"),
    (BUDGET, {"projects": "p1"}, None, "projects must be a list of project ids"),
    (BUDGET, {"projects": [60]}, None, "project ids, not 60"),
    (BUDGET, {"projects": ["p1"], "district": "north"}, "north", "names no district"),
    (BUDGET, {"projects": ["p1"], "cost": 60}, None, "budget ballot is"),
    # Budget, per district: the district comes from the token, never from the ballot.
    (DISTRICTS, {"projects": ["n1"]}, None, "names no district"),
    (DISTRICTS, {"projects": ["n1"]}, "east", "no budget for district 'east'"),
    (DISTRICTS, {"projects": ["n1"]}, "North", "no budget for district 'North'"),
    (DISTRICTS, {"projects": ["n1"], "district": "north"}, "north",
     "the voter's district comes from their voting token"),
    (DISTRICTS, {"projects": ["n1"], "district": "north"}, None, "comes from their voting token"),
    (DISTRICTS, {"projects": ["s1"]}, "north", "project s1 is not in district north"),
    (DISTRICTS, {"projects": ["n1", "s2"]}, "north", "project s2 is not in district north"),
    (DISTRICTS, {"projects": ["n1", "n2"]}, "north", "cost 110 EUR, more than the budget of 100"),
    (DISTRICTS, {"projects": []}, "north", "choose at least 1 projects, not 0"),
    # Ranking.
    (RANKING, {"ranking": []}, None, "choose between 1 and 3 options to rank, not 0"),
    (RANKING, {"ranking": ["a", "b", "c", "d"]}, None, "between 1 and 3 options to rank, not 4"),
    (RANKING, {"ranking": ["a", "a"]}, None, "option 'a' is chosen more than once"),
    (RANKING, {"ranking": ["z"]}, None, "unknown option 'z'"),
    (RANKING, {"ranking": "abc"}, None, "ranking must be a list"),
    (RANKING, {"ranking": {"1": "a"}}, None, "ranking must be a list"),
    (RANKING, {"ranking": [1, 2]}, None, "option ids, not 1"),
    (RANKING, {"ranking": ["a"], "points": [3]}, None, "ranking ballot is"),
    # Majority judgment.
    (JUDGMENT, {"grades": {"a": "great"}}, None, "grade every option; not graded: b"),
    (JUDGMENT, {"grades": {}}, None, "not graded: a, b"),
    (JUDGMENT, {"grades": {"a": "great", "b": "good", "c": "poor"}}, None, "unknown option 'c'"),
    (JUDGMENT, {"grades": {"a": "great", "b": "Good"}}, None,
     "'Good' is not a grade of this poll; the grades are great, good, poor"),
    (JUDGMENT, {"grades": {"a": "great", "b": 1}}, None, "1 is not a grade"),
    (JUDGMENT, {"grades": {"a": "great", "b": None}}, None, "None is not a grade"),
    (JUDGMENT, {"grades": {"a": "great", "b": ["good"]}}, None, "is not a grade"),
    (JUDGMENT, {"grades": {1: "great", "b": "good"}}, None, "unknown option 1"),
    (JUDGMENT, {"grades": [["a", "great"], ["b", "good"]]}, None, "grades must be an object"),
    (JUDGMENT, {"grades": "great"}, None, "grades must be an object"),
    (JUDGMENT, {"grades": {"a": "great", "b": "good"}, "comment": "!"}, None,
     "majority judgment ballot is"),
]


@pytest.mark.parametrize(("poll", "choice", "district", "reason"), INVALID, ids=repr)
def test_invalid_ballots_are_refused_with_a_reason(poll: PollRules, choice: Any,
                                                   district: str | None, reason: str) -> None:
    with pytest.raises(InvalidBallot, match=reason):
        validate_choice(poll, choice, district=district)


@pytest.mark.parametrize(("poll", "recorded", "reason"), [
    (APPROVAL, {"approved": ["c", "a"]}, "not in its normalised form"),
    (APPROVAL, {"method": "approval", "approved": ["a"]}, "not in its normalised form"),
    (DISTRICTS, {"projects": ["n1"]}, "names no district"),
    (DISTRICTS, {"projects": ["s1"], "district": "north"}, "not in district north"),
    (DISTRICTS, {"projects": ["n1"], "district": "east"}, "no budget for district 'east'"),
    (BUDGET, {"projects": ["p1"], "district": "north"}, "names no district"),
    (YES_NO, {"answer": "maybe"}, "answer must be one of"),
], ids=repr)
def test_a_recorded_choice_must_be_valid_and_normalised(poll: PollRules, recorded: Any,
                                                        reason: str) -> None:
    with pytest.raises(InvalidBallot, match=reason):
        validate_recorded(poll, recorded)


def test_a_refusal_is_a_value_error() -> None:
    # Callers that catch ValueError (pydantic validators, for one) see refusals too.
    assert issubclass(InvalidBallot, ValueError)
