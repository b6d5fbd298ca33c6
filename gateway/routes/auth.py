from __future__ import annotations

from fastapi import APIRouter, status

from gateway.deps import ServicesDep
from gateway.models import CodeRequest, CodeVerify
from urne.contracts.commands import RequestLoginCode, VerifyLoginCode
from urne.contracts.views import AccessToken, LoginCodeSent

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/codes", status_code=status.HTTP_202_ACCEPTED, response_model=LoginCodeSent)
async def request_code(body: CodeRequest, services: ServicesDep) -> dict:
    """Send a one-time sign-in code to an e-mail address (rate limited per address)."""
    return await services.send(RequestLoginCode(email=body.email))


@router.post("/tokens", response_model=AccessToken)
async def verify_code(body: CodeVerify, services: ServicesDep) -> dict:
    """Exchange a valid code for an access token; registers the person on first use."""
    return await services.send(VerifyLoginCode(email=body.email, code=body.code))
