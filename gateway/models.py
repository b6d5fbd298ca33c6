"""Request bodies of the public API (responses reuse ``urne.contracts.views``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from urne.counting.rules import PollRules


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeRequest(Body):
    email: EmailStr


class CodeVerify(Body):
    email: EmailStr
    code: str = Field(min_length=1, max_length=32)


class ConsultationCreate(Body):
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20_000)


class ProposalCreate(Body):
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(default="", max_length=50_000)


class PollCreate(Body):
    proposal_id: str | None = None
    rules: PollRules


class BallotCast(Body):
    choice: dict[str, Any]


class ResultSummary(BaseModel):
    poll_id: str
    tally: dict[str, Any]
    record_root: str
    ballots_counted: int
    rules_hash: str
    computed_at: str
