"""Consultations, their organisers, their proposals and their polls.

Every command carries its ``actor`` (the access token's person and role): the proposal
service decides from it who may see a draft and who may act on a consultation. The
routes check the role only, so a participant is refused before any service is asked
(except where anyone signed in may act: submitting a proposal).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from urne.contracts.commands import (
    AddOrganiser,
    AddProposal,
    CreateConsultation,
    CreatePoll,
    GetConsultation,
    GetPerson,
    ListConsultations,
    ListProposals,
    PublishConsultation,
    UpdateConsultation,
)
from urne.contracts.fields import Id
from urne.contracts.replies import ProposalStatus
from urne.contracts.roles import STAFF
from urne.counting.rules import IDENTIFIER
from urne.gateway.deps import (
    OPTIONAL_AUTH,
    CurrentUser,
    OptionalUser,
    Organiser,
    ServicesDep,
    actor,
    idempotency_key_header,
)
from urne.gateway.problems import ProblemError
from urne.gateway.public import (
    ConsultationPublic,
    ConsultationsPublic,
    ConsultationSummaryPublic,
    PollPublic,
    ProposalPublic,
    ProposalsPublic,
)
from urne.gateway.requests import (
    ConsultationCreate,
    ConsultationUpdate,
    OrganiserAdd,
    PollCreate,
    ProposalCreate,
)

router = APIRouter(prefix="/consultations", tags=["consultations"])

CreationKey = Annotated[str | None, idempotency_key_header(
    "Makes the request safe to retry: the same key and body create one, and give it "
    "again; the same key with another body is refused (422 idempotency_key_reused).")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConsultationSummaryPublic)
async def create_consultation(body: ConsultationCreate, user: Organiser,
                              services: ServicesDep,
                              idempotency_key: CreationKey = None) -> dict:
    """Create a consultation in draft: only its organisers (you, for a start) and admins
    see it until it is published."""
    return await services.send(CreateConsultation(
        title=body.title, description=body.description, time_zone=body.time_zone,
        steps=body.steps, actor=actor(user), idempotency_key=idempotency_key))


@router.get("", response_model=ConsultationsPublic, openapi_extra=OPTIONAL_AUTH)
async def list_consultations(services: ServicesDep, user: OptionalUser,
                             limit: int = Query(default=50, ge=1, le=500)) -> dict:
    """The newest consultations: the published ones, and the drafts you organise."""
    return await services.send(ListConsultations(limit=limit, actor=actor(user)))


@router.get("/{consultation_id}", response_model=ConsultationPublic, openapi_extra=OPTIONAL_AUTH)
async def get_consultation(consultation_id: Id, services: ServicesDep,
                           user: OptionalUser) -> dict:
    return await services.send(GetConsultation(consultation_id=consultation_id,
                                               actor=actor(user)))


@router.patch("/{consultation_id}", response_model=ConsultationPublic)
async def update_consultation(consultation_id: Id, body: ConsultationUpdate, user: Organiser,
                              services: ServicesDep) -> dict:
    """Change its title, description, time zone or steps (its organisers, or an admin)."""
    return await services.send(UpdateConsultation(
        consultation_id=consultation_id, title=body.title, description=body.description,
        time_zone=body.time_zone, steps=body.steps, actor=actor(user)))


@router.post("/{consultation_id}/publish", response_model=ConsultationPublic)
async def publish_consultation(consultation_id: Id, user: Organiser,
                               services: ServicesDep) -> dict:
    """Make it public; its polls may open from then on."""
    return await services.send(PublishConsultation(consultation_id=consultation_id,
                                                   actor=actor(user)))


@router.post("/{consultation_id}/organisers", response_model=ConsultationPublic)
async def add_organiser(consultation_id: Id, body: OrganiserAdd, user: Organiser,
                        services: ServicesDep) -> dict:
    """Make another organiser (or an admin) one of its organisers, by their person id
    (theirs at ``GET /v1/me``). Adding one already there changes nothing."""
    # Identity knows roles, proposal knows consultations: ask the first, then the second.
    person = await services.send(GetPerson(person_id=body.person_id))
    if person["role"] not in STAFF:
        raise ProblemError(422, "person_not_an_organiser",
                           f"person {body.person_id} is not an organiser")
    return await services.send(AddOrganiser(consultation_id=consultation_id,
                                            person_id=body.person_id, actor=actor(user)))


@router.post("/{consultation_id}/proposals", status_code=status.HTTP_201_CREATED,
             response_model=ProposalPublic)
async def add_proposal(consultation_id: Id, body: ProposalCreate, user: CurrentUser,
                       services: ServicesDep, idempotency_key: CreationKey = None) -> dict:
    """Its organisers (and admins) add a proposal, published at once, at any time. Anyone
    else signed in submits one while the consultation's current step is ``proposals``
    (409 ``proposals_closed`` otherwise), up to a number per person (409
    ``proposal_limit_reached``); it stays ``submitted``, seen by the organisers and you
    only, until they publish or reject it."""
    return await services.send(AddProposal(
        consultation_id=consultation_id, title=body.title, body=body.body,
        category=body.category, district=body.district, estimated_cost=body.estimated_cost,
        actor=actor(user), idempotency_key=idempotency_key))


Identifier = Annotated[str | None, Query(min_length=1, max_length=64,
                                         pattern=IDENTIFIER)]


@router.get("/{consultation_id}/proposals", response_model=ProposalsPublic,
            openapi_extra=OPTIONAL_AUTH)
async def list_proposals(
        consultation_id: Id, services: ServicesDep, user: OptionalUser,
        status: ProposalStatus | None = None, category: Identifier = None,
        district: Identifier = None,
        q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None) -> dict:
    """Its proposals you may see, oldest first, a page at a time: every filter given must
    hold; ``q`` is a case-insensitive substring of the title or the body. Pass the
    ``next_cursor`` of a page as ``cursor`` for the next one."""
    return await services.send(ListProposals(
        consultation_id=consultation_id, status=status, category=category, district=district,
        q=q, limit=limit, cursor=cursor, actor=actor(user)))


@router.post("/{consultation_id}/polls", status_code=status.HTTP_201_CREATED,
             response_model=PollPublic)
async def create_poll(consultation_id: Id, body: PollCreate, user: Organiser,
                      services: ServicesDep, idempotency_key: CreationKey = None) -> dict:
    """Create a poll in draft: its rules may change until it opens. With ``opens_at``
    and ``closes_at`` (times to come), it opens and closes by itself; ballots received
    after ``closes_at`` are refused."""
    return await services.send(CreatePoll(consultation_id=consultation_id,
                                          proposal_id=body.proposal_id, rules=body.rules,
                                          results_visibility=body.results_visibility,
                                          electorate=body.electorate,
                                          cross_channel=body.cross_channel,
                                          opens_at=body.opens_at, closes_at=body.closes_at,
                                          actor=actor(user), idempotency_key=idempotency_key))
