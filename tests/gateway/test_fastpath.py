"""The ballot fast path (urne.gateway.fastpath) answers every ballot request exactly as
the FastAPI route does, and leaves to the route whatever it does not take itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.gateway.test_app import (
    OPEN_POLL,
    POLL,
    RECEIPT,
    YES,
    Intake,
    StubServices,
    replied,
    voting,
)
from urne.gateway.app import create_app
from urne.gateway.clients import ServiceUnavailable
from urne.gateway.routes import polls
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.runtime.registry import SERVICES

pytestmark = pytest.mark.unit

Build = Callable[[Callable[[str, RawEnvelope], RawReply], bool], TestClient]


@pytest.fixture
def build(keys_dir: Path) -> Iterator[Build]:
    with ExitStack() as stack:
        def make(answer: Callable[[str, RawEnvelope], RawReply], fast: bool) -> TestClient:
            app = create_app(StubServices(answer), keys_dir, services=tuple(SERVICES),
                             fast_path=fast)
            return stack.enter_context(TestClient(app))
        yield make


def _refused(code: str, status: int) -> RawReply:
    return {"ok": False, "error": {"code": code, "status": status, "detail": "refused"}}


def _unavailable(service: str, envelope: RawEnvelope) -> RawReply:
    if service.startswith("ballots:"):
        raise ServiceUnavailable("no answer")
    return replied(OPEN_POLL)


# (name, the services' answers, headers beyond the voting token, body or raw content)
CASES: list[tuple[str, Callable[[], Any], dict[str, str], Any]] = [
    ("stored", lambda: Intake(OPEN_POLL), {}, {"choice": YES}),
    ("stored with a key", lambda: Intake(OPEN_POLL), {"Idempotency-Key": "k-1"},
     {"choice": YES}),
    ("refused by the vote service", lambda: Intake(OPEN_POLL, _refused("poll_closed", 409)),
     {}, {"choice": YES}),
    ("key reused", lambda: Intake(OPEN_POLL, _refused("idempotency_key_reused", 422)),
     {"Idempotency-Key": "k-1"}, {"choice": YES}),
    ("vote service silent", lambda: _unavailable, {}, {"choice": YES}),
    ("closed poll", lambda: Intake({**OPEN_POLL, "status": "closed"}), {}, {"choice": YES}),
    ("draft poll", lambda: Intake(POLL), {}, {"choice": YES}),
    ("another method's ballot", lambda: Intake(OPEN_POLL), {},
     {"choice": {"method": "approval", "approved": ["a"]}}),
    ("an answer the schema refuses", lambda: Intake(OPEN_POLL), {},
     {"choice": {"method": "yes_no_abstain", "answer": "maybe"}}),
    ("an unknown field", lambda: Intake(OPEN_POLL), {}, {"choice": YES, "x": 1}),
    ("no body", lambda: Intake(OPEN_POLL), {}, None),
    ("malformed JSON", lambda: Intake(OPEN_POLL), {"Content-Type": "application/json"},
     b'{"choice": '),
    ("not JSON", lambda: Intake(OPEN_POLL), {"Content-Type": "text/plain"}, b"yes"),
    ("a key with a space", lambda: Intake(OPEN_POLL), {"Idempotency-Key": "k 1"},
     {"choice": YES}),
    ("a token for another poll", lambda: Intake(OPEN_POLL), {"token-poll": "p2"},
     {"choice": YES}),
    ("no token", lambda: Intake(OPEN_POLL), {"token-poll": ""}, {"choice": YES}),
    ("a forged token", lambda: Intake(OPEN_POLL),
     {"Authorization": "Bearer e30.e30.c2ln"}, {"choice": YES}),
    ("a large body", lambda: Intake(OPEN_POLL), {},
     {"choice": YES, "padding": "x" * 300_000}),
]


def _send(client: TestClient, keys_dir: Path, headers: dict[str, str], body: Any) -> Any:
    headers = dict(headers)
    token_poll = headers.pop("token-poll", "p1")
    if token_poll and "Authorization" not in headers:
        headers.update(voting(keys_dir, poll_id=token_poll))
    if isinstance(body, bytes):
        return client.post("/v1/polls/p1/ballots", headers=headers, content=body)
    return client.post("/v1/polls/p1/ballots", headers=headers, json=body)


@pytest.mark.parametrize(("name", "answers", "headers", "body"), CASES,
                         ids=[c[0] for c in CASES])
def test_both_paths_answer_alike(build: Build, keys_dir: Path, name: str,
                                 answers: Callable[[], Any], headers: dict[str, str],
                                 body: Any) -> None:
    fast, route = (_send(build(answers(), flag), keys_dir, headers, body)
                   for flag in (True, False))
    assert fast.status_code == route.status_code
    assert fast.headers["content-type"] == route.headers["content-type"]
    assert fast.headers.get("www-authenticate") == route.headers.get("www-authenticate")
    assert fast.json() == route.json()
    assert fast.headers["x-request-id"]
    if fast.status_code == 201:  # written by the fast path itself: the route's very bytes
        assert fast.content == route.content
        assert ([h for h in fast.headers.items() if h[0] != "x-request-id"]
                == [h for h in route.headers.items() if h[0] != "x-request-id"])


def test_the_fast_path_takes_a_good_ballot_itself(
        build: Build, keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_route(*args: Any) -> None:
        raise AssertionError("the FastAPI route was used")

    monkeypatch.setattr(polls, "state", no_route)  # what the route would call first
    intake = Intake(OPEN_POLL)
    r = _send(build(intake, True), keys_dir, {"Idempotency-Key": "k-1"}, {"choice": YES})
    assert (r.status_code, r.json()) == (201, RECEIPT)
    [(_, envelope)] = intake.cast
    assert envelope["payload"]["choice"] == {"answer": "yes"}
    assert envelope["payload"]["idempotency_key"] == "k-1"


def test_what_it_leaves_reaches_the_route_whole(build: Build, keys_dir: Path) -> None:
    """A body the fast path read and did not take is given to the route unchanged."""
    intake = Intake(OPEN_POLL)
    client = build(intake, True)
    big = {"choice": YES, "padding": "é" * 200_000}  # over the fast path's limit
    r = _send(client, keys_dir, {}, big)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "padding"]]
    assert intake.cast == []


def test_metrics_name_the_route_whichever_path_answered(build: Build, keys_dir: Path) -> None:
    client = build(Intake(OPEN_POLL), True)
    assert _send(client, keys_dir, {}, {"choice": YES}).status_code == 201
    assert _send(client, keys_dir, {}, {"choice": YES, "x": 1}).status_code == 422
    metrics = client.get("/metrics").text
    for status in ("201", "422"):
        assert any('route="/v1/polls/{poll_id}/ballots"' in line and f'status="{status}"' in line
                   for line in metrics.splitlines()), status
