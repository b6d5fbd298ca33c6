"""Counting: a result is a pure function of (rules, ballots) — D8.

The same functions run in the vote path (ballot checks), in the tally service, in
the recount at close and in the public verifier, so they import nothing but the
standard library, pydantic and the canonical JSON of ``urne.record``.

- ``rules``: the frozen rules of a poll, one model per voting method;
- ``choices``: the ballot formats at the HTTP edge (for OpenAPI);
- ``methods``: ``validate_choice``, ``count`` and tallies, dispatched per method to
  ``yes_no_abstain``, ``approval``, ``budget``, ``ranking``, ``majority_judgment``;
- ``tally``: what every tally shares (add, remove, merge, state, result).

docs/auditing.md, "Counting, per method", describes every format.
"""

from urne.counting.ballots import InvalidBallot
from urne.counting.choices import (
    ApprovalChoice,
    BudgetChoice,
    Choice,
    MajorityJudgmentChoice,
    RankingChoice,
    YesNoAbstainChoice,
    choice_adapter,
)
from urne.counting.methods import (
    count,
    new_tally,
    tally_from_state,
    validate_choice,
    validate_recorded,
)
from urne.counting.rules import (
    ApprovalRules,
    BudgetRules,
    MajorityJudgmentRules,
    Option,
    PollRules,
    Project,
    RankingRules,
    YesNoAbstainRules,
    rules_adapter,
    rules_hash,
)
from urne.counting.tally import Tally, TallyError

__all__ = [
    "ApprovalChoice",
    "ApprovalRules",
    "BudgetChoice",
    "BudgetRules",
    "Choice",
    "InvalidBallot",
    "MajorityJudgmentChoice",
    "MajorityJudgmentRules",
    "Option",
    "PollRules",
    "Project",
    "RankingChoice",
    "RankingRules",
    "Tally",
    "TallyError",
    "YesNoAbstainChoice",
    "YesNoAbstainRules",
    "choice_adapter",
    "count",
    "new_tally",
    "rules_adapter",
    "rules_hash",
    "tally_from_state",
    "validate_choice",
    "validate_recorded",
]
