"""Polls: their rules, opening and closing, voting tokens, ballots and results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import JSONResponse, Response

from urne.contracts.commands import (
    ClosePoll,
    GetPoll,
    GetResult,
    IssueVotingToken,
    OpenPoll,
    UpdatePoll,
)
from urne.contracts.fields import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN, Id
from urne.gateway.deps import (
    OPTIONAL_AUTH,
    CurrentUser,
    OptionalUser,
    Organiser,
    ServicesDep,
    VotingTokenDep,
    actor,
    state,
)
from urne.gateway.public import PollPublic, ReceiptPublic, ResultPublic, VotingTokenPublic
from urne.gateway.requests import BallotCast, PollUpdate

router = APIRouter(prefix="/polls", tags=["polls"])
RECEIPT_FIELDS = tuple(ReceiptPublic.model_fields)

IdempotencyKeyHeader = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX,
    pattern=IDEMPOTENCY_KEY_PATTERN,
    description="Makes the request safe to retry: the same key and body give the same "
                "receipt.")]


@router.get("/{poll_id}", response_model=PollPublic, openapi_extra=OPTIONAL_AUTH)
async def get_poll(poll_id: Id, services: ServicesDep, user: OptionalUser) -> dict:
    """A poll and its rules (frozen, with their hash, once the poll is open); a draft
    only for the organisers of its consultation."""
    return await services.send(GetPoll(poll_id=poll_id, actor=actor(user)))


@router.patch("/{poll_id}", response_model=PollPublic)
async def update_poll(poll_id: Id, body: PollUpdate, user: Organiser,
                      services: ServicesDep) -> dict:
    """Replace the rules of a poll in draft (409 ``poll_rules_frozen`` once it opened)."""
    return await services.send(UpdatePoll(poll_id=poll_id, rules=body.rules, actor=actor(user)))


@router.post("/{poll_id}/open", response_model=PollPublic)
async def open_poll(poll_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Open the poll (its consultation must be published): its rules are frozen."""
    return await services.send(OpenPoll(poll_id=poll_id, actor=actor(user)))


@router.post("/{poll_id}/close", response_model=PollPublic)
async def close_poll(poll_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Close the poll; the tally publishes the signed result once every ballot is counted."""
    return await services.send(ClosePoll(poll_id=poll_id, actor=actor(user)))


@router.post("/{poll_id}/voting-token", status_code=status.HTTP_201_CREATED,
             response_model=VotingTokenPublic)
async def issue_voting_token(poll_id: Id, user: CurrentUser, services: ServicesDep) -> dict:
    """A token for this poll carrying a pseudonym, to present when casting a ballot."""
    return await services.send(IssueVotingToken(person_id=user.person_id, poll_id=poll_id))


@router.post("/{poll_id}/ballots", status_code=status.HTTP_201_CREATED,
             response_model=ReceiptPublic)
async def cast_ballot(request: Request, poll_id: Id, body: BallotCast, token: VotingTokenDep,
                      idempotency_key: IdempotencyKeyHeader = None) -> Response:
    """Cast, or replace, your ballot (``Authorization: Bearer <voting token>``).

    201 means the ballot is stored durably and will be counted; the receipt's tracker
    lets you find it in the public record. Send an ``Idempotency-Key``: a retry with the
    same key and body returns the first receipt (a 503 means the outcome is unknown:
    retry with the same key); the same key with another body is a 422.
    """
    receipt = await state(request).ballots.cast(poll_id, token, body.choice.model_dump(),
                                                idempotency_key,
                                                request.state.trace_id)
    # The hot path skips FastAPI's validation of the response (a receipt the vote service
    # built from its own model); only the public fields go out, as ReceiptPublic says.
    return JSONResponse({k: receipt[k] for k in RECEIPT_FIELDS}, status_code=201)


@router.get("/{poll_id}/results", response_model=ResultPublic)
async def get_results(poll_id: Id, services: ServicesDep) -> dict:
    """The published result (409 ``result_not_published`` before that: results are embargoed)."""
    signed = await services.send(GetResult(poll_id=poll_id))
    result = signed["result"]
    return {"poll_id": poll_id, "tally": result["tally"], "record_root": result["record"]["root"],
            "ballots_counted": result["record"]["size"], "rules_hash": result["rules_hash"],
            "computed_at": result["computed_at"]}
