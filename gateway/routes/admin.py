"""Admins: who holds which role, and what organisers and admins did.

Roles are granted here rather than only by the e-mail lists read at first sign-in
(``URNE_ORGANISER_EMAILS``, ``URNE_ADMIN_EMAILS``); every command an organiser,
moderator, agent or admin has a service carry out is in that service's action log,
read here month by month (urne/storage/action_log.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from urne.contracts.commands import ListIdentityActions, ListProposalActions, SetRole
from urne.gateway.deps import Admin, ServicesDep, actor
from urne.gateway.problems import ProblemError
from urne.gateway.public import ActionLogPublic, PersonPublic
from urne.gateway.requests import RoleGrant

router = APIRouter(prefix="/admin", tags=["admin"])

MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
MAX_PAGE = 5_000  # entries of the action log a page (each service is asked one more)


@router.put("/roles", response_model=PersonPublic)
async def grant_role(body: RoleGrant, user: Admin, services: ServicesDep) -> dict:
    """Give the person with this address a role (``participant`` takes one back). One
    who never signed in is made a person now: the role awaits them. Their access tokens
    carry it from their next sign-in. An admin does not change their own role."""
    return await services.send(SetRole(actor=actor(user), email=body.email, role=body.role))


@router.get("/actions", response_model=ActionLogPublic)
async def actions(user: Admin, services: ServicesDep,
                  month: Annotated[str | None, Query(pattern=MONTH, description=(
                      "YYYY-MM, in UTC; this month if not given."))] = None,
                  after: Annotated[str | None, Query(max_length=200, description=(
                      "the `next` of the page before"))] = None,
                  limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE) -> dict:
    """What organisers and admins did in one month, oldest first: every command they had
    a service carry out (consultations, proposals, polls; roles), appended when it
    succeeded and never changed. A page at a time: ``next``, when there is more, is the
    ``after`` of the following page."""
    month = month or datetime.now(UTC).strftime("%Y-%m")
    who = actor(user)
    at, last = _cursor(after) if after else (None, None)
    # One more than the page from each log: the page is the first ``limit`` of both
    # together, and an entry of either not fetched comes after all of them.
    logs = await asyncio.gather(
        services.send(ListIdentityActions(actor=who, month=month, limit=limit + 1,
                                          after_at=at, after_id=last)),
        services.send(ListProposalActions(actor=who, month=month, limit=limit + 1,
                                          after_at=at, after_id=last)))
    merged = [{**a, "service": log["service"]} for log in logs for a in log["actions"]]
    merged.sort(key=lambda a: (datetime.fromisoformat(a["at"]), a["id"]))
    page = merged[:limit]
    more = len(merged) > limit
    return {"month": month, "actions": page,
            "next": _next(page[-1]["at"], page[-1]["id"]) if more else None}


def _next(at: str, last: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at, last]).encode()).decode().rstrip("=")


def _cursor(text: str) -> tuple[datetime, str]:
    """An ``after`` as ``_next`` wrote it; anything else is the client's mistake."""
    try:
        at, last = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        when = datetime.fromisoformat(at)
        if not isinstance(last, str) or when.tzinfo is None:
            raise ValueError("not a cursor")
    except (ValueError, TypeError) as exc:
        raise ProblemError(422, "invalid_request", "after: not the next of a page of the "
                           "action log") from exc
    return when, last
