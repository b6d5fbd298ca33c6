"""Admins: who holds which role, and what organisers and admins did.

Roles are granted here rather than only by the e-mail lists read at first sign-in
(``URNE_ORGANISER_EMAILS``, ``URNE_ADMIN_EMAILS``); every command an organiser,
moderator, agent or admin has a service carry out is in that service's action log,
read here month by month (urne/storage/action_log.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from urne.contracts.commands import ListIdentityActions, ListProposalActions, SetRole
from urne.gateway.deps import Admin, ServicesDep, actor
from urne.gateway.public import ActionLogPublic, PersonPublic
from urne.gateway.requests import RoleGrant

router = APIRouter(prefix="/admin", tags=["admin"])

MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


@router.put("/roles", response_model=PersonPublic)
async def grant_role(body: RoleGrant, user: Admin, services: ServicesDep) -> dict:
    """Give the person with this address a role (``participant`` takes one back). One
    who never signed in is made a person now: the role awaits them. Their access tokens
    carry it from their next sign-in. An admin does not change their own role."""
    return await services.send(SetRole(actor=actor(user), email=body.email, role=body.role))


@router.get("/actions", response_model=ActionLogPublic)
async def actions(user: Admin, services: ServicesDep,
                  month: Annotated[str | None, Query(pattern=MONTH, description=(
                      "YYYY-MM, in UTC; this month if not given."))] = None) -> dict:
    """What organisers and admins did in one month, oldest first: every command they had
    a service carry out (consultations, proposals, polls; roles), appended when it
    succeeded and never changed."""
    month = month or datetime.now(UTC).strftime("%Y-%m")
    who = actor(user)
    logs = await asyncio.gather(
        services.send(ListIdentityActions(actor=who, month=month)),
        services.send(ListProposalActions(actor=who, month=month)))
    merged = [{**a, "service": log["service"]} for log in logs for a in log["actions"]]
    merged.sort(key=lambda a: (a["at"], a["id"]))
    return {"month": month, "actions": merged}
