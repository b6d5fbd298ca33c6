"""Routes for load tests, mounted only in development and test, and left out of the
OpenAPI document: not part of the public API."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import Field

from urne.contracts.commands import IssueSyntheticVotingTokens
from urne.contracts.fields import District, Id
from urne.counting.rules import MAX_OPTIONS
from urne.gateway.deps import Organiser, ServicesDep
from urne.gateway.public import Public
from urne.gateway.requests import Body

router = APIRouter(prefix="/testing", tags=["testing"], include_in_schema=False)


class SyntheticTokensCreate(Body):
    count: int
    # Spread round-robin over the made-up voters, for budgets per district.
    districts: list[District] = Field(default_factory=list, max_length=MAX_OPTIONS)


class SyntheticTokensPublic(Public):
    poll_id: str
    voting_tokens: list[str]


@router.post("/polls/{poll_id}/voting-tokens", status_code=status.HTTP_201_CREATED,
             response_model=SyntheticTokensPublic)
async def synthetic_voting_tokens(poll_id: Id, body: SyntheticTokensCreate, user: Organiser,
                                  services: ServicesDep) -> dict:
    """Voting tokens for made-up voters (identity refuses too, outside development)."""
    return await services.send(IssueSyntheticVotingTokens(poll_id=poll_id, count=body.count,
                                                          districts=body.districts))
