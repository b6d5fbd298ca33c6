"""Liveness, readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from urne.contracts.commands import CheckHealth
from urne.contracts.envelope import wrap
from urne.gateway.clients import ServiceUnavailable
from urne.gateway.deps import state
from urne.gateway.problems import problem
from urne.platform.metrics import SERVICE_READY

router = APIRouter(tags=["health"])
READY_TIMEOUT = 3.0


@router.get("/healthz")
async def healthz() -> dict:
    """Alive: the process serves HTTP."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> JSONResponse | dict:
    """Ready: every service answers through the broker and reaches its store."""
    gateway = state(request)

    async def check(service: str) -> tuple[str, dict]:
        """A service's readiness, and what is missing when it is not: the ``broker``
        (the gateway has no connection to it), the ``service`` (no answer through a
        connected broker, or an error for one) or its ``store`` (it answered that it
        cannot reach it)."""
        try:
            reply = await asyncio.wait_for(
                gateway.client.call(service, wrap(CheckHealth(), "gateway")), READY_TIMEOUT)
        except (ServiceUnavailable, TimeoutError) as exc:
            missing = "broker" if gateway.client.broker_connected is False else "service"
            return service, {"ready": False, "missing": missing, "detail": type(exc).__name__}
        if not reply.get("ok"):  # it answered, with an error: the service is at fault
            error = reply.get("error") or {}
            return service, {"ready": False, "missing": "service",
                             "detail": str(error.get("code", "error"))}
        data = reply.get("data") or {}
        if data.get("ready"):
            return service, {"ready": True, "detail": data.get("detail", "")}
        return service, {"ready": False, "missing": "store", "detail": data.get("detail", "")}

    results = dict(await asyncio.gather(*(check(s) for s in gateway.services)))
    for service, result in results.items():  # for the "service not ready" alert
        SERVICE_READY.labels(service).set(1 if result["ready"] else 0)
    if all(r["ready"] for r in results.values()):
        return {"status": "ready", "services": results}
    return problem(503, "not_ready", "some services are not ready", "/readyz", services=results)
