"""Agents' desks: people who have neither an e-mail address nor a phone, and paper.

The agent registers them and prints a card with a one-time desk code and its QR code;
they sign in with it at a kiosk (``POST /v1/auth/tokens`` ``{desk_code}``), or with
the agent's help, once. A later visit gets a new card. The agent also enters paper
ballots, in batches, each with its serial. Every registration, card and batch is in
identity's action log with the agent's id (``GET /v1/admin/actions``).
"""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Request, status

from urne.contracts.commands import (
    CheckSignInList,
    IssueDeskCode,
    IssueDeskVotingToken,
    IssuePaperVotingTokens,
    RegisterAtDesk,
)
from urne.contracts.fields import Id, paper_serial
from urne.gateway.deps import (
    AccessTokenText,
    Agent,
    ServicesDep,
    actor,
    idempotency_key_header,
    state,
)
from urne.gateway.problems import ProblemError
from urne.gateway.public import (
    DeskCardPublic,
    PaperBatchPublic,
    SignInStatusPublic,
    VotingTokenPublic,
)
from urne.gateway.requests import DeskRegistration, PaperBallot, PaperBatch

router = APIRouter(prefix="/desk", tags=["desk"])

PAPER_IN_FLIGHT = 32  # ballots of one batch on their way to the ballot box at once


RegistrationKey = Annotated[str | None, idempotency_key_header(
    "Makes the registration safe to retry: the same agent and key register one person (a "
    "retry gets them a new card, which voids the first).")]
# Person ids of registrations sent with an Idempotency-Key: the same agent and key, the
# same person.
_REGISTRATIONS = uuid.UUID("9a4c3f0e-5d1b-4e8a-9f65-2b7d1c0a8e34")


@router.post("/people", status_code=status.HTTP_201_CREATED, response_model=DeskCardPublic)
async def register(body: DeskRegistration, user: Agent, token: AccessTokenText,
                   services: ServicesDep, idempotency_key: RegistrationKey = None) -> dict:
    """Register someone who has no e-mail address and no phone: 201 with their
    ``person_id`` and the card to print (``desk_code``, shown this once, valid 30 days,
    and its QR code). They sign in with it once, and vote like anyone. Send an
    ``Idempotency-Key``: a retry after a lost answer registers nobody twice."""
    person_id = (uuid.uuid5(_REGISTRATIONS, f"{user.person_id}\x00{idempotency_key}").hex
                 if idempotency_key else uuid.uuid4().hex)
    issued = await services.send(RegisterAtDesk(actor=actor(user), access_token=token,
                                                person_id=person_id, district=body.district))
    return card(issued)


@router.post("/people/{person_id}/codes", status_code=status.HTTP_201_CREATED,
             response_model=DeskCardPublic)
async def new_card(person_id: Id, user: Agent, token: AccessTokenText,
                   services: ServicesDep) -> dict:
    """A new card for someone registered at a desk (a lost card, a later poll): their
    previous code stops working. 403 ``not_registered_at_desk`` for anyone who signs in
    by e-mail or SMS: an agent never gets a way into their account; 403
    ``desk_card_used`` for an agent once the person has signed in with a card (an
    admin gives that one: a card lets its holder replace the person's ballot)."""
    return card(await services.send(IssueDeskCode(actor=actor(user), access_token=token,
                                                  person_id=person_id)))


def card(issued: dict[str, Any]) -> dict[str, Any]:
    return {"person_id": issued["person_id"], "desk_code": issued["code"],
            "expires_at": issued["expires_at"], "qr_svg": qr_svg(issued["code"])}


def qr_svg(code: str) -> str:
    """The code as a QR code, an SVG to print beside it (medium error correction: a
    card is handled, creased and scanned by a kiosk's camera)."""
    out = io.BytesIO()
    segno.make_qr(code, error="m").save(out, kind="svg", scale=4, border=4, xmldecl=False,
                                        title="urne desk code")
    return out.getvalue().decode()


@router.get("/polls/{poll_id}/people/{person_id}", response_model=SignInStatusPublic)
async def sign_in_status(poll_id: Id, person_id: Id, user: Agent, token: AccessTokenText,
                         services: ServicesDep) -> dict:
    """Whether this person has voted in the poll, and through which channels (never
    what): the sign-in list an agent reads before helping someone vote or handing them
    a paper. Seconds behind the ballots. Each look-up is in the action log, with the
    agent's id. 404 ``poll_not_found`` for a poll that has not opened, 404
    ``person_not_found`` for nobody."""
    return await services.send(CheckSignInList(actor=actor(user), access_token=token,
                                               poll_id=poll_id, person_id=person_id))


