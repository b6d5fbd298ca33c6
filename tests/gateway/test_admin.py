"""The admin routes at the edge: who may call them, what they send, strict input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import PROBLEM, bearer
from tests.gateway.test_app import Answer, replied
from urne.crypto.keys import IDENTITY_TOKEN_KEY, load_signing_key
from urne.crypto.tokens import TokenIssuer
from urne.messaging.kernel import RawEnvelope, RawReply

pytestmark = pytest.mark.unit

PERSON = {"person_id": "p9", "email": "ada@example.org", "role": "organiser",
          "district": None, "district_verified": False}


def token(keys_dir: Path, role: str, person_id: str = "admin-1") -> dict[str, str]:
    issuer = TokenIssuer(load_signing_key(keys_dir, IDENTITY_TOKEN_KEY))
    return bearer(issuer.access_token(person_id, role)[0])


class Services:
    def __init__(self) -> None:
        self.sent: list[tuple[str, RawEnvelope]] = []

    def __call__(self, service: str, envelope: RawEnvelope) -> RawReply:
        self.sent.append((service, envelope))
        payload = envelope["payload"]
        if envelope["type"] == "person.role.set.v1":
            return replied({**PERSON, "role": payload["role"]})
        entry = {"at": f"{payload['month']}-0{2 if service == 'identity' else 1}T10:00:00Z",
                 "id": f"{service}-1", "actor": "admin-1", "role": "admin",
                 "action": f"{service}.thing.v1", "subject": {"n": 1}}
        return replied({"service": service, "month": payload["month"], "actions": [entry]})


def test_an_admin_grants_a_role(stubbed: Callable[[Answer], TestClient],
                                keys_dir: Path) -> None:
    services = Services()
    r = stubbed(services).put("/v1/admin/roles", headers=token(keys_dir, "admin"),
                              json={"email": "Ada@Example.org", "role": "organiser"})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "organiser"
    [(service, envelope)] = services.sent
    assert (service, envelope["type"]) == ("identity", "person.role.set.v1")
    # The actor is the token's, never the body's.
    assert envelope["payload"]["actor"] == {"person_id": "admin-1", "role": "admin"}


@pytest.mark.parametrize("role", ["participant", "organiser", "moderator", "agent"])
def test_only_admins_reach_the_admin_routes(stubbed: Callable[[Answer], TestClient],
                                            keys_dir: Path, role: str) -> None:
    services = Services()
    client = stubbed(services)
    for r in (client.put("/v1/admin/roles", headers=token(keys_dir, role),
                         json={"email": "a@example.org", "role": "admin"}),
              client.get("/v1/admin/actions", headers=token(keys_dir, role))):
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
        assert r.headers["content-type"] == PROBLEM
    assert client.get("/v1/admin/actions").status_code == 401
    assert services.sent == []


@pytest.mark.parametrize("body", [
    {"email": "not-an-address", "role": "organiser"},
    {"email": "a@example.org", "role": "superuser"},
    {"email": "a@example.org"},
    {"email": "a@example.org", "role": "admin", "person_id": "p1"},
])
def test_a_bad_grant_is_a_422_and_sends_nothing(stubbed: Callable[[Answer], TestClient],
                                                 keys_dir: Path, body: dict[str, Any]) -> None:
    services = Services()
    r = stubbed(services).put("/v1/admin/roles", headers=token(keys_dir, "admin"), json=body)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    assert services.sent == []


def test_the_action_logs_of_both_services_are_merged_oldest_first(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path) -> None:
    services = Services()
    client = stubbed(services)
    r = client.get("/v1/admin/actions", params={"month": "2026-10"},
                   headers=token(keys_dir, "admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["month"] == "2026-10"
    assert [(a["service"], a["id"]) for a in body["actions"]] == [
        ("proposal", "proposal-1"), ("identity", "identity-1")]
    assert sorted(s for s, _ in services.sent) == ["identity", "proposal"]
    # Without a month: this month, in UTC.
    client.get("/v1/admin/actions", headers=token(keys_dir, "admin"))
    assert services.sent[-1][1]["payload"]["month"] == datetime.now(UTC).strftime("%Y-%m")


class Logs(Services):
    """Each service's log of the month: entries at whole minutes, some at the same
    instant in both, served by (at, id) after the asked entry, at most ``limit``."""

    def __init__(self) -> None:
        super().__init__()
        self.log = {service: sorted(
            (datetime(2026, 10, 1, 9, minute, tzinfo=UTC), f"{service}-{n}")
            for n, minute in enumerate(minutes)) for service, minutes in
            (("identity", [0, 1, 1, 5, 7, 8]), ("proposal", [1, 2, 3, 5, 9]))}

    def __call__(self, service: str, envelope: RawEnvelope) -> RawReply:
        self.sent.append((service, envelope))
        q = envelope["payload"]
        after = (datetime.fromisoformat(q["after_at"]), q["after_id"]) \
            if q.get("after_at") else None
        rows = [e for e in self.log[service] if after is None or e > after][:q["limit"]]
        return replied({"service": service, "month": q["month"], "actions": [
            {"at": at.isoformat(), "id": i, "actor": "admin-1", "role": "admin",
             "action": "x.v1", "subject": {}} for at, i in rows]})


@pytest.mark.parametrize("limit", [1, 2, 3, 11, 12])
def test_the_action_log_is_read_a_page_at_a_time(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path, limit: int) -> None:
    services = Logs()
    client = stubbed(services)
    seen: list[str] = []
    params: dict[str, Any] = {"month": "2026-10", "limit": limit}
    for _ in range(20):
        r = client.get("/v1/admin/actions", params=params, headers=token(keys_dir, "admin"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["actions"]) <= limit
        seen += [a["id"] for a in body["actions"]]
        if body["next"] is None:
            break
        params["after"] = body["next"]
    everything = sorted(e for log in services.log.values() for e in log)
    assert seen == [i for _, i in everything]  # each once, oldest first


@pytest.mark.parametrize("after", ["nope", "W10", "WyJ4IiwgMV0",
                                   "WyIyMDI2LTEwLTAxVDA5OjAwOjAwIiwgImEiXQ"],
                         ids=["not-base64-json", "empty-list", "not-a-time", "no-offset"])
def test_a_bad_page_cursor_is_a_422_and_asks_nothing(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path, after: str) -> None:
    services = Logs()
    r = stubbed(services).get("/v1/admin/actions", params={"month": "2026-10", "after": after},
                              headers=token(keys_dir, "admin"))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert services.sent == []


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-01", "2026-01-01", "last"])
def test_a_bad_month_is_a_422(stubbed: Callable[[Answer], TestClient], keys_dir: Path,
                              month: str) -> None:
    services = Services()
    r = stubbed(services).get("/v1/admin/actions", params={"month": month},
                              headers=token(keys_dir, "admin"))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    assert services.sent == []
