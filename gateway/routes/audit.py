"""The public, read-only record anyone can download to verify a result."""

from __future__ import annotations

from fastapi import APIRouter, Request

from urne.contracts.commands import GetPoll, GetRecord, GetResult, ProveInclusion
from urne.contracts.fields import Id, Tracker
from urne.gateway.deps import ServicesDep, state
from urne.gateway.problems import ProblemError
from urne.gateway.public import (
    BallotRecordPublic,
    FrozenRulesPublic,
    InclusionProofPublic,
    PublicKeysPublic,
    SignedResultPublic,
)

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/keys", response_model=PublicKeysPublic)
async def public_keys(request: Request) -> dict:
    """Public Ed25519 keys: ``tally-result`` signs results, ``identity-token`` signs tokens."""
    return {"keys": state(request).public_keys}


@router.get("/polls/{poll_id}/rules", response_model=FrozenRulesPublic)
async def frozen_rules(poll_id: Id, services: ServicesDep) -> dict:
    poll = await services.send(GetPoll(poll_id=poll_id))
    if poll["rules_hash"] is None:
        raise ProblemError(409, "poll_not_opened", "rules are frozen and published at opening")
    return {"poll_id": poll_id, "rules": poll["rules"], "rules_hash": poll["rules_hash"],
            "opened_at": poll["opened_at"],
            "results_visibility": poll.get("results_visibility", "after_close")}


# The tally decides, for each of the routes below, whether anything may be shown:
# 409 result_embargoed until an organiser publishes an embargoed result, 409
# result_not_published until the result is signed, 409 result_withheld while the
# tally's counts disagree.
@router.get("/polls/{poll_id}/result", response_model=SignedResultPublic)
async def signed_result(poll_id: Id, services: ServicesDep) -> dict:
    """The signed result document, its signature and the signing key's id."""
    return await services.send(GetResult(poll_id=poll_id))


@router.get("/polls/{poll_id}/record", response_model=BallotRecordPublic)
async def ballot_record(poll_id: Id, services: ServicesDep) -> dict:
    """Every counted ballot by tracker, and the Merkle root over them."""
    return await services.send(GetRecord(poll_id=poll_id))


@router.get("/polls/{poll_id}/trackers/{tracker}", response_model=InclusionProofPublic)
async def inclusion_proof(poll_id: Id, tracker: Tracker, services: ServicesDep) -> dict:
    """Proof that the ballot with this tracker is in the record under the published root."""
    return await services.send(ProveInclusion(poll_id=poll_id, tracker=tracker))
