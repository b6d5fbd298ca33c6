from __future__ import annotations

from fastapi import APIRouter, Query, status

from gateway.deps import Organiser, ServicesDep
from gateway.models import ConsultationCreate, PollCreate, ProposalCreate
from urne.contracts.commands import (
    AddProposal,
    CreateConsultation,
    CreatePoll,
    GetConsultation,
    ListConsultations,
)
from urne.contracts.views import ConsultationsView, ConsultationView, PollView, ProposalView

router = APIRouter(prefix="/consultations", tags=["consultations"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConsultationView)
async def create_consultation(body: ConsultationCreate, user: Organiser,
                              services: ServicesDep) -> dict:
    return await services.send(CreateConsultation(title=body.title, description=body.description,
                                                  created_by=user.person_id))


@router.get("", response_model=ConsultationsView)
async def list_consultations(services: ServicesDep,
                             limit: int = Query(default=50, ge=1, le=500)) -> dict:
    return await services.send(ListConsultations(limit=limit))


@router.get("/{consultation_id}", response_model=ConsultationView)
async def get_consultation(consultation_id: str, services: ServicesDep) -> dict:
    return await services.send(GetConsultation(consultation_id=consultation_id))


@router.post("/{consultation_id}/proposals", status_code=status.HTTP_201_CREATED,
             response_model=ProposalView)
async def add_proposal(consultation_id: str, body: ProposalCreate, user: Organiser,
                       services: ServicesDep) -> dict:
    return await services.send(AddProposal(consultation_id=consultation_id, title=body.title,
                                           body=body.body, author_id=user.person_id))


@router.post("/{consultation_id}/polls", status_code=status.HTTP_201_CREATED,
             response_model=PollView)
async def create_poll(consultation_id: str, body: PollCreate, user: Organiser,
                      services: ServicesDep) -> dict:
    return await services.send(CreatePoll(consultation_id=consultation_id,
                                          proposal_id=body.proposal_id, rules=body.rules))
