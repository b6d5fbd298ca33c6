"""Request bodies of the public API: strict (unknown fields refused), with the
field limits of ``urne.contracts.fields``, the same the services enforce."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr

from urne.contracts.fields import Description, District, Id, LoginCodeText, ProposalBody, Title
from urne.counting import Choice
from urne.counting.rules import PollRules


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeRequest(Body):
    email: EmailStr


class CodeVerify(Body):
    email: EmailStr
    code: LoginCodeText


class DistrictDeclare(Body):
    district: District


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
    # Tagged by ``method``, required: a client generated from the OpenAPI document gets
    # one typed ballot per voting method.
    choice: Choice
