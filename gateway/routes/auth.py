"""Sign-in: one-time codes and access tokens."""

from __future__ import annotations

from fastapi import APIRouter, status

from urne.contracts.commands import RequestLoginCode, VerifyLoginCode
from urne.gateway.deps import ServicesDep
from urne.gateway.public import AccessTokenPublic, LoginCodeSentPublic
from urne.gateway.requests import CodeRequest, CodeVerify

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/codes", status_code=status.HTTP_202_ACCEPTED, response_model=LoginCodeSentPublic)
async def request_code(body: CodeRequest, services: ServicesDep) -> dict:
    """Send a one-time sign-in code to an e-mail address (rate limited per address)."""
    return await services.send(RequestLoginCode(email=body.email))


@router.post("/tokens", response_model=AccessTokenPublic)
async def verify_code(body: CodeVerify, services: ServicesDep) -> dict:
    """Exchange a valid code for an access token; registers the person on first use."""
    return await services.send(VerifyLoginCode(email=body.email, code=body.code))
