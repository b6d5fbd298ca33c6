"""Validation of one ballot and counting of many, per voting method."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from urne.counting.rules import PollRules, YesNoAbstainRules

YES_NO_ABSTAIN = ("yes", "no", "abstain")


class InvalidBallot(ValueError):
    """The choice does not satisfy the poll's frozen rules."""


def validate_choice(rules: PollRules, choice: Mapping[str, Any]) -> dict[str, Any]:
    """Return the normalised choice, or raise InvalidBallot with a human reason."""
    if isinstance(rules, YesNoAbstainRules):
        if set(choice) != {"answer"}:
            raise InvalidBallot('a yes/no/abstain ballot is {"answer": "yes" | "no" | "abstain"}')
        answer = choice["answer"]
        if answer not in YES_NO_ABSTAIN:
            raise InvalidBallot(f"answer must be one of {', '.join(YES_NO_ABSTAIN)}")
        return {"answer": answer}
    raise InvalidBallot(f"unsupported voting method {rules.method!r}")  # pragma: no cover


def count(rules: PollRules, choices: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count already-validated choices (one per voter) into the result's tally."""
    if isinstance(rules, YesNoAbstainRules):
        counts = dict.fromkeys(YES_NO_ABSTAIN, 0)
        for choice in choices:
            counts[choice["answer"]] += 1
        if counts["yes"] > counts["no"]:
            outcome = "adopted"
        elif counts["yes"] < counts["no"]:
            outcome = "rejected"
        else:
            outcome = "tied"
        return {"method": rules.method, "counts": counts, "ballots": sum(counts.values()),
                "outcome": outcome}
    raise InvalidBallot(f"unsupported voting method {rules.method!r}")  # pragma: no cover
