"""Counting: the rules of each voting method are checked when they are created, and
refused with a message that names the problem."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from urne.counting import (
    ApprovalRules,
    BudgetRules,
    MajorityJudgmentRules,
    RankingRules,
    choice_adapter,
    rules_adapter,
    rules_hash,
)

pytestmark = pytest.mark.unit


def options(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "title": f"Option {i}"} for i in ids]


def approval(**fields: Any) -> dict[str, Any]:
    return {"method": "approval", "question": "Which?", "options": options("a", "b", "c"),
            "max_choices": 2, **fields}


def budget(**fields: Any) -> dict[str, Any]:
    return {"method": "budget", "question": "Which projects?", "budget": 100,
            "projects": [{"id": "p1", "title": "Park", "cost": 60},
                         {"id": "p2", "title": "Bikes", "cost": 40}], **fields}


def districts(**fields: Any) -> dict[str, Any]:
    return {"method": "budget", "question": "Which projects?", "budgets": {"north": 100,
                                                                          "south": 50},
            "projects": [{"id": "n1", "title": "Park", "cost": 60, "district": "north"},
                         {"id": "s1", "title": "Bench", "cost": 5, "district": "south"}],
            **fields}


def ranking(**fields: Any) -> dict[str, Any]:
    return {"method": "ranking", "question": "Rank them", "options": options("a", "b", "c"),
            "max_ranks": 3, **fields}


def judgment(**fields: Any) -> dict[str, Any]:
    return {"method": "majority_judgment", "question": "Grade them",
            "options": options("a", "b"), "grades": ["good", "fair", "poor"], **fields}


def refused(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rules_adapter.validate_python(rules)


@pytest.mark.parametrize("rules", [approval(), budget(), districts(), ranking(), judgment()],
                         ids=lambda r: r["method"] + ("s" if "budgets" in r else ""))
def test_valid_rules_round_trip_and_hash_alike(rules: dict[str, Any]) -> None:
    parsed = rules_adapter.validate_python(rules)
    again = rules_adapter.validate_json(rules_adapter.dump_json(parsed))
    assert again == parsed
    assert rules_hash(again) == rules_hash(parsed)
    assert parsed.model_dump(mode="json")["method"] == rules["method"]


def test_defaults_are_written_out_and_hashed() -> None:
    # The hash covers the dump, defaults included: sending a default explicitly is
    # the same rules, and changing it is other rules.
    plain = rules_adapter.validate_python(approval())
    assert plain == rules_adapter.validate_python(approval(min_choices=0, seats=1))
    assert rules_hash(plain) == rules_hash(rules_adapter.validate_python(approval(seats=1)))
    assert rules_hash(plain) != rules_hash(rules_adapter.validate_python(approval(seats=2)))
    assert plain.model_dump(mode="json") == {**approval(), "min_choices": 0, "seats": 1}


@pytest.mark.parametrize(("text", "plain"), [
    ('{"method": "approval", "question": "Which?", "options": [{"id": "a", "title": "A"},'
     ' {"id": "b", "title": "B"}], "max_choices": 2.0, "min_choices": 1.0, "seats": 1.0}',
     {"method": "approval", "question": "Which?", "options": [{"id": "a", "title": "A"},
      {"id": "b", "title": "B"}], "max_choices": 2, "min_choices": 1, "seats": 1}),
    ('{"method": "budget", "question": "Which projects?", "budget": 1e2, "projects":'
     ' [{"id": "p1", "title": "Park", "cost": 60.0}, {"id": "p2", "title": "Bikes",'
     ' "cost": 40}]}', budget()),
    ('{"method": "ranking", "question": "Rank them", "options": [{"id": "a", "title": "A"},'
     ' {"id": "b", "title": "B"}], "max_ranks": 2.0, "points": [3.0, 1]}',
     {"method": "ranking", "question": "Rank them", "options": [{"id": "a", "title": "A"},
      {"id": "b", "title": "B"}], "max_ranks": 2, "points": [3, 1]}),
], ids=["approval", "budget", "ranking"])
def test_a_whole_number_written_with_a_fraction_is_the_same_rules(
        text: str, plain: dict[str, Any]) -> None:
    # JSON Schema's "integer" (the API's schema) admits 2.0; the rules it makes are
    # those of 2, hash included, so no two spellings give two hashes.
    parsed = rules_adapter.validate_json(text)
    assert parsed == rules_adapter.validate_python(plain)
    assert rules_hash(parsed) == rules_hash(rules_adapter.validate_python(plain))
    assert '.0' not in rules_adapter.dump_json(parsed).decode()


def test_rules_are_frozen_all_the_way_down() -> None:
    rules = rules_adapter.validate_python(approval())
    assert isinstance(rules, ApprovalRules)
    with pytest.raises(ValidationError):
        rules.seats = 2
    assert isinstance(rules.options, tuple)  # no rules.options.append(...)


@pytest.mark.parametrize(("rules", "message"), [
    ({**approval(), "options": []}, "at least 1 item"),
    ({**approval(), "options": options(*(f"o{i}" for i in range(501)))}, "at most 500"),
    ({**approval(), "options": options("a", "a", "b")}, "option ids must be unique; repeated: a"),
    ({**approval(), "options": options("a", "-b")}, "pattern"),
    ({**approval(), "options": options("a", "b c")}, "pattern"),
    ({**approval(), "options": options("a", "")}, "at least 1 character"),
    ({**approval(), "options": options("a", "x" * 65)}, "at most 64"),
    ({**approval(), "options": [{"id": "a", "title": ""}]}, "at least 1 character"),
    ({**approval(), "options": [{"id": "a", "title": "t" * 301}]}, "at most 300"),
    ({**approval(), "options": [{"id": "a", "title": "A", "cost": 3}]}, "Extra inputs"),
    (approval(question=""), "at least 1 character"),
    (approval(extra=1), "Extra inputs"),
    ({k: v for k, v in approval().items() if k != "max_choices"}, "max_choices\n  Field required"),
    (approval(max_choices=0), "greater than or equal to 1"),
    (approval(max_choices=True), "valid integer"),
    (approval(max_choices="2"), "valid integer"),
    (approval(max_choices=2.5), "valid integer"),
    (approval(max_choices="2.0"), "valid integer"),
    (approval(min_choices=-1), "greater than or equal to 0"),
    (approval(min_choices=3, max_choices=2), r"min_choices \(3\) cannot exceed max_choices \(2\)"),
    (approval(max_choices=4), r"max_choices \(4\) cannot exceed the number of options \(3\)"),
    (approval(seats=0), "greater than or equal to 1"),
    (approval(seats=4), r"seats \(4\) cannot exceed the number of options \(3\)"),
], ids=repr)
def test_approval_rules_are_checked(rules: dict[str, Any], message: str) -> None:
    refused(rules, message)


@pytest.mark.parametrize(("rules", "message"), [
    ({**budget(), "projects": []}, "at least 1 item"),
    ({**budget(), "projects": [{"id": "p1", "title": "Park", "cost": 0}]}, "greater than or"),
    ({**budget(), "projects": [{"id": "p1", "title": "Park", "cost": -5}]}, "greater than or"),
    ({**budget(), "projects": [{"id": "p1", "title": "Park", "cost": 1.5}]}, "valid integer"),
    ({**budget(), "projects": [{"id": "p1", "title": "Park", "cost": True}]}, "valid integer"),
    ({**budget(), "projects": [{"id": "p1", "title": "Park"}]}, "cost\n  Field required"),
    ({**budget(), "projects": [{"id": "p1", "title": "P", "cost": 2**53}]}, "less than or equal"),
    ({**budget(), "projects": [{"id": "p1", "title": "P", "cost": 5},
                               {"id": "p1", "title": "Q", "cost": 5}]},
     "project ids must be unique; repeated: p1"),
    ({k: v for k, v in budget().items() if k != "budget"}, "exactly one of budget"),
    (budget(budgets={"north": 100}), "exactly one of budget"),
    (budget(budget=0), "greater than or equal to 1"),
    (budget(budget="100"), "valid integer"),
    (budget(currency="eur"), "pattern"),
    (budget(currency="EURO"), "pattern"),
    (budget(min_projects=-1), "greater than or equal to 0"),
    (budget(max_projects=0), "greater than or equal to 1"),
    (budget(min_projects=2, max_projects=1), r"min_projects \(2\) cannot exceed max_projects"),
    (budget(min_projects=3), r"min_projects \(3\) exceeds the number of projects \(2\)"),
    (budget(budget=99, min_projects=2, projects=[{"id": "p1", "title": "P", "cost": 60},
                                                 {"id": "p2", "title": "Q", "cost": 40}]),
     r"the 2 cheapest projects cost 100, more than the budget \(99\)"),
    (budget(budget=50), r"cost more than the budget \(50\), so no ballot could choose them: p1"),
    (budget(projects=[{"id": "p1", "title": "P", "cost": 5, "district": "north"}]),
     "with a single budget, projects have no district; these have one: p1"),
    ({**districts(), "budgets": {}}, "budgets must name at least one district"),
    ({**districts(), "budgets": {"north": 100, "south": 0}}, "greater than or equal to 1"),
    ({**districts(), "budgets": {"north": 100, "south side": 50}}, "pattern"),
    ({**districts(), "budgets": {"north": 100, "*": 50}}, "pattern"),
    ({**districts(), "budgets": {"north": 100}},
     "every project names one of those districts; these do not: s1"),
    ({**districts(), "projects": [{"id": "n1", "title": "P", "cost": 60, "district": "north"},
                                  {"id": "s1", "title": "Q", "cost": 5}]},
     "these do not: s1"),
    ({**districts(), "budgets": {"north": 100, "south": 50, "east": 10}},
     "district east has a budget but no project"),
    (districts(min_projects=2), r"min_projects \(2\) exceeds the number of projects of "
                                r"district north \(1\)"),
    ({**districts(), "budgets": {"north": 59, "south": 50}},
     r"cost more than the budget of district north \(59\), so no ballot could choose them: n1"),
], ids=repr)
def test_budget_rules_are_checked(rules: dict[str, Any], message: str) -> None:
    refused(rules, message)


def test_a_minimum_that_fits_the_budget_exactly_is_fine() -> None:
    # 60 + 40 = 100: every voter can cast a valid ballot (this one).
    assert isinstance(rules_adapter.validate_python(budget(min_projects=2)), BudgetRules)


def test_budget_rules_know_their_districts() -> None:
    single = rules_adapter.validate_python(budget())
    split = rules_adapter.validate_python(districts())
    assert isinstance(single, BudgetRules) and isinstance(split, BudgetRules)
    assert single.district_budgets() == {None: 100}
    assert split.district_budgets() == {"north": 100, "south": 50}
    assert not single.per_district and split.per_district
    assert single.currency == "EUR" and single.max_projects is None


@pytest.mark.parametrize(("rules", "message"), [
    (ranking(max_ranks=0), "greater than or equal to 1"),
    (ranking(max_ranks=4), r"max_ranks \(4\) cannot exceed the number of options \(3\)"),
    (ranking(points=[3, 2]), "one value per rank: 3 values, not 2"),
    (ranking(points=[3, 2, 1, 0]), "one value per rank: 3 values, not 4"),
    (ranking(points=[0, 0, 0]), "the first rank must earn more than 0 points"),
    (ranking(points=[3, 4, 1]), "points must not increase"),
    (ranking(points=[3, 2, -1]), "greater than or equal to 0"),
    (ranking(points=[3, 2, True]), "valid integer"),
    (ranking(points=[2_000_000, 1, 0]), "less than or equal to 1000000"),
    (ranking(seats=4), r"seats \(4\) cannot exceed"),
    ({**ranking(), "options": options("a", "b", "a")}, "repeated: a"),
    ({k: v for k, v in ranking().items() if k != "max_ranks"}, "max_ranks\n  Field required"),
], ids=repr)
def test_ranking_rules_are_checked(rules: dict[str, Any], message: str) -> None:
    refused(rules, message)


def test_ranking_points_default_to_borda_without_being_written_back() -> None:
    borda = rules_adapter.validate_python(ranking(max_ranks=2))
    explicit = rules_adapter.validate_python(ranking(max_ranks=2, points=[2, 1]))
    assert isinstance(borda, RankingRules) and isinstance(explicit, RankingRules)
    assert borda.points is None and borda.rank_points() == (2, 1)
    assert explicit.rank_points() == (2, 1)
    # The organiser's rules are kept as sent: the two are different rules.
    assert rules_hash(borda) != rules_hash(explicit)
    flat = rules_adapter.validate_python(ranking(points=[1, 1, 0]))
    assert isinstance(flat, RankingRules) and flat.rank_points() == (1, 1, 0)


@pytest.mark.parametrize(("rules", "message"), [
    (judgment(grades=["good"]), "at least 2 items"),
    (judgment(grades=[f"g{i}" for i in range(11)]), "at most 10 items"),
    (judgment(grades=["good", "good", "poor"]), "grades must be distinct; repeated: good"),
    (judgment(grades=["good", ""]), "at least 1 character"),
    (judgment(grades=["good", "   "]), "pattern"),
    (judgment(grades=["good", 3]), "valid string"),
    (judgment(seats=3), r"seats \(3\) cannot exceed the number of options \(2\)"),
    ({**judgment(), "options": options("a", "a")}, "repeated: a"),
], ids=repr)
def test_majority_judgment_rules_are_checked(rules: dict[str, Any], message: str) -> None:
    refused(rules, message)


def test_majority_judgment_grades_keep_their_order() -> None:
    rules = rules_adapter.validate_python(judgment(grades=["Très bien", "Bien", "Passable"]))
    assert isinstance(rules, MajorityJudgmentRules)
    assert rules.grades == ("Très bien", "Bien", "Passable")


def test_unknown_methods_are_refused() -> None:
    refused({"method": "condorcet", "question": "q"}, "does not match any of the expected tags")


@pytest.mark.parametrize("choice", [
    {"method": "yes_no_abstain", "answer": "yes"},
    {"method": "approval", "approved": ["a", "b"]},
    {"method": "budget", "projects": []},
    {"method": "ranking", "ranking": ["b", "a"]},
    {"method": "majority_judgment", "grades": {"a": "good"}},
], ids=repr)
def test_the_edge_models_read_each_ballot(choice: dict[str, Any]) -> None:
    parsed = choice_adapter.validate_python(choice)
    assert parsed.model_dump() == choice


@pytest.mark.parametrize("choice", [
    {"answer": "yes"},  # the edge needs the method
    {"method": "yes_no_abstain", "answer": "maybe"},
    {"method": "approval", "approved": "a"},
    {"method": "approval", "approved": [1]},
    {"method": "budget", "projects": ["p1"], "district": "north"},
    {"method": "ranking", "ranking": ["a"], "extra": True},
    {"method": "majority_judgment", "grades": ["good"]},
    {"method": "borda", "ranking": []},
], ids=repr)
def test_the_edge_models_refuse_malformed_ballots(choice: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        choice_adapter.validate_python(choice)


def test_the_edge_models_have_a_json_schema() -> None:
    schema = choice_adapter.json_schema()
    assert set(schema["discriminator"]["mapping"]) == {
        "yes_no_abstain", "approval", "budget", "ranking", "majority_judgment"}
    assert "district" not in schema["$defs"]["BudgetChoice"]["properties"]
