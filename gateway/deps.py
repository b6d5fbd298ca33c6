"""Dependencies shared by the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, overload

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from urne.contracts.commands import Actor, GetConsultation
from urne.contracts.envelope import Command, wrap
from urne.contracts.fields import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN
from urne.contracts.roles import ADMIN, AGENT, STAFF
from urne.crypto.tokens import AccessClaims, InvalidToken, TokenVerifier
from urne.gateway.ballots import BallotDesk
from urne.gateway.clients import ServiceClient, ServiceUnavailable
from urne.gateway.problems import ProblemError, reply_data

bearer = HTTPBearer(auto_error=False)
# For ``openapi_extra`` of routes that take ``OptionalUser``: FastAPI declares the bearer
# scheme as required; the empty alternative tells clients (and the fuzzer) it is optional.
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}


@dataclass
class GatewayState:
    client: ServiceClient
    tokens: TokenVerifier
    public_keys: list[dict[str, str]]
    services: tuple[str, ...]  # what /readyz checks
    ballots: BallotDesk


def state(request: Request) -> GatewayState:
    return request.app.state.urne


class Services:
    """Sends a command to the service that owns it and returns the reply's data."""

    def __init__(self, request: Request):
        self.st = state(request)
        self.trace_id = request.state.trace_id

    async def send(self, command: Command) -> dict[str, Any]:
        target = command.OWNER
        envelope = wrap(command, "gateway", self.trace_id)
        try:
            reply = await self.st.client.call(target, envelope)
        except ServiceUnavailable as exc:
            raise ProblemError(503, "service_unavailable",
                               f"the {target} service is not answering; retry shortly") from exc
        return reply_data(reply)


def _token(creds: HTTPAuthorizationCredentials | None) -> str:
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise ProblemError(401, "missing_token", "this route needs 'Authorization: Bearer <token>'")
    return creds.credentials


# The dependencies are coroutines, though they do not wait for anything: FastAPI runs
# plain functions in a thread pool, a hop that cost more than the work on the ballot path.
async def current_user(request: Request,
                       creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                       ) -> AccessClaims:
    try:
        return state(request).tokens.access(_token(creds))
    except InvalidToken as exc:
        raise ProblemError(401, "invalid_token", f"access token refused: {exc}") from exc


async def optional_user(request: Request,
                        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                        ) -> AccessClaims | None:
    """The signed-in person, or None when no token is sent: public routes that show
    drafts to their organisers. A token sent but refused is still a 401, never anonymous."""
    if creds is None:
        return None
    return await current_user(request, creds)


async def organiser(user: Annotated[AccessClaims, Depends(current_user)]) -> AccessClaims:
    # Only the role, here: which consultations they may act on is the proposal
    # service's to decide, from the actor the route passes on.
    if user.role not in STAFF:
        raise ProblemError(403, "forbidden", "this route is for organisers and admins")
    return user


async def admin(user: Annotated[AccessClaims, Depends(current_user)]) -> AccessClaims:
    # Checked again by the service, from the actor the route passes on.
    if user.role != ADMIN:
        raise ProblemError(403, "forbidden", "this route is for admins")
    return user


async def agent(user: Annotated[AccessClaims, Depends(current_user)]) -> AccessClaims:
    # Checked again by identity, from the actor the route passes on.
    if user.role not in (AGENT, ADMIN):
        raise ProblemError(403, "forbidden", "this route is for agents and admins")
    return user


@overload
def actor(user: AccessClaims) -> Actor: ...
@overload
def actor(user: AccessClaims | None) -> Actor | None: ...
def actor(user: AccessClaims | None) -> Actor | None:
    """Who asks, for a command's ``actor``: from the verified access token only."""
    return None if user is None else Actor(person_id=user.person_id, role=user.role)


def idempotency_key_header(description: str) -> Any:
    """A route's ``Idempotency-Key`` header (``Annotated[str | None, …]``), with the limits
    the contracts give it, and what it does there."""
    return Header(alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX,
                  pattern=IDEMPOTENCY_KEY_PATTERN, description=description)


async def voting_token(creds: Annotated[HTTPAuthorizationCredentials | None,
                                       Depends(bearer)]) -> str:
    # Checked by the ballot path (gateway/ballots.py), then again by the vote service.
    return _token(creds)


async def access_token_text(creds: Annotated[HTTPAuthorizationCredentials | None,
                                            Depends(bearer)]) -> str:
    # The access token as sent, for a service that checks it itself (identity, when it
    # issues a voting token).
    return _token(creds)


async def services(request: Request) -> Services:
    return Services(request)


ServicesDep = Annotated[Services, Depends(services)]
CurrentUser = Annotated[AccessClaims, Depends(current_user)]
OptionalUser = Annotated[AccessClaims | None, Depends(optional_user)]
Organiser = Annotated[AccessClaims, Depends(organiser)]  # an organiser or an admin
Admin = Annotated[AccessClaims, Depends(admin)]
Agent = Annotated[AccessClaims, Depends(agent)]  # an agent (or an admin) at a desk
VotingTokenDep = Annotated[str, Depends(voting_token)]
AccessTokenText = Annotated[str, Depends(access_token_text)]


async def organised(services: Services, user: AccessClaims, consultation_id: str,
                    why: str) -> dict[str, Any]:
    """The consultation, if ``user`` is one of its organisers or an admin; else 403
    ``not_an_organiser`` (``why``: what only they may do). For what the gateway asks of
    identity on an organiser's behalf: identity does not know who organises what."""
    consultation = await services.send(GetConsultation(consultation_id=consultation_id,
                                                       actor=actor(user)))
    if user.role != ADMIN and user.person_id not in (consultation.get("organisers") or []):
        raise ProblemError(403, "not_an_organiser", why)
    return consultation
