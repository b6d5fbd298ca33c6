"""Polls: their rules, opening and closing, voting tokens, ballots and results."""

from __future__ import annotations

from fastapi import APIRouter, status

from urne.contracts.commands import (
    CastBallot,
    ClosePoll,
    GetPoll,
    GetResult,
    IssueVotingToken,
    OpenPoll,
)
from urne.contracts.fields import Id
from urne.gateway.deps import CurrentUser, Organiser, ServicesDep, VotingTokenDep
from urne.gateway.public import PollPublic, ReceiptPublic, ResultPublic, VotingTokenPublic
from urne.gateway.requests import BallotCast

router = APIRouter(prefix="/polls", tags=["polls"])


@router.get("/{poll_id}", response_model=PollPublic)
async def get_poll(poll_id: Id, services: ServicesDep) -> dict:
    """A poll and its rules (frozen, with their hash, once the poll is open)."""
    return await services.send(GetPoll(poll_id=poll_id))


@router.post("/{poll_id}/open", response_model=PollPublic)
async def open_poll(poll_id: Id, user: Organiser, services: ServicesDep) -> dict:
    return await services.send(OpenPoll(poll_id=poll_id))


@router.post("/{poll_id}/close", response_model=PollPublic)
async def close_poll(poll_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Close the poll; the tally publishes the signed result once every ballot is counted."""
    return await services.send(ClosePoll(poll_id=poll_id))


@router.post("/{poll_id}/voting-token", status_code=status.HTTP_201_CREATED,
             response_model=VotingTokenPublic)
async def issue_voting_token(poll_id: Id, user: CurrentUser, services: ServicesDep) -> dict:
    """A token for this poll carrying a pseudonym, to present when casting a ballot."""
    return await services.send(IssueVotingToken(person_id=user.person_id, poll_id=poll_id))


@router.post("/{poll_id}/ballots", status_code=status.HTTP_201_CREATED,
             response_model=ReceiptPublic)
async def cast_ballot(poll_id: Id, body: BallotCast, token: VotingTokenDep,
                      services: ServicesDep) -> dict:
    """Cast, or replace, your ballot (``Authorization: Bearer <voting token>``).

    201 means the ballot is stored durably; the receipt's tracker lets you find it
    in the public record once the result is published.
    """
    return await services.send(CastBallot(poll_id=poll_id, voting_token=token,
                                          choice=body.choice))


@router.get("/{poll_id}/results", response_model=ResultPublic)
async def get_results(poll_id: Id, services: ServicesDep) -> dict:
    """The published result (409 ``result_not_published`` before that: results are embargoed)."""
    signed = await services.send(GetResult(poll_id=poll_id))
    result = signed["result"]
    return {"poll_id": poll_id, "tally": result["tally"], "record_root": result["record"]["root"],
            "ballots_counted": result["record"]["size"], "rules_hash": result["rules_hash"],
            "computed_at": result["computed_at"]}
