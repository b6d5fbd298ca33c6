"""Yes / no / abstain: one question; adopted when yes outnumbers no.

The result format predates the other methods and is pinned by the golden files:
``{"method", "counts", "ballots", "outcome"}``, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from urne.counting.ballots import InvalidBallot, body
from urne.counting.rules import YesNoAbstainRules
from urne.counting.tally import Tally, Vector

ANSWERS = ("yes", "no", "abstain")
_INDEX = {answer: i for i, answer in enumerate(ANSWERS)}
SHAPE = '{"answer": "yes" | "no" | "abstain"}'


def validate(rules: YesNoAbstainRules, choice: Mapping[str, Any]) -> dict[str, Any]:
    answer = body(choice, rules.method, "answer", SHAPE)
    if type(answer) is not str or answer not in _INDEX:
        raise InvalidBallot(f"answer must be one of {', '.join(ANSWERS)}")
    return {"answer": answer}


class YesNoAbstainTally(Tally[YesNoAbstainRules]):
    method = "yes_no_abstain"

    def _layout(self) -> tuple[Vector, ...]:
        return (Vector("counts", ANSWERS),)

    def _apply(self, choice: Mapping[str, Any], sign: int) -> None:
        self.vectors["counts"][_INDEX[choice["answer"]]] += sign

    def _result(self) -> dict[str, Any]:
        counts = dict(zip(ANSWERS, self.vectors["counts"], strict=True))
        if counts["yes"] > counts["no"]:
            outcome = "adopted"
        elif counts["yes"] < counts["no"]:
            outcome = "rejected"
        else:
            outcome = "tied"  # no ballots at all is a tie too, as it always was
        return {"method": self.method, "counts": counts, "ballots": self.ballots,
                "outcome": outcome}
