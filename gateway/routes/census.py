"""The census of a consultation (issue 9): its organisers upload it, people claim their
entry, and polls whose electorate is ``census`` issue voting tokens to claimed, eligible
entries only (identity decides; see services/identity/census.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from urne.contracts.commands import (
    CENSUS_ROWS_MAX,
    ClaimCensusEntry,
    ImportCensus,
)
from urne.contracts.fields import Id
from urne.gateway import census
from urne.gateway.deps import (
    AccessTokenText,
    CurrentUser,
    Organiser,
    ServicesDep,
    actor,
    organised,
)
from urne.gateway.problems import ProblemError, documented
from urne.gateway.public import CensusClaimPublic, CensusImportedPublic
from urne.gateway.requests import CensusClaimBody, CensusClaimByName
from urne.gateway.routes.auth import client

router = APIRouter(prefix="/consultations", tags=["census"])

CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {
    "type": "string", "description": "the census list (see docs/api.md, Census)"}}}}}


@router.post("/{consultation_id}/census", response_model=CensusImportedPublic,
             openapi_extra=CSV_BODY, responses={413: documented(413), 415: documented(415)})
async def import_census(
        consultation_id: Id, request: Request, user: Organiser, services: ServicesDep,
        minimum_age: Annotated[int | None, Query(ge=0, le=130)] = None,
        age_on: date | None = None,
        columns: Annotated[str | None, Query(max_length=500)] = None) -> dict:
    """Add people to the consultation's census, or update them (a person is the same
    names and birth date), from a CSV file (``Content-Type: text/csv``; columns in
    docs/api.md). Eligibility is decided now: resident, and ``minimum_age`` full years
    on ``age_on`` (default: today). Only keyed hashes of names, birth dates and
    addresses are kept. A file with a wrong line imports nothing; sending a file again
    is safe."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "text/csv":
        raise ProblemError(415, "unsupported_media_type",
                           "send the census as Content-Type: text/csv")
    data = await _body(request)
    consultation = await organised(services, user, consultation_id,
                                   "only this consultation's organisers upload its census")
    if any(p.get("electorate") == "census" and p.get("status") == "open"
           for p in consultation.get("polls") or []):
        # Who may vote is frozen with the poll: not the mode only, the list too.
        raise ProblemError(409, "census_frozen", "a census poll of this consultation is "
                           "open: its census changes only before it opens or after it closes")
    try:
        # Off the event loop: some 12 s for the largest file, every request waiting else.
        rows = await run_in_threadpool(census.read, data, columns)
    except census.CensusFileError as exc:
        raise ProblemError(422, "census_invalid", f"the census file was not imported: {exc}",
                           errors=exc.errors) from exc
    on = age_on or datetime.now(UTC).date()
    imported = eligible = 0
    for start in range(0, len(rows), CENSUS_ROWS_MAX):
        reply = await services.send(ImportCensus(
            consultation_id=consultation_id, rows=rows[start:start + CENSUS_ROWS_MAX],
            minimum_age=minimum_age, age_on=on, actor=actor(user)))
        imported += reply["rows"]
        eligible += reply["eligible"]
    return {"consultation_id": consultation_id, "rows": imported, "eligible": eligible}


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > census.MAX_BYTES:
            raise ProblemError(413, "payload_too_large",
                               f"a census file is at most {census.MAX_BYTES} bytes; "
                               "split it (sending parts is safe)")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/{consultation_id}/census/claim", response_model=CensusClaimPublic)
async def claim_census_entry(consultation_id: Id, body: CensusClaimBody, request: Request,
                             user: CurrentUser, token: AccessTokenText,
                             services: ServicesDep) -> dict:
    """Claim your entry of the consultation's census: by your family name, given name
    and birth date as the organisers listed them, or, with none of them, by the e-mail
    address you signed in with. An entry is claimed by one account only, and an account
    claims one entry. Your voting tokens for the consultation's census polls then carry
    the entry's district. Failed claims are limited (429)."""
    named = body if isinstance(body, CensusClaimByName) else None
    return await services.send(ClaimCensusEntry(
        consultation_id=consultation_id, access_token=token,
        family_name=named.family_name if named else None,
        given_name=named.given_name if named else None,
        birth_date=named.birth_date if named else None, client=client(request)))
