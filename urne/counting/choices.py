"""The ballot formats at the HTTP edge, as pydantic models for OpenAPI.

A choice names its ``method`` so that a front end's ballot documents itself and the
gateway's schema is one tagged union. These models only check shapes; whether a
ballot is valid under a poll's rules (known ids, limits, budget, district) is
``validate_choice``'s decision, which also accepts the same document without
``method`` and returns the normalised choice that is stored, without it.

There is no ``district`` field in a budget ballot: a voter's district comes from
their voting token, never from what they send.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from urne.counting.rules import MAX_OPTIONS


class _Choice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


Ids = Annotated[list[str], Field(max_length=MAX_OPTIONS)]


class YesNoAbstainChoice(_Choice):
    method: Literal["yes_no_abstain"]
    answer: Literal["yes", "no", "abstain"]


class ApprovalChoice(_Choice):
    method: Literal["approval"]
    approved: Ids  # option ids, each at most once


class BudgetChoice(_Choice):
    method: Literal["budget"]
    projects: Ids  # project ids, each at most once


class RankingChoice(_Choice):
    method: Literal["ranking"]
    ranking: Ids  # option ids, best first


class MajorityJudgmentChoice(_Choice):
    method: Literal["majority_judgment"]
    grades: Annotated[dict[str, str], Field(max_length=MAX_OPTIONS)]  # option id -> grade


Choice = Annotated[
    YesNoAbstainChoice | ApprovalChoice | BudgetChoice | RankingChoice | MajorityJudgmentChoice,
    Field(discriminator="method"),
]
choice_adapter: TypeAdapter[Choice] = TypeAdapter(Choice)
