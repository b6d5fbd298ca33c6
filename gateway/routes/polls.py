"""Polls: their rules, opening and closing, voting tokens, ballots and results.

Whether a result may be shown is the tally's to decide (the gateway is not trusted
to): every route here that shows one asks the tally, which refuses with 409
``result_embargoed`` until an organiser publishes an embargoed result, 409
``result_not_published`` until it is signed (``result_withheld`` while the tally's
counts disagree), and 409 ``results_hidden`` for live counts
of a poll whose results are not live.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response

from urne.contracts.commands import (
    ClosePoll,
    ExtendPoll,
    GetLiveResult,
    GetPoll,
    GetResult,
    GetTurnout,
    IssueVotingTokenV2,
    OpenPoll,
    PublishPoll,
    UpdatePoll,
)
from urne.contracts.fields import Id
from urne.gateway import exports
from urne.gateway.deps import (
    OPTIONAL_AUTH,
    AccessTokenText,
    CurrentUser,
    OptionalUser,
    Organiser,
    ServicesDep,
    VotingTokenDep,
    actor,
    idempotency_key_header,
    organised,
    state,
)
from urne.gateway.public import (
    LiveResultPublic,
    PollPublic,
    ReceiptPublic,
    ResultPublic,
    ResultsExportPublic,
    TurnoutPublic,
    VotingTokenPublic,
)
from urne.gateway.requests import BallotCast, PollExtension, PollUpdate

router = APIRouter(prefix="/polls", tags=["polls"])

IdempotencyKeyHeader = Annotated[str | None, idempotency_key_header(
    "Makes the request safe to retry: the same key and body give the same receipt.")]


@router.get("/{poll_id}", response_model=PollPublic, openapi_extra=OPTIONAL_AUTH)
async def get_poll(poll_id: Id, services: ServicesDep, user: OptionalUser) -> dict:
    """A poll and its rules (frozen, with their hash, once the poll is open); a draft
    only for the organisers of its consultation."""
    return await services.send(GetPoll(poll_id=poll_id, actor=actor(user)))


@router.patch("/{poll_id}", response_model=PollPublic)
async def update_poll(poll_id: Id, body: PollUpdate, user: Organiser,
                      services: ServicesDep) -> dict:
    """Replace the rules of a poll in draft, and its results visibility, electorate,
    cross-channel policy and schedule when given (409 ``poll_rules_frozen`` once it
    opened: all are frozen then; an open poll's close may only be extended,
    ``/extension``)."""
    return await services.send(UpdatePoll(poll_id=poll_id, rules=body.rules,
                                          results_visibility=body.results_visibility,
                                          electorate=body.electorate,
                                          cross_channel=body.cross_channel,
                                          opens_at=body.opens_at, closes_at=body.closes_at,
                                          clear=body.cleared(), actor=actor(user)))


@router.post("/{poll_id}/open", response_model=PollPublic)
async def open_poll(poll_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Open the poll (its consultation must be published): its rules, results
    visibility and electorate are frozen."""
    return await services.send(OpenPoll(poll_id=poll_id, actor=actor(user)))


