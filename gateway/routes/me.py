"""The signed-in person: their profile, the district they declare, and deleting their
account."""

from __future__ import annotations

from fastapi import APIRouter, Response

from urne.contracts.commands import DeclareDistrict, DeletePerson, GetPerson
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


@router.delete("", status_code=204, response_class=Response)
async def delete_account(user: CurrentUser, services: ServicesDep) -> Response:
    """Delete your account: your e-mail address or phone number, your district and your
    role go. A keyed hash of your address stays with your id, so that signing in with it
    again gives you the same id, and the same voter key in a poll you voted in (no second
    ballot). Your ballots stay counted; your access token stops working where your
    profile is needed (404 ``person_not_found``)."""
    await services.send(DeletePerson(person_id=user.person_id))
    return Response(status_code=204)
