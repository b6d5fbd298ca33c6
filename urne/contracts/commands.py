"""Commands and queries, grouped by the service that handles them (``OWNER``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from urne.contracts.envelope import Command, Query, message
from urne.contracts.fields import (
    BallotId,
    Description,
    District,
    Id,
    IdempotencyKey,
    LoginCodeText,
    PageLimit,
    ProposalBody,
    Title,
    Tracker,
    VotingTokenText,
)
from urne.contracts.roles import Role
from urne.contracts.steps import DEFAULT_TIME_ZONE, Steps, TimeZone
from urne.counting.rules import MAX_OPTIONS, PollRules


# --- identity --------------------------------------------------------------
class _Identity(Command):
    OWNER = "identity"


@message("login_code.request.v1")
class RequestLoginCode(_Identity):
    email: EmailStr


@message("login_code.verify.v1")
class VerifyLoginCode(_Identity):
    email: EmailStr
    code: LoginCodeText


@message("voting_token.issue.v1")
class IssueVotingToken(_Identity):
    person_id: Id
    poll_id: Id


@message("voting_token.issue_synthetic.v1")
class IssueSyntheticVotingTokens(_Identity):
    """Voting tokens for made-up voters, for load tests: refused by identity outside
    development and test (it would mint ballots for people who do not exist)."""

    poll_id: Id
    count: int = Field(ge=1, le=1000)
    # Made-up voters are spread round-robin over these (none: no district in the
    # tokens), so load tests can exercise a budget per district.
    districts: list[District] = Field(default_factory=list, max_length=MAX_OPTIONS)


@message("person.declare_district.v1")
class DeclareDistrict(_Identity):
    """The district a person says they live in, stored as declared (unverified): it goes
    into their voting tokens from then on. Declaring again replaces it."""

    person_id: Id
    district: District


class _IdentityQuery(Query):
    OWNER = "identity"


@message("person.get.v1")
class GetPerson(_IdentityQuery):
    person_id: Id


# --- proposal --------------------------------------------------------------
class Actor(BaseModel):
    """Who asks: the person and role of the access token the gateway verified. The
    proposal service decides from it alone what they may see and do (their role, and
    whether they are one of the consultation's organisers)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    person_id: Id
    role: Role


class _Proposal(Command):
    OWNER = "proposal"


# Every proposal command carries its ``actor`` (required): added before the first
# release, so within v1. The creator (``consultation.create``) and the author
# (``proposal.add``) are the actor.
@message("consultation.create.v1")
class CreateConsultation(_Proposal):
    """A consultation in draft, seen only by its organisers (the actor, first) and
    admins until it is published."""

    title: Title
    description: Description = ""
    time_zone: TimeZone = DEFAULT_TIME_ZONE
    steps: Steps = ()
    actor: Actor


@message("consultation.update.v1")
class UpdateConsultation(_Proposal):
    """Change what is given (a field left out, or null, stays as it is); ``steps``
    replaces the whole calendar."""

    consultation_id: Id
    title: Title | None = None
    description: Description | None = None
    time_zone: TimeZone | None = None
    steps: Steps | None = None
    actor: Actor


@message("consultation.publish.v1")
class PublishConsultation(_Proposal):
    consultation_id: Id
    actor: Actor


@message("consultation.add_organiser.v1")
class AddOrganiser(_Proposal):
    """Make ``person_id`` one of the consultation's organisers (the gateway has checked
    with identity that they are an organiser or an admin)."""

    consultation_id: Id
    person_id: Id
    actor: Actor


@message("proposal.add.v1")
class AddProposal(_Proposal):
    consultation_id: Id
    title: Title
    body: ProposalBody = ""
    actor: Actor


@message("poll.create.v1")
class CreatePoll(_Proposal):
    consultation_id: Id
    proposal_id: Id | None = None
    rules: PollRules
    actor: Actor


@message("poll.update.v1")
class UpdatePoll(_Proposal):
    """New rules for a poll still in draft (frozen from its opening on)."""

    poll_id: Id
    rules: PollRules
    actor: Actor


@message("poll.open.v1")
class OpenPoll(_Proposal):
    poll_id: Id
    actor: Actor


@message("poll.close.v1")
class ClosePoll(_Proposal):
    poll_id: Id
    actor: Actor


class _ProposalQuery(Query):
    OWNER = "proposal"


# Queries take an optional ``actor``: without one (anonymous), drafts do not exist.
@message("consultation.get.v1")
class GetConsultation(_ProposalQuery):
    consultation_id: Id
    actor: Actor | None = None


@message("consultation.list.v1")
class ListConsultations(_ProposalQuery):
    limit: PageLimit = 50
    actor: Actor | None = None


@message("poll.get.v1")
class GetPoll(_ProposalQuery):
    poll_id: Id
    actor: Actor | None = None


# --- vote ------------------------------------------------------------------
@message("ballot.cast.v2")
class CastBallot(Command):
    """Cast or replace the ballot of the voter the token names.

    v2 (v1 was never released): the edge that takes the request names the ballot
    (``ballot_id``, ``tracker``, ``received_at``), so whoever records it, and however
    often it is redelivered, writes the very same row; ``idempotency_key`` makes a
    client's retry return the first receipt instead of casting again. ``choice`` is
    the voter's, as sent, without ``method``: the vote service checks it against the
    frozen rules, with the district of the voting token, and stores its normal form.
    """

    OWNER = "vote"
    poll_id: Id
    voting_token: VotingTokenText
    choice: dict[str, Any]
    channel: Literal["online"] = "online"
    ballot_id: BallotId
    tracker: Tracker
    received_at: datetime
    idempotency_key: IdempotencyKey | None = None


# --- tally -----------------------------------------------------------------
class _TallyQuery(Query):
    OWNER = "tally"


@message("result.get.v1")
class GetResult(_TallyQuery):
    poll_id: Id


@message("record.get.v1")
class GetRecord(_TallyQuery):
    poll_id: Id


@message("record.prove_inclusion.v1")
class ProveInclusion(_TallyQuery):
    poll_id: Id
    tracker: Tracker


# --- every service ---------------------------------------------------------
@message("service.check_health.v1")
class CheckHealth(Query):
    """Answered by every service (``OWNER`` is set per call, not per class)."""

    OWNER = "*"
