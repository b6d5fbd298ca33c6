"""The public, read-only record anyone can download to verify a result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from urne.contracts.commands import (
    GetPoll,
    GetRecord,
    GetRecordLines,
    GetResult,
    GetTreeHeads,
    ProveConsistency,
    ProveInclusion,
)
from urne.contracts.fields import Id, Tracker
from urne.gateway.deps import ServicesDep, state
from urne.gateway.problems import ProblemError
from urne.gateway.public import (
    BallotRecordPublic,
    ConsistencyProofPublic,
    FrozenRulesPublic,
    InclusionProofPublic,
    PublicKeysPublic,
    SignedResultPublic,
    TreeHeadsPublic,
)

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/keys", response_model=PublicKeysPublic)
async def public_keys(request: Request) -> dict:
    """The public Ed25519 keys as a JWK Set (RFC 7517): ``tally-result`` signs results,
    ``identity-token`` signs tokens; current, retired (what they signed still verifies)
    and revoked (nothing they signed is to be trusted)."""
    return {"keys": state(request).public_keys}


@router.get("/polls/{poll_id}/rules", response_model=FrozenRulesPublic)
async def frozen_rules(poll_id: Id, services: ServicesDep) -> dict:
    # Asked without an actor: a draft, the only poll without frozen rules, is no one's
    # to audit, and the proposal service answers 404 poll_not_found for it (as here,
    # should a poll without rules ever come back).
    poll = await services.send(GetPoll(poll_id=poll_id))
    if poll["rules_hash"] is None:
        raise ProblemError(404, "poll_not_found", f"no poll {poll_id} has frozen rules")
    return {"poll_id": poll_id, "rules": poll["rules"], "rules_hash": poll["rules_hash"],
            "opened_at": poll["opened_at"],
            "results_visibility": poll.get("results_visibility", "after_close"),
            "electorate": poll.get("electorate", "open"),
            "cross_channel": poll.get("cross_channel", "latest_wins")}


# The tally decides, for each of the routes below, whether anything may be shown:
# 409 result_embargoed until an organiser publishes an embargoed result, 409
# result_not_published until the result is signed, 409 result_withheld while the
# tally's counts disagree.
@router.get("/polls/{poll_id}/result", response_model=SignedResultPublic)
async def signed_result(poll_id: Id, services: ServicesDep) -> dict:
    """The signed result document, its signature and the signing key's id."""
    return await services.send(GetResult(poll_id=poll_id))


@router.get("/polls/{poll_id}/heads", response_model=TreeHeadsPublic)
async def tree_heads(poll_id: Id, services: ServicesDep) -> dict:
    """The signed tree heads of the poll's log, during the vote and after, by size: save
    one, and the record published at the close must extend it (``urne audit verify
    --head``). 409 ``result_embargoed`` under an embargo."""
    return await services.send(GetTreeHeads(poll_id=poll_id))


@router.get("/polls/{poll_id}/consistency", response_model=ConsistencyProofPublic)
async def consistency_proof(
        poll_id: Id, services: ServicesDep,
        first: Annotated[int, Query(ge=1, le=2**40)],
        second: Annotated[int | None, Query(ge=1, le=2**40)] = None) -> dict:
    """Proof that the log at ``first`` entries (a tree head saved earlier) is a prefix of
    the log at ``second`` (a later head's size; by default the latest head, or the
    published record), RFC 9162 §2.1.4: no need to download the record to know nothing
    signed before was deleted or rewritten (``urne audit head``). 404
    ``tree_head_not_found`` for a size no head was signed at."""
    return await services.send(ProveConsistency(poll_id=poll_id, first=first, second=second))


NDJSON_MEDIA_TYPE = "application/x-ndjson"


@router.get("/polls/{poll_id}/record", response_model=BallotRecordPublic,
            response_model_exclude_unset=True)
async def ballot_record(
        poll_id: Id, request: Request, services: ServicesDep,
        start: Annotated[int, Query(ge=0, le=2**40)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
    """A page of the record's entries (``limit`` from position ``start``), the record's
    size and its Merkle root; ``next`` links the following page (null on the
    last). The whole record in one download: ``record.ndjson``."""
    page = await services.send(GetRecord(poll_id=poll_id, start=start, limit=limit))
    following = page.pop("next")
    page["next"] = None if following is None else \
        f"{request.url.path}?{urlencode({'start': following, 'limit': limit})}"
    return page


@router.get("/polls/{poll_id}/record.ndjson", response_class=StreamingResponse, responses={
    200: {"description": "Every entry's canonical JSON, one a line, in record order: each "
                         "line's bytes are the data of its Merkle leaf.",
          "content": {NDJSON_MEDIA_TYPE: {"schema": {"type": "string"}}}}})
async def ballot_record_ndjson(poll_id: Id, services: ServicesDep) -> StreamingResponse:
    """The whole record, streamed page by page from the stored record (memory stays flat
    at any size). ``Urne-Record-Size`` and ``Urne-Record-Root`` give the record it is;
    a download cut short has fewer lines than the size."""
    first = await services.send(GetRecordLines(poll_id=poll_id))  # a refusal is a problem

    async def lines(page: dict[str, Any]) -> AsyncIterator[bytes]:
        while True:
            yield page["lines"].encode()
            if page["next"] is None:
                return
            page = await services.send(GetRecordLines(poll_id=poll_id, start=page["next"]))

    return StreamingResponse(lines(first), media_type=NDJSON_MEDIA_TYPE, headers={
        "Urne-Record-Size": str(first["size"]), "Urne-Record-Root": first["root"]})


@router.get("/polls/{poll_id}/trackers/{tracker}", response_model=InclusionProofPublic)
async def inclusion_proof(poll_id: Id, tracker: Tracker, services: ServicesDep) -> dict:
    """Proof that the ballot with this tracker is in the record under the published root."""
    return await services.send(ProveInclusion(poll_id=poll_id, tracker=tracker))
