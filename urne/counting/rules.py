"""Poll rules: the public, frozen description of how a poll is voted and counted.

Rules are a tagged union on ``method``; each voting method adds one model here and
one counter in ``methods.py``. Once a poll opens, its rules are frozen and their
hash goes into the signed result.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from urne.record.canonical import canonical_json, sha256_hex


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class YesNoAbstainRules(_Rules):
    """One question, answered yes, no or abstain; adopted when yes outnumbers no."""

    method: Literal["yes_no_abstain"]  # required: it is the union's discriminator
    question: str = Field(min_length=1, max_length=2000)


# A tagged union: the next methods (approval, budget, ranking, majority judgment)
# join it without touching the existing ones.
PollRules = Annotated[YesNoAbstainRules, Field(discriminator="method")]
rules_adapter: TypeAdapter[PollRules] = TypeAdapter(PollRules)


def rules_hash(rules: PollRules) -> str:
    """SHA-256 of the canonical JSON of the rules, as published in the record."""
    return sha256_hex(canonical_json(rules.model_dump(mode="json")))
