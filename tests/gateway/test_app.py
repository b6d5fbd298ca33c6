"""What the gateway itself decides, in-process (TestClient over the embedded profile):
status codes, problem+json with stable codes, the public response shapes, authentication
at the edge, request ids, probes and the OpenAPI document.

The whole slice through a real process is the e2e suite's (tests/e2e/scenario.py).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import BaseModel, TypeAdapter

from tests.e2e.scenario import ORGANISER, PROBLEM, bearer, login, read_code
from urne.contracts import commands
from urne.contracts.fields import Description, Id, LoginCodeText, ProposalBody, Title, Tracker
from urne.counting.rules import YesNoAbstainRules, rules_adapter, rules_hash
from urne.crypto.keys import IDENTITY_TOKEN_KEY, generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer
from urne.gateway import public
from urne.gateway.ballots import OPENING_PAUSES
from urne.gateway.clients import ServiceUnavailable
from urne.gateway.problems import PROBLEM_RESPONSES
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.platform.settings import EmbeddedSettings
from urne.runtime.embedded import build_app
from urne.runtime.registry import SERVICES

pytestmark = pytest.mark.unit

RULES = {"method": "yes_no_abstain", "question": "Faut-il planter 200 arbres ?"}
UNKNOWN = "0" * 32
YES = {"method": "yes_no_abstain", "answer": "yes"}
NO = {"method": "yes_no_abstain", "answer": "no"}


def max_length(field: Any) -> int:
    """The limit a field type of urne.contracts.fields declares."""
    return int(TypeAdapter(field).json_schema()["maxLength"])


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert that ``r`` is the problem ``code`` with ``status``; returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == code, body
    assert body["type"] == f"urn:urne:problem:{code}" and body["status"] == status, body
    assert body["title"] and body["detail"], body
    assert body["instance"] == r.request.url.path
    return body


def _public_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, public.Public):
            return candidate
    return None


def assert_shape(data: Any, model: type[BaseModel]) -> None:
    """``data`` carries exactly the fields of ``model``, and so on down its nested models
    (a ``sparse`` model: its required fields, and of the others only those it has)."""
    if getattr(model, "sparse", False):
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        assert required <= set(data) <= set(model.model_fields), (model.__name__, sorted(data))
        assert None not in data.values(), (model.__name__, data)
    else:
        assert set(data) == set(model.model_fields), (model.__name__, sorted(data))
    for name, field in model.model_fields.items():
        nested = _public_model(field.annotation)
        if nested is not None:
            for item in data[name] if isinstance(data[name], list) else [data[name]]:
                if item is not None:  # an optional nested model, absent
                    assert_shape(item, nested)


def ok(r: httpx.Response, status: int, model: type[BaseModel]) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert_shape(r.json(), model)
    return r.json()


def create_poll(client: TestClient, organiser: dict[str, str]) -> str:
    """A draft poll in a new, published consultation (so the poll may open); returns its id."""
    cid = client.post("/v1/consultations", headers=organiser, json={"title": "Parc"}).json()["id"]
    assert client.post(f"/v1/consultations/{cid}/publish", headers=organiser).status_code == 200
    r = client.post(f"/v1/consultations/{cid}/polls", headers=organiser, json={"rules": RULES})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# --- the happy path -------------------------------------------------------------------------


def test_happy_path_answers_documented_statuses_and_exactly_the_public_fields(
        client: TestClient, outbox: Path) -> None:
    ok(client.post("/v1/auth/codes", json={"email": ORGANISER}), 202, public.LoginCodeSentPublic)
    token = ok(client.post("/v1/auth/tokens",
                           json={"email": ORGANISER, "code": read_code(outbox, ORGANISER)}),
               200, public.AccessTokenPublic)
    assert (token["role"], token["token_type"]) == ("organiser", "Bearer")
    org = bearer(token["access_token"])

    cid = ok(client.post("/v1/consultations", headers=org,
                         json={"title": "Parc des Gayeulles", "description": "Que planter ?"}),
             201, public.ConsultationSummaryPublic)["id"]
    proposal = ok(client.post(f"/v1/consultations/{cid}/proposals", headers=org,
                              json={"title": "200 arbres", "body": "Allée nord."}),
                  201, public.ProposalPublic)
    poll = ok(client.post(f"/v1/consultations/{cid}/polls", headers=org,
                          json={"proposal_id": proposal["id"], "rules": RULES}),
              201, public.PollPublic)
    assert (poll["status"], poll["rules_hash"]) == ("draft", None)
    pid = poll["id"]
    edited = ok(client.patch(f"/v1/polls/{pid}", headers=org, json={"rules": RULES}),
                200, public.PollPublic)
    assert edited == poll
    ok(client.patch(f"/v1/consultations/{cid}", headers=org, json={"time_zone": "Europe/Paris"}),
       200, public.ConsultationPublic)
    # A draft: its organisers only see it.
    assert client.get("/v1/consultations").json() == {"items": []}
    published = ok(client.post(f"/v1/consultations/{cid}/publish", headers=org),
                   200, public.ConsultationPublic)
    assert (published["status"], published["time_zone"]) == ("published", "Europe/Paris")
    # The service's listing carries each consultation's proposals and polls; the API's does not.
    listing = ok(client.get("/v1/consultations"), 200, public.ConsultationsPublic)
    assert [c["id"] for c in listing["items"]] == [cid]
    page = ok(client.get(f"/v1/consultations/{cid}", headers=org), 200, public.ConsultationPublic)
    assert ([p["id"] for p in page["proposals"]], [p["id"] for p in page["polls"]]) == \
        ([proposal["id"]], [pid])
    assert page["organisers"] == [token["person_id"]]

    opened = ok(client.post(f"/v1/polls/{pid}/open", headers=org), 200, public.PollPublic)
    assert opened["status"] == "open"
    assert opened["rules_hash"] == rules_hash(rules_adapter.validate_python(RULES))
    assert ok(client.get(f"/v1/polls/{pid}"), 200, public.PollPublic) == opened

    voter = login(client, outbox, "alice@example.org")
    ticket = ok(client.post(f"/v1/polls/{pid}/voting-token", headers=voter),
                201, public.VotingTokenPublic)
    vote = bearer(ticket["voting_token"])
    first = ok(client.post(f"/v1/polls/{pid}/ballots", headers=vote,
                           json={"choice": NO}), 201, public.ReceiptPublic)
    revote = ok(client.post(f"/v1/polls/{pid}/ballots", headers=vote,
                            json={"choice": YES}), 201, public.ReceiptPublic)
    assert (first["sequence"], first["replaces_previous"]) == (1, False)
    assert (revote["sequence"], revote["replaces_previous"]) == (2, True)
    problem(client.get(f"/v1/polls/{pid}/results"), 409, "result_not_published")

    closed = ok(client.post(f"/v1/polls/{pid}/close", headers=org), 200, public.PollPublic)
    assert closed["status"] == "closed"
    result = ok(client.get(f"/v1/polls/{pid}/results"), 200, public.ResultPublic)
    assert result["tally"]["counts"] == {"yes": 1, "no": 0, "abstain": 0}
    assert result["ballots_counted"] == 1

    keys = ok(client.get("/v1/audit/keys"), 200, public.PublicKeysPublic)
    assert {k["name"] for k in keys["keys"]} == {"tally-result", "identity-token"}
    assert all(k["kty"] == "OKP" and k["status"] == "current" for k in keys["keys"])
    rules = ok(client.get(f"/v1/audit/polls/{pid}/rules"), 200, public.FrozenRulesPublic)
    assert rules["rules_hash"] == opened["rules_hash"]
    signed = ok(client.get(f"/v1/audit/polls/{pid}/result"), 200, public.SignedResultPublic)
    assert signed["result"]["record"]["root"] == result["record_root"]
    record = ok(client.get(f"/v1/audit/polls/{pid}/record"), 200, public.BallotRecordPublic)
    # Both ballots are in the log; the first is replaced by the revote.
    entries = {e["tracker"]: e for e in record["entries"]}
    assert set(entries) == {first["tracker"], revote["tracker"]}
    assert entries[revote["tracker"]]["supersedes"] == first["tracker"]
    assert "supersedes" not in entries[first["tracker"]]
    for tracker in entries:
        proof = ok(client.get(f"/v1/audit/polls/{pid}/trackers/{tracker}"),
                   200, public.InclusionProofPublic)
        assert (proof["index"], proof["size"], proof["root"]) == (
            entries[tracker]["height"], 2, record["root"])
    problem(client.get(f"/v1/audit/polls/{pid}/trackers/AAAA-AAAA-AAAA"),
            404, "tracker_not_found")


# --- a stub ServiceClient: the unit under test is the gateway, not a service ----------------

Answer = Callable[[str, RawEnvelope], RawReply]
CONSULTATION = {"id": "c1", "title": "Parc", "description": "", "status": "published",
                "time_zone": "UTC", "steps": [], "current_step": None,
                "created_at": "2026-01-01T00:00:00Z", "published_at": "2026-01-01T00:00:00Z"}
POLL = {"id": "p1", "consultation_id": "c1", "proposal_id": None, "rules": RULES,
        "status": "draft", "rules_hash": None, "opened_at": None, "closed_at": None,
        "published_at": None, "results_visibility": "after_close", "electorate": "open",
        "cross_channel": "latest_wins",
        "result_signed_at": None, "opens_at": None, "closes_at": None, "amendments": []}


def replied(data: dict[str, Any]) -> RawReply:
    return {"ok": True, "data": data}


class StubServices:
    """A ``ServiceClient`` whose replies come from ``answer``, which may also raise."""

    def __init__(self, answer: Answer):
        self.answer = answer
        self.broker_connected: bool | None = True

    async def call(self, service: str, envelope: RawEnvelope) -> RawReply:
        return self.answer(service, envelope)

    async def cast(self, envelope: RawEnvelope, voter_key: str) -> RawReply:
        return self.answer(f"ballots:{voter_key}", envelope)

    async def close(self) -> None:
        pass


@pytest.fixture
def stub_organiser(keys_dir: Path) -> dict[str, str]:
    token, _ = TokenIssuer(load_signing_key(keys_dir, IDENTITY_TOKEN_KEY)).access_token(
        "person-1", "organiser")
    return bearer(token)


def test_fields_a_service_adds_to_its_reply_do_not_leak(
        stubbed: Callable[[Answer], TestClient]) -> None:
    extra = {"code": "123456", "created_by": "person-1", "voters": ["pseudonym-1"]}

    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        return {
            commands.RequestLoginCode.TYPE: replied({"channel": "email", "expires_in": 600,
                                                     **extra}),
            commands.GetPoll.TYPE: replied({**POLL, **extra}),
            commands.ListConsultations.TYPE: replied({"items": [{**CONSULTATION, **extra}],
                                                      **extra}),
        }[envelope["type"]]

    client = stubbed(answer)
    r = client.post("/v1/auth/codes", json={"email": "alice@example.org"})
    assert (r.status_code, r.json()) == (202, {"channel": "email", "expires_in": 600})
    assert client.get("/v1/polls/p1").json() == POLL
    assert client.get("/v1/consultations").json() == {"items": [CONSULTATION]}


@pytest.mark.parametrize(("error", "status", "code"), [
    ({"status": 409, "code": "poll_closed", "detail": "poll p1 is closed"}, 409, "poll_closed"),
    ({"status": 429, "code": "code_rate_limited", "detail": "later"}, 429, "code_rate_limited"),
    # An error without its status and code is a bug somewhere: a 500, never a success.
    ({"detail": "no status, no code"}, 500, "internal_error"),
])
def test_a_service_error_reply_becomes_its_problem(
        stubbed: Callable[[Answer], TestClient], error: dict[str, Any], status: int,
        code: str) -> None:
    client = stubbed(lambda service, envelope: {"ok": False, "error": error})
    assert problem(client.get("/v1/polls/p1"), status, code)["detail"] == error["detail"]


def test_a_401_from_a_service_asks_for_a_bearer_token(
        stubbed: Callable[[Answer], TestClient]) -> None:
    error = {"status": 401, "code": "code_invalid", "detail": "wrong code"}
    client = stubbed(lambda service, envelope: {"ok": False, "error": error})
    r = client.post("/v1/auth/tokens", json={"email": "alice@example.org", "code": "123456"})
    assert problem(r, 401, "code_invalid")["detail"] == "wrong code"
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("retry_after", "header"), [
    (1800, "1800"),
    (None, None),  # no wait given: no header on a 429
    ("soon", None), (0, None),  # not a positive whole number: ignored, never echoed
])
def test_a_limit_from_a_service_says_when_to_retry(
        stubbed: Callable[[Answer], TestClient], retry_after: Any, header: str | None) -> None:
    error = {"status": 429, "code": "code_rate_limited", "detail": "later",
             "retry_after": retry_after}
    asked: list[RawEnvelope] = []

    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        asked.append(envelope)
        return {"ok": False, "error": error}

    r = stubbed(answer).post("/v1/auth/codes", json={"email": "alice@example.org"})
    assert problem(r, 429, "code_rate_limited")["detail"] == "later"
    assert r.headers.get("retry-after") == header
    # The client's address goes to identity for its per-client limits: the test
    # client's is not an IP address, which identity counts as an unknown client.
    assert asked[0]["payload"]["client"] == "testclient"


@pytest.mark.parametrize(("as_organiser", "path", "kwargs", "status", "code"), [
    (False, "/v1/polls/p1/ballots", {"json": {"choice": YES}}, 401,
     "missing_token"),
    (True, "/v1/consultations", {"json": {"title": "t" * (max_length(Title) + 1)}}, 422,
     "invalid_request"),
    (True, "/v1/consultations", {"content": b'{"title": '}, 400, "malformed_json"),
    (True, f"/v1/polls/{'p' * (max_length(Id) + 1)}/open", {}, 422, "invalid_request"),
], ids=["no-voting-token", "title", "malformed", "id"])
def test_bad_requests_are_refused_before_any_service_is_asked(
        stubbed: Callable[[Answer], TestClient], stub_organiser: dict[str, str],
        as_organiser: bool, path: str, kwargs: dict[str, Any], status: int, code: str) -> None:
    asked: list[str] = []

    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        asked.append(envelope["type"])
        return replied({})

    headers = {"content-type": "application/json", **(stub_organiser if as_organiser else {})}
    problem(stubbed(answer).post(path, headers=headers, **kwargs), status, code)
    assert asked == []


def test_a_service_that_does_not_answer_is_a_503_naming_it(
        stubbed: Callable[[Answer], TestClient], stub_organiser: dict[str, str]) -> None:
    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        raise ServiceUnavailable(f"{service}: no reply within 10 s")

    client = stubbed(answer)
    r = client.post("/v1/consultations", headers=stub_organiser, json={"title": "x"})
    body = problem(r, 503, "service_unavailable")
    assert "proposal" in body["detail"]
    assert r.headers["retry-after"] == "1"  # when to try again


def test_readyz_is_503_not_ready_naming_the_services_that_are_not(
        stubbed: Callable[[Answer], TestClient]) -> None:
    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        if service == "vote":
            raise ServiceUnavailable("vote: no reply")
        ready = service != "tally"
        return replied({"service": service, "ready": ready,
                        "detail": "" if ready else "store unreachable"})

    refused = {"status": "503", "code": "not_ready"}
    before = REGISTRY.get_sample_value("urne_http_problems_total", refused) or 0.0
    body = problem(stubbed(answer).get("/readyz"), 503, "not_ready")
    # Counted by status and code, for the dashboard's "rejections by code".
    assert REGISTRY.get_sample_value("urne_http_problems_total", refused) == before + 1
    assert body["services"] == {
        "identity": {"ready": True, "detail": ""},
        "proposal": {"ready": True, "detail": ""},
        # No answer through a connected broker: the service is what is missing.
        "vote": {"ready": False, "missing": "service", "detail": "ServiceUnavailable"},
        "tally": {"ready": False, "missing": "store", "detail": "store unreachable"},
    }
    # And the same, per service, for Prometheus's "service not ready" alert.
    ready = {s: REGISTRY.get_sample_value("urne_service_ready", {"service": s})
             for s in ("identity", "proposal", "vote", "tally")}
    assert ready == {"identity": 1.0, "proposal": 1.0, "vote": 0.0, "tally": 0.0}


def test_readyz_names_the_service_when_it_answers_with_an_error(
        stubbed: Callable[[Answer], TestClient]) -> None:
    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        if service == "proposal":
            return {"ok": False, "error": {"code": "internal_error", "status": 500,
                                           "detail": "the proposal service failed"}}
        return replied({"service": service, "ready": True, "detail": ""})

    body = problem(stubbed(answer).get("/readyz"), 503, "not_ready")
    assert body["services"]["proposal"] == {"ready": False, "missing": "service",
                                            "detail": "internal_error"}
    assert body["services"]["vote"] == {"ready": True, "detail": ""}


def test_readyz_names_the_broker_when_the_gateway_has_no_connection_to_it(
        stubbed: Callable[[Answer], TestClient]) -> None:
    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        raise ServiceUnavailable("not connected to the broker")

    client = stubbed(answer)
    client.app.state.urne.client.broker_connected = False  # type: ignore[attr-defined]
    body = problem(client.get("/readyz"), 503, "not_ready")
    assert {s: r["missing"] for s, r in body["services"].items()} == {
        "identity": "broker", "proposal": "broker", "vote": "broker", "tally": "broker"}


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b'{"email": ', b"\xa4c\x01\x8b"], ids=["truncated", "latin"])
def test_a_body_that_is_not_json_is_400_malformed_json(
        client: TestClient, outbox: Path, content: bytes) -> None:
    # Bytes that are not even UTF-8 used to come back as an undocumented "http_400".
    r = client.post("/v1/auth/codes", content=content, headers={"content-type": "application/json"})
    problem(r, 400, "malformed_json")
    assert not outbox.exists()  # no code was sent


def test_unknown_body_fields_are_refused_and_nothing_is_sent(
        client: TestClient, outbox: Path) -> None:
    r = client.post("/v1/auth/codes", json={"email": "alice@example.org", "send_to": "eve"})
    assert problem(r, 422, "invalid_request")["errors"][0]["loc"] == ["body", "send_to"]
    assert not outbox.exists()


@pytest.mark.parametrize(("route", "body"), [
    ("/v1/auth/codes", {}),
    ("/v1/auth/codes", {"email": "alice@example.org", "phone": "+33612345678"}),
    ("/v1/auth/codes", {"email": None, "phone": "+33612345678"}),  # null is not "absent"
    ("/v1/auth/codes", {"email": None}),
    ("/v1/auth/tokens", {"email": "alice@example.org"}),
    ("/v1/auth/tokens", {"code": "123456"}),
    ("/v1/auth/tokens", {"desk_code": "7KQ2-M9XD-4RTB-H0WE", "code": "123456"}),
    ("/v1/auth/tokens", {"desk_code": "7KQ2-M9XD-4RTB-H0WE", "phone": "+33612345678"}),
    ("/v1/auth/tokens", {"phone": "+33612345678", "code": "123456", "email": None}),
])
def test_a_sign_in_body_is_one_way_exactly_and_its_schema_says_the_same(
        client: TestClient, outbox: Path, route: str, body: dict) -> None:
    assert problem(client.post(route, json=body), 422, "invalid_request")["errors"]
    assert not outbox.exists()
    # The OpenAPI document refuses the same bodies: exactly one of its ways matches none
    # of them (each way names its fields and excludes the others').
    name = "CodeRequest" if route.endswith("codes") else "CodeVerify"
    schema = client.get("/openapi.json").json()["components"]["schemas"][name]
    given = {k for k, v in body.items() if v is not None}
    matching = [way for way in schema["oneOf"]
                if set(way["required"]) <= set(body)
                and not any(set(n["required"]) <= set(body) for n in way["not"]["anyOf"])]
    assert matching == [] or given != set(body)  # a null breaks the type where it matches


@pytest.mark.parametrize("email", ["alice@example.test", "bob@mail.invalid", "eve@printer.local"])
def test_sign_in_refuses_addresses_no_code_could_reach(
        client: TestClient, outbox: Path, email: str) -> None:
    # Deliberate (docs/api.md, "Fuzzing"): special-use domains (RFC 6761) never receive mail.
    for route, body in (("/v1/auth/codes", {"email": email}),
                        ("/v1/auth/tokens", {"email": email, "code": "123456"})):
        assert problem(client.post(route, json=body), 422, "invalid_request")["errors"][0][
            "loc"] == ["body", "email"]
    assert not outbox.exists()


QUESTION = YesNoAbstainRules.model_json_schema()["properties"]["question"]["maxLength"]
REFUSED = [
    ("/v1/consultations", {"title": "t" * (max_length(Title) + 1)}, ["body", "title"]),
    ("/v1/consultations", {"title": "t", "description": "d" * (max_length(Description) + 1)},
     ["body", "description"]),
    ("/v1/consultations", {"title": "t", "owner": "me"}, ["body", "owner"]),
    (f"/v1/consultations/{UNKNOWN}/proposals", {"title": "t",
                                                "body": "b" * (max_length(ProposalBody) + 1)},
     ["body", "body"]),
    (f"/v1/consultations/{UNKNOWN}/polls", {"rules": {**RULES, "question": "q" * (QUESTION + 1)}},
     ["body", "rules", "yes_no_abstain", "question"]),
    (f"/v1/consultations/{'c' * (max_length(Id) + 1)}/polls", {"rules": RULES},
     ["path", "consultation_id"]),
]


@pytest.mark.parametrize(("path", "body", "loc"), REFUSED,
                         ids=["title", "description", "unknown", "proposal", "question", "id"])
def test_bad_organiser_input_is_422_and_creates_nothing(
        client: TestClient, organiser: dict[str, str], path: str, body: dict[str, Any],
        loc: list[str]) -> None:
    # Refused at the edge: where the consultation does not even exist, this is still a 422.
    assert problem(client.post(path, headers=organiser, json=body), 422,
                   "invalid_request")["errors"][0]["loc"] == loc
    assert client.get("/v1/consultations", headers=organiser).json() == {"items": []}


def test_fields_at_their_limits_are_accepted(client: TestClient, organiser: dict[str, str]) -> None:
    body = {"title": "t" * max_length(Title), "description": "d" * max_length(Description)}
    r = client.post("/v1/consultations", headers=organiser, json=body)
    assert r.status_code == 201 and r.json()["title"] == body["title"], r.text


@pytest.mark.parametrize(("method", "path", "kwargs", "loc"), [
    ("POST", "/v1/auth/tokens",
     {"json": {"email": ORGANISER, "code": "1" * (max_length(LoginCodeText) + 1)}},
     ["body", "code"]),
    ("GET", f"/v1/polls/{'p' * (max_length(Id) + 1)}", {}, ["path", "poll_id"]),
    ("GET", f"/v1/audit/polls/{UNKNOWN}/trackers/{'t' * (max_length(Tracker) + 1)}", {},
     ["path", "tracker"]),
    ("GET", "/v1/consultations", {"params": {"limit": 501}}, ["query", "limit"]),
    ("GET", "/v1/consultations", {"params": {"limit": "lots"}}, ["query", "limit"]),
], ids=["code", "poll-id", "tracker", "limit-high", "limit-text"])
def test_bad_public_input_is_422(
        client: TestClient, method: str, path: str, kwargs: dict[str, Any],
        loc: list[str]) -> None:
    r = client.request(method, path, **kwargs)
    assert problem(r, 422, "invalid_request")["errors"][0]["loc"] == loc


def forged_token(tmp_path: Path) -> str:
    """An access token for an organiser, signed with a key the gateway does not trust."""
    generate_keys(tmp_path / "foreign")
    issuer = TokenIssuer(load_signing_key(tmp_path / "foreign", IDENTITY_TOKEN_KEY))
    return issuer.access_token("person-1", "organiser")[0]


@pytest.mark.parametrize(("authorization", "code"), [
    (None, "missing_token"),
    ("Bearer", "missing_token"),
    ("Basic b3JnYW5pc2VyOnNlY3JldA==", "missing_token"),
    ("Bearer not.a.jwt", "invalid_token"),
    ("forged", "invalid_token"),
], ids=["none", "empty", "basic", "garbage", "forged"])
def test_a_missing_or_invalid_bearer_token_is_401(
        client: TestClient, tmp_path: Path, authorization: str | None, code: str) -> None:
    if authorization == "forged":
        authorization = f"Bearer {forged_token(tmp_path)}"
    headers = {"Authorization": authorization} if authorization else {}
    r = client.post("/v1/consultations", headers=headers, json={"title": "x"})
    problem(r, 401, code)
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/consultations").json() == {"items": []}


def test_a_voting_token_is_not_an_access_token(
        client: TestClient, organiser: dict[str, str], participant: dict[str, str]) -> None:
    pid = create_poll(client, organiser)
    assert client.post(f"/v1/polls/{pid}/open", headers=organiser).status_code == 200
    ticket = client.post(f"/v1/polls/{pid}/voting-token", headers=participant).json()
    problem(client.post(f"/v1/polls/{pid}/close", headers=bearer(ticket["voting_token"])),
            401, "invalid_token")
    assert client.get(f"/v1/polls/{pid}").json()["status"] == "open"


def test_a_participant_on_an_organiser_route_is_403_and_changes_nothing(
        client: TestClient, organiser: dict[str, str], participant: dict[str, str]) -> None:
    pid = create_poll(client, organiser)
    before = client.get("/v1/consultations", headers=organiser).json()
    problem(client.post("/v1/consultations", headers=participant, json={"title": "x"}),
            403, "forbidden")
    problem(client.post(f"/v1/polls/{pid}/open", headers=participant), 403, "forbidden")
    assert client.get("/v1/consultations", headers=organiser).json() == before
    assert client.get(f"/v1/polls/{pid}", headers=organiser).json()["status"] == "draft"


@pytest.mark.parametrize("path", ["/v1/nowhere", "/v2/polls", "/nowhere"])
def test_an_unknown_route_is_404_route_not_found(client: TestClient, path: str) -> None:
    assert problem(client.get(path), 404, "route_not_found")["detail"] == f"no route GET {path}"


@pytest.mark.parametrize(("method", "path", "allow"), [
    # Two routes serve this path; Starlette alone would name the methods of one of them.
    ("OPTIONS", "/v1/consultations", "GET, POST"),
    ("DELETE", f"/v1/consultations/{UNKNOWN}", "GET, PATCH"),
    ("PUT", "/v1/auth/codes", "POST"),
    ("GET", f"/v1/polls/{UNKNOWN}/ballots", "POST"),
    ("POST", "/healthz", "GET"),
])
def test_a_wrong_method_is_405_with_every_method_of_the_path(
        client: TestClient, method: str, path: str, allow: str) -> None:
    r = client.request(method, path)
    problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow


# --- request ids ------------------------------------------------------------------------------


def test_a_valid_request_id_is_echoed_even_on_errors(client: TestClient) -> None:
    for path in ("/healthz", "/v1/nowhere"):
        assert client.get(path, headers={"X-Request-ID": "req-42"}).headers["x-request-id"] \
            == "req-42"


@pytest.mark.parametrize("incoming", [None, "", "r" * 65, "tab\there"],
                         ids=["absent", "empty", "too-long", "control-character"])
def test_a_missing_or_invalid_request_id_is_replaced(
        client: TestClient, incoming: str | None) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    given = client.get("/healthz", headers=headers).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", given), given


# --- probes, metrics and the OpenAPI document ----------------------------------------------


def test_healthz_and_readyz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready",
                        "services": {s: {"ready": True, "detail": ""} for s in SERVICES}}


def test_metrics_count_requests_by_route_template_not_by_id(client: TestClient) -> None:
    client.get(f"/v1/polls/{UNKNOWN}")
    client.get("/v1/nowhere")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    # Label values stay bounded: templates, never the ids a client sent.
    assert 'urne_http_requests_total{method="GET",route="/v1/polls/{poll_id}",status="404"}' \
        in r.text
    assert 'route="unmatched",status="404"' in r.text
    assert UNKNOWN not in r.text and "nowhere" not in r.text


def test_metrics_leave_the_api_port_outside_development(settings: EmbeddedSettings) -> None:
    """Ballot and request counters tell live turnout, embargo or not: in production
    they are served on URNE_METRICS_PORT only, for the operator's Prometheus."""
    production = settings.model_copy(update={"environment": "production",
                                             "pseudonym_secret": "p" * 40,
                                             "code_secret": "c" * 40})
    assert (settings.api_metrics, production.api_metrics) == (True, False)
    assert production.model_copy(update={"metrics_on_api": True}).api_metrics
    generate_keys(production.keys_dir)  # production brings its own
    with TestClient(build_app(production)) as prod:
        problem(prod.get("/metrics"), 404, "route_not_found")
        assert prod.get("/healthz").status_code == 200


