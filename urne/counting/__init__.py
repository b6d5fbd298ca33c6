"""Counting: a result is a pure function of (rules, ballots) — D8.

The same functions run in the tally service, in the recount at close and in the
public verifier, so they import nothing but the standard library and pydantic.
"""

from urne.counting.methods import InvalidBallot, count, validate_choice
from urne.counting.rules import PollRules, YesNoAbstainRules, rules_hash

__all__ = [
    "InvalidBallot",
    "PollRules",
    "YesNoAbstainRules",
    "count",
    "rules_hash",
    "validate_choice",
]