@router.post("/polls/{poll_id}/people/{person_id}/voting-token",
             status_code=status.HTTP_201_CREATED, response_model=VotingTokenPublic)
async def desk_voting_token(poll_id: Id, person_id: Id, user: Agent, token: AccessTokenText,
                            services: ServicesDep) -> dict:
    """A voting token for the person in front of the agent, who votes at the desk with
    the agent's help (an assisted vote): their own ballot, its channel ``desk`` (a later
    ballot of theirs replaces it as a revote does, unless the poll's ``cross_channel`` is
    ``in_person_final``: then an online one is refused). The agent
    casts it at ``POST /v1/polls/{id}/ballots`` like any voting token. Check who they are
    first: the token votes in their name, and the action log keeps the agent's id."""
    return await services.send(IssueDeskVotingToken(actor=actor(user), access_token=token,
                                                    poll_id=poll_id, person_id=person_id))


@router.post("/polls/{poll_id}/people/{person_id}/paper",
             status_code=status.HTTP_201_CREATED, response_model=SignInStatusPublic)
async def mark_paper(poll_id: Id, person_id: Id, request: Request, user: Agent,
                     token: AccessTokenText, services: ServicesDep) -> dict:
    """Mark the person in front of the agent, in the sign-in list, as voting on paper
    before handing them a paper: from then on no ballot of theirs is taken in the poll
    (409 ``voted_on_paper``), whatever its channel, since a paper cannot be replaced. 409
    ``already_voted`` if they have voted (online or at a desk): a paper cannot replace
    that ballot; help them vote at the desk instead, which can. Marking again is safe.
    The paper itself is entered with the others, by its serial (``/paper-ballots``)."""
    issued = await services.send(IssueDeskVotingToken(
        actor=actor(user), access_token=token, poll_id=poll_id, person_id=person_id,
        channel="paper"))
    await state(request).ballots.mark_paper(poll_id, issued["voting_token"],
                                            request.state.trace_id)
    return {"poll_id": poll_id, "person_id": person_id, "voted": True, "channels": ["paper"]}


@router.post("/polls/{poll_id}/paper-ballots", response_model=PaperBatchPublic)
async def enter_paper_ballots(poll_id: Id, body: PaperBatch, request: Request, user: Agent,
                              token: AccessTokenText, services: ServicesDep) -> dict:
    """Enter a batch of paper ballots of an open poll (at most 500), each with the serial
    printed on it: each goes through the same path as an online ballot, under a voter
    key derived from its serial, its channel ``paper``. 200 with one result per ballot,
    in order: 201 and its receipt, or the problem that refused it. The same serial
    entered again with the same choice gives the same receipt; with another choice it is
    refused (422 ``idempotency_key_reused``): a paper is counted once, as first entered."""
    serials = [paper_serial(b.serial) for b in body.ballots]
    issued = await services.send(IssuePaperVotingTokens(
        actor=actor(user), access_token=token, poll_id=poll_id, serials=serials,
        district=body.district))
    ballots = state(request).ballots
    # The rules once, before the batch (not one fetch per ballot on a cold cache), and a
    # bounded number of ballots in flight: a batch is one agent's, not a surge.
    await ballots.rules_of(poll_id, request.state.trace_id)
    in_flight = asyncio.Semaphore(PAPER_IN_FLIGHT)

    async def enter(ballot: PaperBallot, serial: str, voting_token: str) -> dict[str, Any]:
        try:
            async with in_flight:
                receipt = await ballots.cast(poll_id, voting_token, ballot.choice.model_dump(),
                                             f"paper:{serial}", request.state.trace_id)
        except ProblemError as refused:
            detail = refused.detail if refused.status != 503 else (
                "this paper's outcome is unknown: send the batch again (each paper is "
                "entered once, by its serial)")
            return {"serial": ballot.serial, "status": refused.status, "code": refused.code,
                    "detail": detail}
        return {"serial": ballot.serial, "status": 201, "receipt": receipt}

    results = await asyncio.gather(*(
        enter(b, s, t) for b, s, t in zip(body.ballots, serials, issued["voting_tokens"],
                                          strict=True)))
    return {"poll_id": poll_id, "accepted": sum(r["status"] == 201 for r in results),
            "results": results}