def test_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert all(p.startswith("/v1/") or p in ("/healthz", "/readyz") for p in spec["paths"])
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    # Stable ids "<tag>-<function>", so generated clients keep their method names.
    routes = [rc.original_route for rc in iter_route_contexts(client.app.routes)]
    assert sorted(op["operationId"] for op in operations) == sorted(
        f"{r.tags[0]}-{r.name}" for r in routes if isinstance(r, APIRoute) and r.include_in_schema)
    assert all(op["operationId"].startswith(f"{op['tags'][0]}-") for op in operations)
    problem_content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for op in operations:
        assert set(PROBLEM_RESPONSES) <= {int(s) for s in op["responses"]}, op["operationId"]
        for status, response in op["responses"].items():
            if int(status) >= 400:  # no FastAPI default left: every error is problem+json
                assert response["content"] == problem_content, (op["operationId"], status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(spec["components"]["schemas"]["Problem"]["required"]) >= \
        {"type", "title", "status", "code", "detail"}


# --- the ballot path: what the gateway decides before a ballot joins its shard --------

OPEN_POLL = {**POLL, "status": "open", "rules_hash": rules_hash(rules_adapter.validate_python(
    RULES)), "opened_at": "2026-01-01T00:00:00Z"}
RECEIPT = {"poll_id": "p1", "ballot_id": "b" * 32, "tracker": "AAAA-BBBB-CCCC", "sequence": 1,
           "replaces_previous": False, "recorded_at": "2026-01-01T00:00:00Z"}


class Intake:
    """Answers poll.get with ``poll`` and ballots with ``reply``; keeps what it was sent."""

    def __init__(self, poll: dict[str, Any], reply: RawReply | None = None):
        self.poll, self.reply = poll, reply or replied(RECEIPT)
        self.gets: list[str] = []
        self.cast: list[tuple[str, RawEnvelope]] = []

    def __call__(self, service: str, envelope: RawEnvelope) -> RawReply:
        if service.startswith("ballots:"):
            self.cast.append((service.removeprefix("ballots:"), envelope))
            return self.reply
        assert envelope["type"] == "poll.get.v1", envelope
        self.gets.append(envelope["payload"]["poll_id"])
        return replied(self.poll)


def voting(keys_dir: Path, poll_id: str = "p1", voter_key: str = "ab" * 32) -> dict[str, str]:
    issuer = TokenIssuer(load_signing_key(keys_dir, IDENTITY_TOKEN_KEY))
    return bearer(issuer.voting_token(voter_key, poll_id)[0])


def test_a_ballot_is_named_checked_and_routed_by_its_voter_key(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path) -> None:
    intake = Intake(OPEN_POLL)
    client = stubbed(intake)
    r = client.post("/v1/polls/p1/ballots", headers={**voting(keys_dir), "Idempotency-Key": "k-1"},
                    json={"choice": YES})
    assert (r.status_code, r.json()) == (201, RECEIPT)
    [(voter_key, envelope)] = intake.cast
    assert voter_key == "ab" * 32  # the shard is chosen by the voter, not the request
    sent = envelope["payload"]
    assert envelope["type"] == "ballot.cast.v2" and sent["idempotency_key"] == "k-1"
    assert re.fullmatch(r"[0-9a-f]{32}", sent["ballot_id"])
    assert re.fullmatch(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", sent["tracker"])
    assert sent["choice"] == {"answer": "yes"}


def test_the_rules_of_an_open_poll_are_fetched_once(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path) -> None:
    intake = Intake(OPEN_POLL)
    client = stubbed(intake)
    for answer in ("yes", "no", "abstain"):
        choice = {"method": "yes_no_abstain", "answer": answer}
        assert client.post("/v1/polls/p1/ballots", headers=voting(keys_dir),
                           json={"choice": choice}).status_code == 201
    assert intake.gets == ["p1"] and len(intake.cast) == 3


@pytest.mark.parametrize(("status", "code", "cached"), [
    ("draft", "poll_not_open", False), ("closed", "poll_closed", True),
    ("published", "poll_closed", True)])
def test_a_poll_not_open_is_refused_at_the_edge(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path, status: str, code: str,
        cached: bool) -> None:
    intake = Intake({**OPEN_POLL, "status": status})
    client = stubbed(intake)
    for _ in range(2):
        problem(client.post("/v1/polls/p1/ballots", headers=voting(keys_dir),
                            json={"choice": YES}), 409, code)
    assert intake.cast == []
    # A draft may open at any moment: asked again. A closed poll stays closed: cached.
    assert intake.gets == (["p1"] if cached else ["p1", "p1"])


@pytest.mark.parametrize(("headers", "body", "status", "code"), [
    ({"Authorization": "Bearer not-a-token"}, {"choice": YES}, 401, "voting_token_invalid"),
    ("other-poll", {"choice": YES}, 403, "voting_token_wrong_poll"),
    ("p1", {"choice": {"method": "yes_no_abstain", "answer": "maybe"}}, 422, "invalid_request"),
    ("p1", {"choice": {"answer": "yes"}}, 422, "invalid_request"),  # method is required
    ("p1", {"choice": YES, "extra": 1}, 422, "invalid_request"),
    ("p1", {"choice": {"method": "ranking", "ranking": ["a"]}}, 422, "ballot_invalid"),
])
def test_a_bad_ballot_never_reaches_the_intake(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path, headers: Any,
        body: dict[str, Any], status: int, code: str) -> None:
    intake = Intake(OPEN_POLL)
    if isinstance(headers, str):
        headers = voting(keys_dir, poll_id=headers)
    problem(stubbed(intake).post("/v1/polls/p1/ballots", headers=headers, json=body),
            status, code)
    assert intake.cast == []


@pytest.mark.parametrize("key", ["", "k" * 129, "has space", "tab\tkey"])
def test_a_malformed_idempotency_key_is_422(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path, key: str) -> None:
    intake = Intake(OPEN_POLL)
    r = stubbed(intake).post("/v1/polls/p1/ballots",
                             headers={**voting(keys_dir), "Idempotency-Key": key},
                             json={"choice": YES})
    problem(r, 422, "invalid_request")
    assert intake.cast == []


def test_the_intakes_refusal_is_the_clients_problem(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path) -> None:
    refused = {"ok": False, "error": {"code": "poll_closed", "status": 409, "detail": "closed"}}
    client = stubbed(Intake(OPEN_POLL, refused))
    problem(client.post("/v1/polls/p1/ballots", headers=voting(keys_dir),
                        json={"choice": YES}), 409, "poll_closed")


OPENING = {"ok": False, "error": {"code": "poll_opening", "status": 503,
                                  "detail": "the opening has not reached the ballot box"}}


@pytest.mark.parametrize(("refusals", "status"), [(1, 201), (len(OPENING_PAUSES), 201),
                                                  (len(OPENING_PAUSES) + 1, 503)])
def test_a_ballot_that_outruns_the_poll_opening_is_sent_again(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path, monkeypatch: pytest.MonkeyPatch,
        refusals: int, status: int) -> None:
    """Identity issued the token, but "poll.opened" has not reached the ballot box: the
    gateway sends the same ballot again a few times, then gives the client a 503."""
    monkeypatch.setattr("urne.gateway.ballots.OPENING_PAUSES", (0.0,) * len(OPENING_PAUSES))
    intake = Intake(OPEN_POLL)
    replies = [OPENING] * refusals + [replied(RECEIPT)]

    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        reply = intake(service, envelope)
        return replies.pop(0) if service.startswith("ballots:") else reply

    r = stubbed(answer).post("/v1/polls/p1/ballots", headers=voting(keys_dir),
                             json={"choice": YES})
    assert r.status_code == status, r.text
    if status == 503:
        assert problem(r, 503, "poll_opening") and r.headers["retry-after"] == "1"
    sent = [envelope for _, envelope in intake.cast]
    assert len(sent) == min(refusals + 1, len(OPENING_PAUSES) + 1)
    assert all(e == sent[0] for e in sent)  # the same ballot: same id, tracker, envelope


def test_an_unconfirmed_ballot_is_a_503_that_says_how_to_retry(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path) -> None:
    def down(service: str, envelope: RawEnvelope) -> RawReply:
        if service.startswith("ballots:"):
            raise ServiceUnavailable("no confirmation")
        return replied(OPEN_POLL)

    r = stubbed(down).post("/v1/polls/p1/ballots", headers=voting(keys_dir),
                           json={"choice": YES})
    body = problem(r, 503, "service_unavailable")
    assert "Idempotency-Key" in body["detail"]
    assert r.headers["retry-after"] == "1"  # the fast path says when, too


def test_synthetic_voters_exist_only_where_the_gateway_says_so(
        stubbed: Callable[[Answer], TestClient], stub_organiser: dict[str, str],
        client: TestClient, organiser: dict[str, str], participant: dict[str, str]) -> None:
    # Not mounted at all unless the gateway runs in development or test...
    problem(stubbed(lambda s, e: replied({})).post(
        "/v1/testing/polls/p1/voting-tokens", headers=stub_organiser, json={"count": 2}),
        404, "route_not_found")
    # ... and never in the public API document.
    assert not any(p.startswith("/v1/testing") for p in client.get("/openapi.json").json()[
        "paths"])
    pid = create_poll(client, organiser)
    client.post(f"/v1/polls/{pid}/open", headers=organiser)
    path = f"/v1/testing/polls/{pid}/voting-tokens"
    problem(client.post(path, headers=participant, json={"count": 2}), 403, "forbidden")
    r = client.post(path, headers=organiser, json={"count": 2})
    assert r.status_code == 201 and len(r.json()["voting_tokens"]) == 2


def test_the_keys_are_a_jwk_set_with_retired_and_revoked_keys(
        stubbed: Callable[[Answer], TestClient], keys_dir: Path) -> None:
    """After rotations, every key is served with its status; tokens signed with the
    retired identity key are still taken, those of a revoked one refused."""
    from urne.crypto.keys import TALLY_RESULT_KEY, revoke_key, rotate_key

    issuer = TokenIssuer(load_signing_key(keys_dir, IDENTITY_TOKEN_KEY))
    before = bearer(issuer.voting_token("ab" * 32, "p1")[0])
    retired, _ = rotate_key(keys_dir, TALLY_RESULT_KEY)
    revoked, _ = rotate_key(keys_dir, TALLY_RESULT_KEY)
    revoke_key(keys_dir, TALLY_RESULT_KEY, revoked)
    identity_old, _ = rotate_key(keys_dir, IDENTITY_TOKEN_KEY)
    client = stubbed(Intake(OPEN_POLL))
    keys = ok(client.get("/v1/audit/keys"), 200, public.PublicKeysPublic)["keys"]
    statuses = {(k["name"], k["kid"]): k["status"] for k in keys}
    assert statuses[(TALLY_RESULT_KEY, retired)] == "retired"
    assert statuses[(TALLY_RESULT_KEY, revoked)] == "revoked"
    assert statuses[(IDENTITY_TOKEN_KEY, identity_old)] == "retired"
    assert sorted(statuses.values()) == ["current", "current", "retired", "retired", "revoked"]
    assert client.post("/v1/polls/p1/ballots", headers=before,
                       json={"choice": YES}).status_code == 201
