"""Consultations over HTTP (in-process, the embedded profile): drafts seen by their
organisers only, what another organiser may not do, what an admin may, the calendar,
and poll rules frozen at opening. Every refusal is a problem+json that changed nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import ORGANISER, bearer, login
from tests.gateway.test_app import RULES, StubServices, ok, problem, replied
from urne.contracts.roles import ADMIN
from urne.crypto.keys import IDENTITY_TOKEN_KEY, generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer
from urne.gateway import public
from urne.gateway.app import create_app
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.platform.settings import EmbeddedSettings
from urne.runtime.registry import SERVICES

pytestmark = pytest.mark.unit

OTHER = "bob@urne.example"  # an organiser too, of nothing here at first
UNKNOWN = "0" * 32
STEPS = [{"kind": "proposals", "starts_at": "2030-03-01T09:00:00+01:00",
          "ends_at": "2030-03-10T00:00:00Z"},
         {"kind": "vote", "starts_at": "2030-03-15T00:00:00Z", "ends_at": "2030-03-20T00:00:00Z"}]
APPROVAL = {"method": "approval", "question": "Which?", "max_choices": 1,
            "options": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]}


@pytest.fixture
def settings(tmp_path: Path) -> EmbeddedSettings:
    return EmbeddedSettings(data_dir=tmp_path / "data", environment="test",
                            organiser_emails=f"{ORGANISER},{OTHER}")


@pytest.fixture
def other(client: TestClient, outbox: Path) -> dict[str, str]:
    return login(client, outbox, OTHER)


@pytest.fixture
def admin(client: TestClient, settings: EmbeddedSettings) -> dict[str, str]:
    # Minted with identity's key: the admin's role is what the proposal service reads from
    # the actor; how identity gives the role is tests/unit/test_identity.py's.
    issuer = TokenIssuer(load_signing_key(settings.keys_dir, IDENTITY_TOKEN_KEY))
    return bearer(issuer.access_token("admin-1", ADMIN)[0])


def person_id(client: TestClient, headers: dict[str, str]) -> str:
    return str(client.get("/v1/me", headers=headers).json()["person_id"])


def consultation(client: TestClient, headers: dict[str, str], publish: bool = False) -> str:
    r = client.post("/v1/consultations", headers=headers, json={"title": "Parc"})
    assert r.status_code == 201, r.text
    cid = str(r.json()["id"])
    if publish:
        assert client.post(f"/v1/consultations/{cid}/publish", headers=headers).status_code == 200
    return cid


def poll(client: TestClient, headers: dict[str, str], cid: str, open_it: bool = False) -> str:
    r = client.post(f"/v1/consultations/{cid}/polls", headers=headers, json={"rules": RULES})
    assert r.status_code == 201, r.text
    pid = str(r.json()["id"])
    if open_it:
        assert client.post(f"/v1/polls/{pid}/open", headers=headers).status_code == 200
    return pid


def everything(client: TestClient, admin: dict[str, str]) -> Any:
    """All there is, as an admin sees it: to show that a refusal changed nothing."""
    listing = client.get("/v1/consultations", headers=admin).json()
    return listing, [client.get(f"/v1/consultations/{c['id']}", headers=admin).json()
                     for c in listing["items"]]


def test_a_draft_with_its_calendar_is_seen_by_its_organisers_only(
        client: TestClient, organiser: dict[str, str], other: dict[str, str],
        participant: dict[str, str], admin: dict[str, str]) -> None:
    r = client.post("/v1/consultations", headers=organiser,
                    json={"title": "Parc", "time_zone": "Europe/Paris", "steps": STEPS})
    created = ok(r, 201, public.ConsultationSummaryPublic)
    assert (created["status"], created["time_zone"], created["published_at"]) == (
        "draft", "Europe/Paris", None)
    # In UTC, whatever offset it came with.
    assert created["steps"][0]["starts_at"] == "2030-03-01T08:00:00Z"
    cid = created["id"]
    pid = poll(client, organiser, cid)
    for headers in ({}, participant, other):
        problem(client.get(f"/v1/consultations/{cid}", headers=headers), 404,
                "consultation_not_found")
        problem(client.get(f"/v1/polls/{pid}", headers=headers), 404, "poll_not_found")
        problem(client.get(f"/v1/audit/polls/{pid}/rules", headers=headers), 404,
                "poll_not_found")
        assert client.get("/v1/consultations", headers=headers).json() == {"items": []}
    for headers in (organiser, admin):
        page = ok(client.get(f"/v1/consultations/{cid}", headers=headers), 200,
                  public.ConsultationPublic)
        assert page["organisers"] == [person_id(client, organiser)]
        assert [p["id"] for p in page["polls"]] == [pid]
        assert ok(client.get("/v1/consultations", headers=headers), 200,
                  public.ConsultationsPublic)["items"][0]["id"] == cid
    # Published: everyone sees it; who organises it and its draft poll, still not.
    ok(client.post(f"/v1/consultations/{cid}/publish", headers=organiser), 200,
       public.ConsultationPublic)
    page = ok(client.get(f"/v1/consultations/{cid}"), 200, public.ConsultationPublic)
    assert (page["status"], page["organisers"], page["polls"]) == ("published", None, [])
    problem(client.get(f"/v1/polls/{pid}", headers=other), 404, "poll_not_found")


def test_another_organiser_can_neither_edit_nor_run_its_polls(
        client: TestClient, organiser: dict[str, str], other: dict[str, str],
        admin: dict[str, str]) -> None:
    cid = consultation(client, organiser, publish=True)
    draft_poll = poll(client, organiser, cid)
    open_poll = poll(client, organiser, cid, open_it=True)
    before = everything(client, admin)
    not_theirs = (403, "not_an_organiser_of_this_consultation")
    for method, path, body in (
            ("PATCH", f"/v1/consultations/{cid}", {"title": "Mine now"}),
            ("POST", f"/v1/consultations/{cid}/publish", None),
            ("POST", f"/v1/consultations/{cid}/organisers",
             {"person_id": person_id(client, other)}),
            ("POST", f"/v1/consultations/{cid}/polls", {"rules": RULES}),
            ("POST", f"/v1/polls/{open_poll}/close", None),
            ("PATCH", f"/v1/polls/{open_poll}", {"rules": RULES})):
        problem(client.request(method, path, headers=other, json=body), *not_theirs)
    # A proposal they submit as anyone else does: in the proposals step only (it has none).
    problem(client.post(f"/v1/consultations/{cid}/proposals", headers=other,
                        json={"title": "Mine"}), 409, "proposals_closed")
    # A draft poll is not theirs to see: as if it did not exist.
    problem(client.post(f"/v1/polls/{draft_poll}/open", headers=other), 404, "poll_not_found")
    problem(client.patch(f"/v1/polls/{draft_poll}", headers=other, json={"rules": RULES}),
            404, "poll_not_found")
    assert everything(client, admin) == before


def test_an_admin_adds_an_organiser_who_then_acts(
        client: TestClient, organiser: dict[str, str], other: dict[str, str],
        participant: dict[str, str], admin: dict[str, str]) -> None:
    cid = consultation(client, organiser)
    bob = person_id(client, other)
    before = everything(client, admin)
    problem(client.post(f"/v1/consultations/{cid}/organisers", headers=admin,
                        json={"person_id": UNKNOWN}), 404, "person_not_found")
    problem(client.post(f"/v1/consultations/{cid}/organisers", headers=admin,
                        json={"person_id": person_id(client, participant)}),
            422, "person_not_an_organiser")
    problem(client.post(f"/v1/consultations/{UNKNOWN}/organisers", headers=admin,
                        json={"person_id": bob}), 404, "consultation_not_found")
    assert everything(client, admin) == before
    page = ok(client.post(f"/v1/consultations/{cid}/organisers", headers=admin,
                          json={"person_id": bob}), 200, public.ConsultationPublic)
    assert page["organisers"] == [person_id(client, organiser), bob]
    # Bob now sees the draft and acts on it.
    edited = ok(client.patch(f"/v1/consultations/{cid}", headers=other,
                             json={"description": "By Bob", "steps": STEPS}),
                200, public.ConsultationPublic)
    assert (edited["title"], edited["description"], len(edited["steps"])) == (
        "Parc", "By Bob", 2)
    ok(client.post(f"/v1/consultations/{cid}/publish", headers=other), 200,
       public.ConsultationPublic)
    pid = poll(client, other, cid, open_it=True)
    assert client.get(f"/v1/polls/{pid}").json()["status"] == "open"


def test_rules_change_until_the_poll_opens_and_it_opens_once_published(
        client: TestClient, organiser: dict[str, str]) -> None:
    cid = consultation(client, organiser)
    pid = poll(client, organiser, cid)
    problem(client.patch(f"/v1/polls/{pid}", headers=organiser,
                         json={"rules": {**APPROVAL, "max_choices": 3}}), 422, "invalid_request")
    edited = ok(client.patch(f"/v1/polls/{pid}", headers=organiser, json={"rules": APPROVAL}),
                200, public.PollPublic)
    assert (edited["rules"]["method"], edited["status"]) == ("approval", "draft")
    problem(client.post(f"/v1/polls/{pid}/open", headers=organiser), 409, "consultation_draft")
    client.post(f"/v1/consultations/{cid}/publish", headers=organiser)
    problem(client.post(f"/v1/consultations/{cid}/publish", headers=organiser), 409,
            "consultation_published")
    opened = ok(client.post(f"/v1/polls/{pid}/open", headers=organiser), 200, public.PollPublic)
    problem(client.patch(f"/v1/polls/{pid}", headers=organiser, json={"rules": RULES}),
            409, "poll_rules_frozen")
    assert client.get(f"/v1/polls/{pid}").json() == opened
    frozen = client.get(f"/v1/audit/polls/{pid}/rules").json()
    assert frozen["rules"]["method"] == "approval" and frozen["rules_hash"] == opened["rules_hash"]


def test_rules_take_a_whole_number_written_with_a_fraction_as_that_number(
        client: TestClient, organiser: dict[str, str]) -> None:
    # JSON Schema's "integer" (the API's schema) admits 1.0: the poll's rules, and their
    # hash, are those of 1; 1.5 is refused and changes nothing.
    cid = consultation(client, organiser)
    pid, other = poll(client, organiser, cid), poll(client, organiser, cid)
    plain = ok(client.patch(f"/v1/polls/{pid}", headers=organiser, json={"rules": APPROVAL}),
               200, public.PollPublic)
    written = ok(client.patch(f"/v1/polls/{other}", headers=organiser,
                              json={"rules": {**APPROVAL, "max_choices": 1.0}}),
                 200, public.PollPublic)
    assert written["rules"] == plain["rules"] and written["rules"]["max_choices"] == 1
    problem(client.patch(f"/v1/polls/{other}", headers=organiser,
                         json={"rules": {**APPROVAL, "max_choices": 1.5}}), 422, "invalid_request")
    assert client.get(f"/v1/polls/{other}", headers=organiser).json() == written
    client.post(f"/v1/consultations/{cid}/publish", headers=organiser)
    hashes = {ok(client.post(f"/v1/polls/{p}/open", headers=organiser), 200,
                 public.PollPublic)["rules_hash"] for p in (pid, other)}
    assert len(hashes) == 1 and None not in hashes


BAD_STEP = {"kind": "vote", "starts_at": "2030-03-02T00:00:00Z",
            "ends_at": "2030-03-01T00:00:00Z"}


@pytest.mark.parametrize(("body", "loc"), [
    ({"time_zone": "Europe/Nowhere"}, ["body", "time_zone"]),
    ({"time_zone": "localtime"}, ["body", "time_zone"]),
    ({"steps": [BAD_STEP]}, ["body", "steps", "0"]),
    ({"steps": [{**BAD_STEP, "starts_at": "2030-03-01T00:00:00"}]},
     ["body", "steps", "0", "starts_at"]),
    ({"steps": [*STEPS, STEPS[0]]}, ["body", "steps"]),
    ({"steps": [{**STEPS[0], "kind": "ballot"}]}, ["body", "steps", "0", "kind"]),
    ({"status": "published"}, ["body", "status"]),  # publishing has its own route
    ({"organisers": []}, ["body", "organisers"]),
], ids=["zone", "localtime", "backwards", "naive", "out-of-order", "kind", "status",
        "organisers"])
def test_a_bad_edit_is_422_and_changes_nothing(
        client: TestClient, organiser: dict[str, str], body: dict[str, Any],
        loc: list[str]) -> None:
    cid = consultation(client, organiser)
    before = client.get(f"/v1/consultations/{cid}", headers=organiser).json()
    for method, path in (("PATCH", f"/v1/consultations/{cid}"), ("POST", "/v1/consultations")):
        sent = body if method == "PATCH" else {"title": "New", **body}
        errors = problem(client.request(method, path, headers=organiser, json=sent), 422,
                         "invalid_request")["errors"]
        assert errors[0]["loc"][: len(loc)] == loc, errors
    assert client.get(f"/v1/consultations/{cid}", headers=organiser).json() == before
    assert len(client.get("/v1/consultations", headers=organiser).json()["items"]) == 1


# --- what the gateway sends: the actor, from the token only ----------------------------------


@pytest.fixture
def stub_keys(tmp_path: Path) -> Path:
    generate_keys(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def sent(stub_keys: Path) -> Iterator[tuple[TestClient, list[RawEnvelope]]]:
    """A gateway over a stub that answers every proposal message with ``{}``."""
    envelopes: list[RawEnvelope] = []

    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        envelopes.append(envelope)
        if envelope["type"] == "person.get.v1":
            return replied({"person_id": "p", "email": "e@example.org", "role": "organiser",
                            "district": None, "district_verified": False})
        return {"ok": False, "error": {"status": 404, "code": "consultation_not_found",
                                       "detail": "stub"}}

    with ExitStack() as stack:
        app = create_app(StubServices(answer), stub_keys, services=tuple(SERVICES))
        yield stack.enter_context(TestClient(app)), envelopes


def token(keys: Path, person: str, role: str) -> dict[str, str]:
    return bearer(TokenIssuer(load_signing_key(keys, IDENTITY_TOKEN_KEY)).access_token(
        person, role)[0])


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/v1/consultations", None),
    ("GET", "/v1/consultations/c1", None),
    ("GET", "/v1/polls/p1", None),
    ("PATCH", "/v1/consultations/c1", {}),
    ("POST", "/v1/consultations/c1/publish", None),
    ("POST", "/v1/consultations/c1/organisers", {"person_id": "p"}),
    ("POST", "/v1/consultations/c1/proposals", {"title": "t"}),
    ("POST", "/v1/consultations/c1/polls", {"rules": RULES}),
    ("PATCH", "/v1/polls/p1", {"rules": RULES}),
    ("POST", "/v1/polls/p1/open", None),
    ("POST", "/v1/polls/p1/close", None),
])
def test_every_proposal_message_carries_the_tokens_actor(
        sent: tuple[TestClient, list[RawEnvelope]], stub_keys: Path, method: str, path: str,
        body: dict[str, Any] | None) -> None:
    client, envelopes = sent
    client.request(method, path, headers=token(stub_keys, "ada", "organiser"), json=body)
    [message] = [e for e in envelopes if e["type"] != "person.get.v1"]
    assert message["payload"]["actor"] == {"person_id": "ada", "role": "organiser"}


@pytest.mark.parametrize("path", ["/v1/consultations", "/v1/consultations/c1", "/v1/polls/p1"])
def test_public_reads_are_anonymous_without_a_token_and_refused_with_a_bad_one(
        sent: tuple[TestClient, list[RawEnvelope]], path: str) -> None:
    client, envelopes = sent
    client.get(path)
    assert envelopes[-1]["payload"]["actor"] is None
    problem(client.get(path, headers=bearer("not.a.token")), 401, "invalid_token")
    assert len(envelopes) == 1  # a refused token is not read as "anonymous"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PATCH", "/v1/consultations/c1", {}),
    ("POST", "/v1/consultations/c1/publish", None),
    ("POST", "/v1/consultations/c1/organisers", {"person_id": "p"}),
    ("PATCH", "/v1/polls/p1", {"rules": RULES}),
])
def test_a_participant_is_refused_before_any_service_is_asked(
        sent: tuple[TestClient, list[RawEnvelope]], stub_keys: Path, method: str, path: str,
        body: dict[str, Any] | None) -> None:
    client, envelopes = sent
    problem(client.request(method, path, headers=token(stub_keys, "pat", "participant"),
                           json=body), 403, "forbidden")
    problem(client.request(method, path, json=body), 401, "missing_token")
    assert envelopes == []


def test_public_reads_declare_their_token_optional(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/consultations", "/v1/consultations/{consultation_id}",
                 "/v1/polls/{poll_id}"):
        assert paths[path]["get"]["security"] == [{"HTTPBearer": []}, {}], path
    assert paths["/v1/consultations/{consultation_id}"]["patch"]["security"] == [
        {"HTTPBearer": []}]
