"""Proposals: reading one, moving its status, moderating it, reporting it.

A proposal's status moves one way: ``submitted`` -> ``published`` or ``rejected`` (with
a public reason); ``published`` -> ``selected`` (or ``rejected``); ``selected`` ->
``implemented``, by its consultation's organisers and admins only; a move it cannot
make is a 409 ``proposal_<its status>``. They also hide a proposal (it is kept, but only
they and its author see it) and read its reports; anyone signed in may report one, once.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from urne.contracts.commands import (
    GetProposal,
    HideProposal,
    ImplementProposal,
    ListProposalReports,
    PublishProposal,
    RejectProposal,
    ReportProposal,
    SelectProposal,
    UnhideProposal,
)
from urne.contracts.fields import Id
from urne.gateway.deps import (
    OPTIONAL_AUTH,
    CurrentUser,
    OptionalUser,
    Organiser,
    ServicesDep,
    actor,
)
from urne.gateway.public import ProposalPublic, ReportPublic, ReportsPublic
from urne.gateway.requests import ReasonGiven

router = APIRouter(prefix="/proposals", tags=["proposals"])


@router.get("/{proposal_id}", response_model=ProposalPublic, openapi_extra=OPTIONAL_AUTH)
async def get_proposal(proposal_id: Id, services: ServicesDep, user: OptionalUser) -> dict:
    """A proposal; a submitted or hidden one only for its consultation's organisers and
    its author (404 for anyone else, as for an unknown id)."""
    return await services.send(GetProposal(proposal_id=proposal_id, actor=actor(user)))


@router.post("/{proposal_id}/publish", response_model=ProposalPublic)
async def publish_proposal(proposal_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Publish a submitted proposal: everyone who sees the consultation sees it."""
    return await services.send(PublishProposal(proposal_id=proposal_id, actor=actor(user)))


@router.post("/{proposal_id}/reject", response_model=ProposalPublic)
async def reject_proposal(proposal_id: Id, body: ReasonGiven, user: Organiser,
                          services: ServicesDep) -> dict:
    """Reject a submitted or published proposal, with a reason everyone may read."""
    return await services.send(RejectProposal(proposal_id=proposal_id, reason=body.reason,
                                              actor=actor(user)))


@router.post("/{proposal_id}/select", response_model=ProposalPublic)
async def select_proposal(proposal_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Select a published proposal (for a vote, for funding: the organisers' word)."""
    return await services.send(SelectProposal(proposal_id=proposal_id, actor=actor(user)))


@router.post("/{proposal_id}/implement", response_model=ProposalPublic)
async def implement_proposal(proposal_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Record that a selected proposal was carried out."""
    return await services.send(ImplementProposal(proposal_id=proposal_id, actor=actor(user)))


@router.post("/{proposal_id}/hide", response_model=ProposalPublic)
async def hide_proposal(proposal_id: Id, body: ReasonGiven, user: Organiser,
                        services: ServicesDep) -> dict:
    """Hide a proposal from everyone but its consultation's organisers and its author
    (it is kept, with its status); the reason is for the organisers."""
    return await services.send(HideProposal(proposal_id=proposal_id, reason=body.reason,
                                            actor=actor(user)))


@router.post("/{proposal_id}/unhide", response_model=ProposalPublic)
async def unhide_proposal(proposal_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Show a hidden proposal again."""
    return await services.send(UnhideProposal(proposal_id=proposal_id, actor=actor(user)))


@router.post("/{proposal_id}/reports", status_code=status.HTTP_201_CREATED,
             response_model=ReportPublic)
async def report_proposal(proposal_id: Id, body: ReasonGiven, user: CurrentUser,
                          services: ServicesDep) -> dict:
    """Report a proposal to its moderators, once (409 ``proposal_already_reported``)."""
    return await services.send(ReportProposal(proposal_id=proposal_id, reason=body.reason,
                                              actor=actor(user)))


@router.get("/{proposal_id}/reports", response_model=ReportsPublic)
async def list_reports(proposal_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """The reports of a proposal, oldest first (its consultation's organisers, admins)."""
    return await services.send(ListProposalReports(proposal_id=proposal_id, actor=actor(user)))
