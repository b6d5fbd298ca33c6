"""Counting: ballot validation, outcomes and the rules hash (D8)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from urne.counting import InvalidBallot, YesNoAbstainRules, count, rules_hash, validate_choice
from urne.counting.rules import rules_adapter

pytestmark = pytest.mark.unit

RULES = YesNoAbstainRules(method="yes_no_abstain", question="Pedestrianise the market square?")


@pytest.mark.parametrize("answer", ["yes", "no", "abstain"])
def test_each_answer_is_a_valid_choice(answer: str) -> None:
    assert validate_choice(RULES, {"answer": answer}) == {"answer": answer}


@pytest.mark.parametrize(
    "choice",
    [
        {},
        {"answer": "yes", "extra": 1},
        {"answer": "yes", "district": "north"},
        {"vote": "yes"},
        {"answer": "maybe"},
        {"answer": "YES"},
        {"answer": " yes"},
        {"answer": ""},
        {"answer": None},
        {"answer": 1},
        {"answer": True},
        {"answer": ["yes"]},
        {"answer": {"yes": 1}},
    ],
    ids=repr,
)
def test_invalid_choices_are_refused(choice: dict) -> None:
    with pytest.raises(InvalidBallot):
        validate_choice(RULES, choice)


def test_validate_returns_a_normalised_copy() -> None:
    choice = {"answer": "no"}
    normalised = validate_choice(RULES, choice)
    assert normalised == choice
    assert normalised is not choice


def _ballots(yes: int, no: int, abstain: int) -> list[dict]:
    return [{"answer": "yes"}] * yes + [{"answer": "no"}] * no + [{"answer": "abstain"}] * abstain


@pytest.mark.parametrize(
    ("yes", "no", "abstain", "outcome"),
    [
        (3, 1, 0, "adopted"),
        (1, 0, 50, "adopted"),  # abstentions do not block adoption
        (1, 3, 2, "rejected"),
        (0, 1, 0, "rejected"),
        (2, 2, 1, "tied"),
        (0, 0, 4, "tied"),
        (0, 0, 0, "tied"),  # no ballots at all
    ],
)
def test_count_outcomes(yes: int, no: int, abstain: int, outcome: str) -> None:
    result = count(RULES, _ballots(yes, no, abstain))
    assert result == {
        "method": "yes_no_abstain",
        "counts": {"yes": yes, "no": no, "abstain": abstain},
        "ballots": yes + no + abstain,
        "outcome": outcome,
    }


def test_count_accepts_any_iterable_and_ignores_order() -> None:
    ballots = _ballots(2, 1, 1)
    assert count(RULES, iter(ballots)) == count(RULES, list(reversed(ballots)))


def test_rules_hash_is_stable_and_canonical() -> None:
    same = YesNoAbstainRules(method="yes_no_abstain", question=RULES.question)
    parsed = rules_adapter.validate_json(rules_adapter.dump_json(RULES))
    assert rules_hash(RULES) == rules_hash(same) == rules_hash(parsed)
    assert len(rules_hash(RULES)) == 64
    int(rules_hash(RULES), 16)  # lowercase hex


def test_rules_hash_known_value() -> None:
    # Pinned: the hash is published in every signed result, so its encoding
    # (canonical JSON of the rules, SHA-256, hex) must never change silently.
    import hashlib

    expected = hashlib.sha256(
        b'{"method":"yes_no_abstain","question":"Pedestrianise the market square?"}'
    ).hexdigest()
    assert rules_hash(RULES) == expected


def test_rules_hash_changes_with_the_question() -> None:
    other = YesNoAbstainRules(method="yes_no_abstain", question="Pedestrianise the market square ?")
    assert rules_hash(other) != rules_hash(RULES)


def test_rules_are_strict() -> None:
    with pytest.raises(ValidationError):
        rules_adapter.validate_python({"method": "yes_no_abstain", "question": ""})
    with pytest.raises(ValidationError):
        rules_adapter.validate_python({"method": "approval", "question": "q"})
    with pytest.raises(ValidationError):
        rules_adapter.validate_python({"method": "yes_no_abstain", "question": "q", "x": 1})
