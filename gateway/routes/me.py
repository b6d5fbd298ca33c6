"""The signed-in person: their profile and the district they declare."""

from __future__ import annotations

from fastapi import APIRouter

from urne.contracts.commands import DeclareDistrict, GetPerson
from urne.gateway.deps import CurrentUser, ServicesDep
from urne.gateway.public import PersonPublic
from urne.gateway.requests import DistrictDeclare

router = APIRouter(prefix="/me", tags=["me"])


@router.get("", response_model=PersonPublic)
async def get_profile(user: CurrentUser, services: ServicesDep) -> dict:
    """Who you are to urne: your id, address, role and the district you declared."""
    return await services.send(GetPerson(person_id=user.person_id))


@router.put("/district", response_model=PersonPublic)
async def declare_district(body: DistrictDeclare, user: CurrentUser,
                           services: ServicesDep) -> dict:
    """Declare (or change) the district you live in; your voting tokens carry it from then
    on, for polls with a budget per district. It is taken at your word
    (``district_verified`` is false) until districts are checked against a census."""
    return await services.send(DeclareDistrict(person_id=user.person_id,
                                               district=body.district))
