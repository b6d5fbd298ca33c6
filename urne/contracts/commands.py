"""Commands and queries, grouped by the service that handles them (``OWNER``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import EmailStr, Field

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
class _Proposal(Command):
    OWNER = "proposal"


@message("consultation.create.v1")
class CreateConsultation(_Proposal):
    title: Title
    description: Description = ""
    created_by: Id


@message("proposal.add.v1")
class AddProposal(_Proposal):
    consultation_id: Id
    title: Title
    body: ProposalBody = ""
    author_id: Id


@message("poll.create.v1")
class CreatePoll(_Proposal):
    consultation_id: Id
    proposal_id: Id | None = None
    rules: PollRules


@message("poll.open.v1")
class OpenPoll(_Proposal):
    poll_id: Id


@message("poll.close.v1")
class ClosePoll(_Proposal):
    poll_id: Id


class _ProposalQuery(Query):
    OWNER = "proposal"


@message("consultation.get.v1")
class GetConsultation(_ProposalQuery):
    consultation_id: Id


@message("consultation.list.v1")
class ListConsultations(_ProposalQuery):
    limit: PageLimit = 50


@message("poll.get.v1")
class GetPoll(_ProposalQuery):
    poll_id: Id


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
