"""Request bodies of the public API: strict (unknown fields refused), with the
field limits of ``urne.contracts.fields``, the same the services enforce."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr

from urne.contracts.fields import Description, Id, LoginCodeText, ProposalBody, Title
from urne.counting.rules import PollRules


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeRequest(Body):
    email: EmailStr


class CodeVerify(Body):
    email: EmailStr
    code: LoginCodeText


class ConsultationCreate(Body):
    title: Title
    description: Description = ""


class ProposalCreate(Body):
    title: Title
    body: ProposalBody = ""


class PollCreate(Body):
    proposal_id: Id | None = None
    rules: PollRules


class BallotCast(Body):
    choice: dict[str, Any]
