"""Request bodies of the public API: strict (unknown fields refused), with the
field limits of ``urne.contracts.fields``, the same the services enforce."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr

from urne.contracts.fields import Description, District, Id, LoginCodeText, ProposalBody, Title
from urne.contracts.steps import DEFAULT_TIME_ZONE, Steps, TimeZone
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
    # An IANA name, for showing the steps' times; the times themselves are in UTC.
    time_zone: TimeZone = DEFAULT_TIME_ZONE
    steps: Steps = ()


class ConsultationUpdate(Body):
    """What to change; a field left out (or null) stays as it is. ``steps`` replaces
    the whole calendar."""

    title: Title | None = None
    description: Description | None = None
    time_zone: TimeZone | None = None
    steps: Steps | None = None


class OrganiserAdd(Body):
    # The person's id, which they read at GET /v1/me: e-mail addresses stay in identity.
    person_id: Id


class ProposalCreate(Body):
    title: Title
    body: ProposalBody = ""


class PollCreate(Body):
    proposal_id: Id | None = None
    rules: PollRules


class PollUpdate(Body):
    rules: PollRules  # while the poll is a draft only


class BallotCast(Body):
    # Tagged by ``method``, required: a client generated from the OpenAPI document gets
    # one typed ballot per voting method.
    choice: Choice
