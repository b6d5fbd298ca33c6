"""Proposals over HTTP (in-process, the embedded profile): participants submit during the
proposals step, up to their limit; the organisers move and moderate; anyone signed in
reports; the listing's filters, search and cursors; Markdown served sanitised. Every
refusal is a problem+json with a stable code that changed nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import login
from tests.gateway.test_app import StubServices, ok, problem
from tests.gateway.test_consultations import token
from urne.gateway import public
from urne.gateway.app import create_app
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.platform.settings import EmbeddedSettings
from urne.runtime.registry import SERVICES

pytestmark = pytest.mark.unit

UNKNOWN = "0" * 32
LIMIT = 2


@pytest.fixture
def settings(tmp_path: Path) -> EmbeddedSettings:
    return EmbeddedSettings(data_dir=tmp_path / "data", environment="test",
                            max_proposals_per_person=LIMIT)


@pytest.fixture
def reader(client: TestClient, outbox: Path) -> dict[str, str]:
    return login(client, outbox, "rita@example.org")


def steps(opened: timedelta) -> list[dict[str, str]]:
    start = datetime.now(UTC) - opened
    return [{"kind": "proposals", "starts_at": start.isoformat(),
             "ends_at": (start + timedelta(days=7)).isoformat()}]


def consultation(client: TestClient, organiser: dict[str, str],
                 opened: timedelta = timedelta(days=1)) -> str:
    r = client.post("/v1/consultations", headers=organiser,
                    json={"title": "Budget", "steps": steps(opened)})
    cid = str(r.json()["id"])
    assert client.post(f"/v1/consultations/{cid}/publish", headers=organiser).status_code == 200
    return cid


def submit(client: TestClient, headers: dict[str, str], cid: str, **body: Any) -> dict:
    return ok(client.post(f"/v1/consultations/{cid}/proposals", headers=headers,
                          json={"title": "Trees", **body}), 201, public.ProposalPublic)


def test_a_participant_submits_and_the_organisers_decide(
        client: TestClient, organiser: dict[str, str], participant: dict[str, str],
        reader: dict[str, str]) -> None:
    cid = consultation(client, organiser)
    mine = submit(client, participant, cid, body="**Big** trees <script>x()</script>",
                  category="parks", district="nord", estimated_cost=25_000)
    assert (mine["status"], mine["category"], mine["estimated_cost"]) == (
        "submitted", "parks", 25_000)
    assert mine["author_id"] == client.get("/v1/me", headers=participant).json()["person_id"]
    assert "<strong>Big</strong>" in mine["body_html"] and "<script" not in mine["body_html"]
    pid = mine["id"]
    # Until published: its author and the organisers only.
    for headers in ({}, reader):
        problem(client.get(f"/v1/proposals/{pid}", headers=headers), 404, "proposal_not_found")
    ok(client.get(f"/v1/proposals/{pid}", headers=participant), 200, public.ProposalPublic)
    listing = ok(client.get(f"/v1/consultations/{cid}/proposals", headers=organiser), 200,
                 public.ProposalsPublic)
    assert [p["id"] for p in listing["items"]] == [pid] and listing["next_cursor"] is None
    # The organisers decide; nobody else may.
    problem(client.post(f"/v1/proposals/{pid}/publish", headers=participant), 403, "forbidden")
    problem(client.post(f"/v1/proposals/{pid}/publish"), 401, "missing_token")
    published = ok(client.post(f"/v1/proposals/{pid}/publish", headers=organiser), 200,
                   public.ProposalPublic)
    assert published["status"] == "published"
    problem(client.post(f"/v1/proposals/{pid}/publish", headers=organiser), 409,
            "proposal_published")
    assert client.get(f"/v1/proposals/{pid}").json()["status"] == "published"
    ok(client.post(f"/v1/proposals/{pid}/select", headers=organiser), 200,
       public.ProposalPublic)
    problem(client.post(f"/v1/proposals/{pid}/reject", headers=organiser,
                        json={"reason": "Too late"}), 409, "proposal_selected")
    done = ok(client.post(f"/v1/proposals/{pid}/implement", headers=organiser), 200,
              public.ProposalPublic)
    assert done["status"] == "implemented" and done["status_changed_at"]


def test_a_rejection_needs_its_reason_and_shows_it(
        client: TestClient, organiser: dict[str, str], participant: dict[str, str]) -> None:
    cid = consultation(client, organiser)
    pid = submit(client, participant, cid)["id"]
    path = f"/v1/proposals/{pid}/reject"
    for bad in (None, {}, {"reason": ""}, {"reason": "x" * 2001},
                {"reason": "ok", "status": "published"}):
        problem(client.post(path, headers=organiser, json=bad), 422, "invalid_request")
    ok(client.post(path, headers=organiser, json={"reason": "Already planned"}), 200,
       public.ProposalPublic)
    view = client.get(f"/v1/proposals/{pid}").json()
    assert (view["status"], view["rejection_reason"]) == ("rejected", "Already planned")


def test_submissions_close_outside_the_step_and_past_the_limit(
        client: TestClient, organiser: dict[str, str], participant: dict[str, str],
        reader: dict[str, str]) -> None:
    late = consultation(client, organiser, opened=timedelta(days=10))
    problem(client.post(f"/v1/consultations/{late}/proposals", headers=participant,
                        json={"title": "Late"}), 409, "proposals_closed")
    assert submit(client, organiser, late)["status"] == "published"  # organisers: any time
    cid = consultation(client, organiser)
    for i in range(LIMIT):
        submit(client, participant, cid, title=f"Idea {i}")
    problem(client.post(f"/v1/consultations/{cid}/proposals", headers=participant,
                        json={"title": "One more"}), 409, "proposal_limit_reached")
    submit(client, reader, cid)  # their own limit
    problem(client.post(f"/v1/consultations/{cid}/proposals", json={"title": "x"}), 401,
            "missing_token")


def test_a_whole_cost_written_with_a_zero_fraction_is_that_integer(
        client: TestClient, organiser: dict[str, str]) -> None:
    """JSON Schema's ``integer``, which the API's schema says, admits 979.0; 1.5, a
    string or a boolean is refused (test_a_bad_proposal_is_422_and_stores_nothing)."""
    cid = consultation(client, organiser)
    assert submit(client, organiser, cid, estimated_cost=979.0)["estimated_cost"] == 979


@pytest.mark.parametrize("body", [
    {"title": "x", "estimated_cost": -1}, {"title": "x", "estimated_cost": 1.5},
    {"title": "x", "estimated_cost": "100"}, {"title": "x", "estimated_cost": True},
    {"title": "x", "category": "a b"},
    {"title": "x", "district": ""}, {"title": "x", "status": "published"},
    {"title": "x", "author_id": "someone"}, {"body": "no title"},
], ids=["negative-cost", "cents", "cost-as-text", "cost-as-boolean", "category", "district",
        "status", "author", "title"])
def test_a_bad_proposal_is_422_and_stores_nothing(
        client: TestClient, organiser: dict[str, str], participant: dict[str, str],
        body: dict[str, Any]) -> None:
    cid = consultation(client, organiser)
    problem(client.post(f"/v1/consultations/{cid}/proposals", headers=participant, json=body),
            422, "invalid_request")
    assert client.get(f"/v1/consultations/{cid}/proposals",
                      headers=organiser).json()["items"] == []


def test_reports_and_hiding(client: TestClient, organiser: dict[str, str],
                            participant: dict[str, str], reader: dict[str, str]) -> None:
    cid = consultation(client, organiser)
    pid = submit(client, organiser, cid, title="Buy our product")["id"]
    reports = f"/v1/proposals/{pid}/reports"
    problem(client.post(reports, json={"reason": "Ads"}), 401, "missing_token")
    report = ok(client.post(reports, headers=reader, json={"reason": "Ads"}), 201,
                public.ReportPublic)
    assert report["reason"] == "Ads"
    problem(client.post(reports, headers=reader, json={"reason": "Ads!"}), 409,
            "proposal_already_reported")
    problem(client.post(reports, headers=reader, json={}), 422, "invalid_request")
    problem(client.get(reports, headers=reader), 403, "forbidden")
    listed = ok(client.get(reports, headers=organiser), 200, public.ReportsPublic)
    assert [r["reason"] for r in listed["items"]] == ["Ads"]
    assert client.get(f"/v1/proposals/{pid}", headers=organiser).json()["report_count"] == 1
    assert client.get(f"/v1/proposals/{pid}").json()["report_count"] is None
    problem(client.post(f"/v1/proposals/{pid}/hide", headers=participant,
                        json={"reason": "x"}), 403, "forbidden")
    hidden = ok(client.post(f"/v1/proposals/{pid}/hide", headers=organiser,
                            json={"reason": "Advertising"}), 200, public.ProposalPublic)
    assert hidden["hidden"] and hidden["moderation"]["reason"] == "Advertising"
    problem(client.get(f"/v1/proposals/{pid}"), 404, "proposal_not_found")
    assert client.get(f"/v1/consultations/{cid}/proposals").json()["items"] == []
    assert client.get(f"/v1/consultations/{cid}").json()["proposals"] == []
    problem(client.post(f"/v1/proposals/{pid}/hide", headers=organiser,
                        json={"reason": "Again"}), 409, "proposal_hidden")
    ok(client.post(f"/v1/proposals/{pid}/unhide", headers=organiser), 200,
       public.ProposalPublic)
    assert client.get(f"/v1/proposals/{pid}").json()["hidden"] is False
    problem(client.post(f"/v1/proposals/{UNKNOWN}/unhide", headers=organiser), 404,
            "proposal_not_found")


def test_listing_filters_search_and_cursors(client: TestClient,
                                            organiser: dict[str, str]) -> None:
    cid = consultation(client, organiser)
    made = [submit(client, organiser, cid, title=f"Idea {i}", category=c, district=d,
                   body=b)["id"]
            for i, (c, d, b) in enumerate([("parks", "nord", "Chênes"), ("parks", "sud", ""),
                                           ("mobility", "nord", "Bus de NUIT"),
                                           ("parks", "nord", "")])]
    path = f"/v1/consultations/{cid}/proposals"

    def ids(**params: Any) -> list[str]:
        found, cursor = [], None
        while True:
            page = ok(client.get(path, params={**params, **({"cursor": cursor} if cursor
                                                              else {})}),
                      200, public.ProposalsPublic)
            found += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    assert ids() == ids(limit=1) == made
    assert ids(category="parks", district="nord", limit=1) == [made[0], made[3]]
    assert ids(q="nuit") == ids(q="Bus de") == [made[2]]
    assert ids(q="chênes", status="published") == [made[0]]
    assert ids(status="rejected") == []
    first = client.get(path, params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    for params in ({"status": "draft"}, {"limit": 0}, {"limit": 101}, {"category": "a b"},
                   {"district": "-x"}, {"q": ""}, {"q": "x" * 201}, {"cursor": ""}):
        problem(client.get(path, params=params), 422, "invalid_request")
    problem(client.get(path, params={"cursor": "not-ours"}), 422, "invalid_cursor")
    problem(client.get(f"/v1/consultations/{UNKNOWN}/proposals"), 404,
            "consultation_not_found")


# --- what the gateway sends: the actor, from the token only ----------------------------------


@pytest.fixture
def sent(keys_dir: Path) -> Iterator[tuple[TestClient, list[RawEnvelope]]]:
    envelopes: list[RawEnvelope] = []

    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        envelopes.append(envelope)
        return {"ok": False, "error": {"status": 404, "code": "proposal_not_found",
                                       "detail": "stub"}}

    with ExitStack() as stack:
        app = create_app(StubServices(answer), keys_dir, services=tuple(SERVICES))
        yield stack.enter_context(TestClient(app)), envelopes


@pytest.mark.parametrize(("method", "path", "body", "role"), [
    ("GET", "/v1/consultations/c1/proposals", None, "participant"),
    ("POST", "/v1/consultations/c1/proposals", {"title": "t"}, "participant"),
    ("GET", "/v1/proposals/p1", None, "participant"),
    ("POST", "/v1/proposals/p1/reports", {"reason": "r"}, "participant"),
    ("POST", "/v1/proposals/p1/publish", None, "organiser"),
    ("POST", "/v1/proposals/p1/reject", {"reason": "r"}, "organiser"),
    ("POST", "/v1/proposals/p1/select", None, "organiser"),
    ("POST", "/v1/proposals/p1/implement", None, "organiser"),
    ("POST", "/v1/proposals/p1/hide", {"reason": "r"}, "organiser"),
    ("POST", "/v1/proposals/p1/unhide", None, "organiser"),
    ("GET", "/v1/proposals/p1/reports", None, "organiser"),
])
def test_every_proposal_route_sends_the_tokens_actor(
        sent: tuple[TestClient, list[RawEnvelope]], keys_dir: Path, method: str, path: str,
        body: dict[str, Any] | None, role: str) -> None:
    client, envelopes = sent
    problem(client.request(method, path, headers=token(keys_dir, "ada", role), json=body),
            404, "proposal_not_found")
    [message] = envelopes
    assert message["payload"]["actor"] == {"person_id": "ada", "role": role}
    if role == "organiser":  # a participant is refused before any service is asked
        problem(client.request(method, path, headers=token(keys_dir, "pat", "participant"),
                               json=body), 403, "forbidden")
        assert len(envelopes) == 1
