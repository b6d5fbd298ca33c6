"""Validation of one ballot and counting of many: the dispatch to each method.

Each voting method has its own module (``yes_no_abstain``, ``approval``, ``budget``,
``ranking``, ``majority_judgment``) with its ballot check and its tally; this module
picks the one the rules name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from urne.counting import approval, budget, majority_judgment, ranking, yes_no_abstain
from urne.counting.ballots import InvalidBallot
from urne.counting.rules import (
    ApprovalRules,
    BudgetRules,
    MajorityJudgmentRules,
    PollRules,
    RankingRules,
    YesNoAbstainRules,
)
from urne.counting.tally import Tally, TallyError

__all__ = ["InvalidBallot", "count", "new_tally", "tally_from_state", "validate_choice",
           "validate_recorded"]

_TALLIES: dict[type[Any], type[Tally[Any]]] = {
    YesNoAbstainRules: yes_no_abstain.YesNoAbstainTally,
    ApprovalRules: approval.ApprovalTally,
    BudgetRules: budget.BudgetTally,
    RankingRules: ranking.RankingTally,
    MajorityJudgmentRules: majority_judgment.MajorityJudgmentTally,
}


def validate_choice(rules: PollRules, choice: Mapping[str, Any], *,
                    district: str | None = None) -> dict[str, Any]:
    """Return the normalised choice, or raise InvalidBallot with a human reason.

    ``choice`` is what the voter sent, with or without ``method``; the normalised
    choice (what is stored, recorded and counted) never has ``method``. ``district``
    is the voter's, from their voting token: it matters only to a budget with
    budgets per district, whose normalised choice then records it.
    """
    if isinstance(rules, YesNoAbstainRules):
        return yes_no_abstain.validate(rules, choice)
    if isinstance(rules, ApprovalRules):
        return approval.validate(rules, choice)
    if isinstance(rules, BudgetRules):
        return budget.validate(rules, choice, district)
    if isinstance(rules, RankingRules):
        return ranking.validate(rules, choice)
    if isinstance(rules, MajorityJudgmentRules):
        return majority_judgment.validate(rules, choice)
    raise InvalidBallot(f"unsupported voting method {rules.method!r}")  # pragma: no cover


def validate_recorded(rules: PollRules, choice: Mapping[str, Any]) -> dict[str, Any]:
    """Check a choice as stored or recorded: valid under the rules, and already in
    normalised form (the form ``validate_choice`` returns). For budgets per district,
    the district is the one the choice records. For auditors and for re-checks of a
    choice that was normalised once already."""
    body = dict(choice) if isinstance(choice, Mapping) else choice
    district = None
    if isinstance(rules, BudgetRules) and rules.budgets is not None and isinstance(body, dict):
        district = body.pop("district", None)
    normalised = validate_choice(rules, body, district=district)
    if normalised != choice:
        raise InvalidBallot("the choice is valid but not in its normalised form")
    return normalised


def new_tally(rules: PollRules) -> Tally[Any]:
    """An empty tally for these rules: ``add``/``remove`` choices, ``merge`` partial
    tallies, checkpoint with ``state()``, publish ``result()``."""
    return _TALLIES[type(rules)](rules)


def tally_from_state(rules: PollRules, state: Mapping[str, Any]) -> Tally[Any]:
    """The tally a ``state()`` checkpoint was taken from; TallyError if the state is
    not one of these rules."""
    if not isinstance(state, Mapping) or state.get("method") != rules.method:
        raise TallyError(f"not the state of a {rules.method} tally")
    return _TALLIES[type(rules)].from_state(rules, state)


def count(rules: PollRules, choices: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count already-validated choices (one per voter) into the result's tally."""
    tally = new_tally(rules)
    for choice in choices:
        tally.add(choice)
    return tally.result()
