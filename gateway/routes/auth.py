"""Sign-in: one-time codes and access tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from urne.contracts.commands import (
    RequestLoginCode,
    RequestSmsCode,
    VerifyDeskCode,
    VerifyLoginCode,
    VerifySmsCode,
)
from urne.gateway.deps import ServicesDep
from urne.gateway.public import AccessTokenPublic, LoginCodeSentPublic
from urne.gateway.requests import CodeRequest, CodeVerify

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/codes", status_code=status.HTTP_202_ACCEPTED, response_model=LoginCodeSentPublic)
async def request_code(body: CodeRequest, request: Request, services: ServicesDep) -> dict:
    """Send a one-time sign-in code to an e-mail address, or by SMS to a mobile number
    (E.164) of a country the operator texts (422 ``phone_refused`` otherwise). Limited
    per address, and per address and client: a stranger's requests leave the owner
    theirs (429 with Retry-After). Earlier codes stay valid until they expire."""
    if body.email is not None:
        return await services.send(RequestLoginCode(email=body.email, client=client(request)))
    assert body.phone is not None  # one of them: CodeRequest
    return await services.send(RequestSmsCode(phone=body.phone, client=client(request)))


@router.post("/tokens", response_model=AccessTokenPublic)
async def verify_code(body: CodeVerify, request: Request, services: ServicesDep) -> dict:
    """Exchange a valid code (with the address or number it was sent to), or the desk code
    of a card an agent printed, for an access token; registers the person on first use.
    Every failure gives the same 401; wrong codes are limited per client (429 with
    Retry-After) and per address (five burn its pending codes). A desk code signs in
    once."""
    if body.desk_code is not None:
        return await services.send(VerifyDeskCode(code=body.desk_code, client=client(request)))
    assert body.code is not None  # with an address or a number: CodeVerify
    if body.email is not None:
        return await services.send(VerifyLoginCode(email=body.email, code=body.code,
                                                   client=client(request)))
    assert body.phone is not None
    return await services.send(VerifySmsCode(phone=body.phone, code=body.code,
                                             client=client(request)))


def client(request: Request) -> str | None:
    """The client's address: uvicorn has put the one a trusted proxy forwarded
    (``URNE_TRUSTED_PROXIES``) in its place."""
    return request.client.host if request.client else None