@router.post("/{poll_id}/close", response_model=PollPublic)
async def close_poll(poll_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Close the poll; the tally signs the result once every ballot is counted, and
    publishes it then, unless its results are embargoed (see ``/publish``)."""
    return await services.send(ClosePoll(poll_id=poll_id, actor=actor(user)))


@router.post("/{poll_id}/extension", response_model=PollPublic)
async def extend_poll(poll_id: Id, body: PollExtension, user: Organiser,
                      services: ServicesDep) -> dict:
    """Move the close of an open poll later, before its close time comes: a public
    amendment (listed in ``amendments``, announced as ``poll.close_extended.v1``).
    422 ``extension_not_later`` for a time not after the current one; 409 ``poll_closed``
    once the close time has passed (closing is final)."""
    return await services.send(ExtendPoll(poll_id=poll_id, closes_at=body.closes_at,
                                          reason=body.reason, actor=actor(user)))


@router.post("/{poll_id}/publish", response_model=PollPublic)
async def publish_poll(poll_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """Publish the embargoed result of a closed poll: from then on every results and
    audit route shows it (as soon as the tally has signed it). 409 ``poll_not_embargoed``
    for a poll whose results are published without an organiser; publishing again
    changes nothing."""
    return await services.send(PublishPoll(poll_id=poll_id, actor=actor(user)))


@router.post("/{poll_id}/voting-token", status_code=status.HTTP_201_CREATED,
             response_model=VotingTokenPublic)
async def issue_voting_token(poll_id: Id, user: CurrentUser, token: AccessTokenText,
                             services: ServicesDep) -> dict:
    """A token for this poll carrying a pseudonym, to present when casting a ballot."""
    # The gateway refuses a bad token at once (``user``), but identity checks the token
    # itself (issue 10): the gateway vouches for nobody.
    return await services.send(IssueVotingTokenV2(poll_id=poll_id, access_token=token))


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
    # Not validated again as a response model: see BallotDesk.cast.
    return JSONResponse(receipt, status_code=201)


@router.get("/{poll_id}/results", response_model=ResultPublic)
async def get_results(poll_id: Id, services: ServicesDep) -> dict:
    """The published result (409 ``result_not_published`` before it is signed, 409
    ``result_embargoed`` before an organiser publishes an embargoed one, 409
    ``result_withheld`` while the tally's counts disagree)."""
    signed = await services.send(GetResult(poll_id=poll_id))
    result = signed["result"]
    return {"poll_id": poll_id, "tally": result["tally"], "record_root": result["record"]["root"],
            # urne.result.v1 records hold the counted ballots only; v2 logs hold them all.
            "ballots_counted": result.get("ballots_counted", result["record"]["size"]),
            "rules_hash": result["rules_hash"],
            "computed_at": result["computed_at"]}


@router.get("/{poll_id}/results/live", response_model=LiveResultPublic)
async def get_live_results(poll_id: Id, services: ServicesDep) -> dict:
    """Running counts of a poll whose results are ``live``, while it is open and after:
    the counting shards' partial counts merged, at most once a second; ``as_of`` says
    when (409 ``results_hidden`` for any other poll)."""
    return await services.send(GetLiveResult(poll_id=poll_id))


@router.get("/{poll_id}/results.csv", response_class=Response, responses={200: {
    "description": "One row per option (or project), with a header row",
    "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def export_results_csv(poll_id: Id, services: ServicesDep) -> Response:
    """The published result as CSV, one row per option (per project and district for a
    budget); shown under the same conditions as ``/results``."""
    signed = await services.send(GetResult(poll_id=poll_id))
    return Response(exports.as_csv(signed["result"]), media_type=exports.CSV_MEDIA_TYPE,
                    headers=exports.disposition(poll_id, "csv"))


@router.get("/{poll_id}/results.json", response_model=ResultsExportPublic)
async def export_results_json(poll_id: Id, services: ServicesDep, response: Response) -> dict:
    """The published result as JSON: the CSV's rows, and what they are about; shown under
    the same conditions as ``/results``."""
    signed = await services.send(GetResult(poll_id=poll_id))
    response.headers.update(exports.disposition(poll_id, "json"))
    return exports.as_json(poll_id, signed["result"])


@router.get("/{poll_id}/turnout", response_model=TurnoutPublic)
async def turnout(poll_id: Id, user: Organiser, services: ServicesDep) -> dict:
    """How many people have voted, by district and by channel, from the poll's sign-in
    list (identity's: who has voted, never what, never when), for the consultation's
    organisers and the admins, during the vote and after; seconds behind the ballots.
    Paper ballots are not in it (a paper is not a person: they are counted in the
    result); the people who voted on paper are, as the agents marked them (channel
    ``paper``)."""
    poll = await services.send(GetPoll(poll_id=poll_id, actor=actor(user)))
    await organised(services, user, poll["consultation_id"],
                    "only this consultation's organisers see its turnout")
    return await services.send(GetTurnout(poll_id=poll_id, actor=actor(user)))
