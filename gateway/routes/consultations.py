"""Consultations, their proposals and their polls."""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from urne.contracts.commands import (
    AddProposal,
    CreateConsultation,
    CreatePoll,
    GetConsultation,
    ListConsultations,
)
from urne.contracts.fields import Id
from urne.gateway.deps import Organiser, ServicesDep
from urne.gateway.public import (
    ConsultationPublic,
    ConsultationsPublic,
    ConsultationSummaryPublic,
    PollPublic,
    ProposalPublic,
)
from urne.gateway.requests import ConsultationCreate, PollCreate, ProposalCreate

router = APIRouter(prefix="/consultations", tags=["consultations"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConsultationSummaryPublic)
async def create_consultation(body: ConsultationCreate, user: Organiser,
                              services: ServicesDep) -> dict:
    return await services.send(CreateConsultation(title=body.title, description=body.description,
                                                  created_by=user.person_id))


@router.get("", response_model=ConsultationsPublic)
async def list_consultations(services: ServicesDep,
                             limit: int = Query(default=50, ge=1, le=500)) -> dict:
    return await services.send(ListConsultations(limit=limit))


@router.get("/{consultation_id}", response_model=ConsultationPublic)
async def get_consultation(consultation_id: Id, services: ServicesDep) -> dict:
    return await services.send(GetConsultation(consultation_id=consultation_id))


@router.post("/{consultation_id}/proposals", status_code=status.HTTP_201_CREATED,
             response_model=ProposalPublic)
async def add_proposal(consultation_id: Id, body: ProposalCreate, user: Organiser,
                       services: ServicesDep) -> dict:
    return await services.send(AddProposal(consultation_id=consultation_id, title=body.title,
                                           body=body.body, author_id=user.person_id))


@router.post("/{consultation_id}/polls", status_code=status.HTTP_201_CREATED,
             response_model=PollPublic)
async def create_poll(consultation_id: Id, body: PollCreate, user: Organiser,
                      services: ServicesDep) -> dict:
    return await services.send(CreatePoll(consultation_id=consultation_id,
                                          proposal_id=body.proposal_id, rules=body.rules))
