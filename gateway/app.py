"""Builds the FastAPI application around a ``ServiceClient`` (embedded or AMQP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Response
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from urne import __version__
from urne.crypto.keys import IDENTITY_TOKEN_KEY, TALLY_RESULT_KEY, jwk, load_key_set
from urne.crypto.tokens import TokenVerifier
from urne.gateway import problems
from urne.gateway.ballots import BallotDesk
from urne.gateway.clients import ServiceClient
from urne.gateway.deps import GatewayState
from urne.gateway.fastpath import BallotFastPath
from urne.gateway.middleware import TraceAndMeasure
from urne.gateway.routes import (
    admin,
    audit,
    auth,
    census,
    consultations,
    desk,
    health,
    me,
    polls,
    proposals,
)
from urne.gateway.routes import testing as testing_routes
from urne.gateway.web import mount as mount_web


def _operation_id(route: APIRoute) -> str:
    # Stable ids ("polls-cast_ballot") keep generated clients' method names.
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _register_problem_schema(app: FastAPI) -> None:
    """Put the Problem model in the OpenAPI components the error responses refer to."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                problems.Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(client: ServiceClient, keys_dir: Path, services: tuple[str, ...],
               tokens: TokenVerifier | None = None, testing: bool = False,
               fast_path: bool = True, metrics: bool = True, web: bool = True) -> FastAPI:
    """The gateway over ``client``; ``services`` are the ones ``/readyz`` checks.
    ``fast_path=False`` leaves every ballot to the FastAPI route (tests compare both);
    ``metrics=False``: no /metrics on the API (``CommonSettings.api_metrics``);
    ``web=False``: the API alone, without the web pages (``gateway/web``)."""
    identity_keys = load_key_set(keys_dir, IDENTITY_TOKEN_KEY)
    public_keys = [jwk(key, status) for keys in (load_key_set(keys_dir, TALLY_RESULT_KEY),
                                                 identity_keys)
                   for key, status in keys.keys]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.close()

    app = FastAPI(
        title="urne",
        version=__version__,
        summary="Citizen votes and consultations, verifiable end to end.",
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        responses=problems.PROBLEM_RESPONSES,
        # urne exports Prometheus metrics and sets up no OpenTelemetry; FastAPI's own
        # telemetry, on by default, asked OpenTelemetry's globals (and the environment)
        # on every request: 4.3 % of the gateway's samples at 400 ballots/s (py-spy).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Given when a vote service in this process checks the same tokens: one cache.
    tokens = tokens or TokenVerifier(identity_keys)
    app.state.urne = GatewayState(client=client, tokens=tokens, public_keys=public_keys,
                                  services=services, ballots=BallotDesk(client, tokens))
    problems.install(app)

    v1 = APIRouter(prefix="/v1")
    for module in (auth, me, consultations, census, proposals, polls, audit, admin, desk):
        v1.include_router(module.router)
    if testing:  # development and test only: synthetic voters for load tests
        v1.include_router(testing_routes.router)
    app.include_router(v1)
    app.include_router(health.router)
    if web:
        mount_web(app)
    _register_problem_schema(app)

    if metrics:
        @app.get("/metrics", include_in_schema=False)
        async def metrics_text() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # FastAPI keeps included routers as they are, so a matched route's own ``path`` lacks
    # their prefixes ("/polls/{poll_id}"): label metrics with the full template instead.
    contexts = list(iter_route_contexts(app.routes))
    templates = {id(rc.original_route): rc.path_format or "" for rc in contexts}
    [cast_route] = [rc.original_route for rc in contexts
                    if rc.path_format == "/v1/polls/{poll_id}/ballots"]

    # The later a middleware is added, the earlier it runs: the trace id and the metrics
    # cover the ballot fast path too.
    if fast_path:
        app.add_middleware(BallotFastPath, desk=app.state.urne.ballots, route=cast_route)
    app.add_middleware(TraceAndMeasure, templates=templates)

    return app
