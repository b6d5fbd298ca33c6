"""The public, read-only record anyone can download to verify a result."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gateway.deps import ServicesDep, state
from gateway.problems import ProblemError
from urne.contracts.commands import GetPoll, GetRecord, GetResult, ProveInclusion
from urne.contracts.views import BallotRecord, InclusionProof, SignedResult

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/keys")
async def public_keys(request: Request) -> dict:
    """Public Ed25519 keys: ``tally-result`` signs results, ``identity-token`` signs tokens."""
    return {"keys": state(request).public_keys}


@router.get("/polls/{poll_id}/rules")
async def frozen_rules(poll_id: str, services: ServicesDep) -> dict:
    poll = await services.send(GetPoll(poll_id=poll_id))
    if poll["rules_hash"] is None:
        raise ProblemError(409, "poll_not_opened", "rules are frozen and published at opening")
    return {"poll_id": poll_id, "rules": poll["rules"], "rules_hash": poll["rules_hash"],
            "opened_at": poll["opened_at"]}


@router.get("/polls/{poll_id}/result", response_model=SignedResult)
async def signed_result(poll_id: str, services: ServicesDep) -> dict:
    return await services.send(GetResult(poll_id=poll_id))


@router.get("/polls/{poll_id}/record", response_model=BallotRecord)
async def ballot_record(poll_id: str, services: ServicesDep) -> dict:
    """Every counted ballot by tracker, and the Merkle root over them."""
    return await services.send(GetRecord(poll_id=poll_id))


@router.get("/polls/{poll_id}/trackers/{tracker}", response_model=InclusionProof)
async def inclusion_proof(poll_id: str, tracker: str, services: ServicesDep) -> dict:
    """Proof that the ballot with this tracker is in the record under the published root."""
    return await services.send(ProveInclusion(poll_id=poll_id, tracker=tracker))
