"""``/v1/me``: the signed-in person's profile and the district they declare, which their
voting tokens then carry (in-process, the embedded profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import bearer
from tests.gateway.test_app import create_poll, ok, problem
from urne.crypto.keys import (
    IDENTITY_TOKEN_KEY,
    generate_keys,
    load_public_key,
    load_signing_key,
)
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.gateway import public
from urne.platform.settings import EmbeddedSettings

pytestmark = pytest.mark.unit

DORA = "dora@example.org"  # the ``participant`` fixture


def voting_claims(settings: EmbeddedSettings, token: str) -> Any:
    return TokenVerifier(load_public_key(settings.keys_dir, IDENTITY_TOKEN_KEY)).voting(token)


def test_a_person_sees_their_profile_without_a_district_at_first(
        client: TestClient, participant: dict[str, str]) -> None:
    me = ok(client.get("/v1/me", headers=participant), 200, public.PersonPublic)
    assert me["person_id"]
    assert {k: v for k, v in me.items() if k != "person_id"} == {
        "email": DORA, "role": "participant", "district": None, "district_verified": False,
        "phone": None}


def test_declaring_a_district_answers_the_profile_and_a_new_one_replaces_it(
        client: TestClient, participant: dict[str, str], organiser: dict[str, str]) -> None:
    me = client.get("/v1/me", headers=participant).json()
    declared = ok(client.put("/v1/me/district", headers=participant,
                             json={"district": "north"}), 200, public.PersonPublic)
    assert declared == {**me, "district": "north", "district_verified": False}
    assert client.get("/v1/me", headers=participant).json() == declared
    again = ok(client.put("/v1/me/district", headers=participant,
                          json={"district": "Quartier-2.sud"}), 200, public.PersonPublic)
    assert again == {**me, "district": "Quartier-2.sud"}
    # One's own district only: the organiser's profile is untouched.
    assert client.get("/v1/me", headers=organiser).json()["district"] is None


def test_the_voting_token_carries_the_declared_district(
        client: TestClient, settings: EmbeddedSettings, organiser: dict[str, str],
        participant: dict[str, str]) -> None:
    pid = create_poll(client, organiser)
    assert client.post(f"/v1/polls/{pid}/open", headers=organiser).status_code == 200

    def ticket() -> Any:
        r = client.post(f"/v1/polls/{pid}/voting-token", headers=participant)
        assert r.status_code == 201, r.text
        return voting_claims(settings, r.json()["voting_token"])

    assert ticket().district is None
    client.put("/v1/me/district", headers=participant, json={"district": "north"})
    claims = ticket()
    assert (claims.poll_id, claims.district) == (pid, "north")
    assert claims.voter_key != client.get("/v1/me", headers=participant).json()["person_id"]


@pytest.mark.parametrize(("body", "loc"), [
    ({"district": ""}, ["body", "district"]),
    ({"district": "*"}, ["body", "district"]),  # the key of a single, poll-wide budget
    ({"district": " north"}, ["body", "district"]),
    ({"district": "nord/est"}, ["body", "district"]),
    ({"district": "n" * 65}, ["body", "district"]),
    ({"district": 7}, ["body", "district"]),
    ({"district": None}, ["body", "district"]),
    ({}, ["body", "district"]),
    ({"district": "north", "verified": True}, ["body", "verified"]),
], ids=["empty", "star", "space", "slash", "too-long", "number", "null", "missing", "extra"])
def test_an_invalid_district_is_422_and_changes_nothing(
        client: TestClient, participant: dict[str, str], body: dict[str, Any],
        loc: list[str]) -> None:
    client.put("/v1/me/district", headers=participant, json={"district": "north"})
    before = client.get("/v1/me", headers=participant).json()
    r = client.put("/v1/me/district", headers=participant, json=body)
    assert problem(r, 422, "invalid_request")["errors"][0]["loc"] == loc
    assert client.get("/v1/me", headers=participant).json() == before


def test_a_body_that_is_not_json_is_400_and_changes_nothing(
        client: TestClient, participant: dict[str, str]) -> None:
    r = client.put("/v1/me/district", headers={**participant, "content-type": "application/json"},
                   content=b'{"district": ')
    problem(r, 400, "malformed_json")
    assert client.get("/v1/me", headers=participant).json()["district"] is None


def foreign_token(tmp_path: Path) -> str:
    """An access token signed with a key the gateway does not trust."""
    generate_keys(tmp_path / "foreign")
    return TokenIssuer(load_signing_key(tmp_path / "foreign", IDENTITY_TOKEN_KEY)).access_token(
        "person-1", "participant")[0]


@pytest.mark.parametrize(("authorization", "code"), [
    (None, "missing_token"),
    ("Bearer", "missing_token"),
    ("Basic ZG9yYTpzZWNyZXQ=", "missing_token"),
    ("Bearer not.a.jwt", "invalid_token"),
    ("foreign", "invalid_token"),
    ("voting", "invalid_token"),
], ids=["none", "empty", "basic", "garbage", "foreign", "voting-token"])
def test_without_a_valid_access_token_it_is_401_and_changes_nothing(
        client: TestClient, tmp_path: Path, settings: EmbeddedSettings,
        organiser: dict[str, str], participant: dict[str, str], authorization: str | None,
        code: str) -> None:
    if authorization == "foreign":
        authorization = f"Bearer {foreign_token(tmp_path)}"
    elif authorization == "voting":
        pid = create_poll(client, organiser)
        client.post(f"/v1/polls/{pid}/open", headers=organiser)
        token = client.post(f"/v1/polls/{pid}/voting-token", headers=participant).json()
        authorization = f"Bearer {token['voting_token']}"
    headers = {"Authorization": authorization} if authorization else {}
    for r in (client.get("/v1/me", headers=headers),
              client.put("/v1/me/district", headers=headers, json={"district": "north"})):
        problem(r, 401, code)
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/me", headers=participant).json()["district"] is None


def test_a_token_for_a_person_identity_does_not_know_is_404(
        client: TestClient, settings: EmbeddedSettings) -> None:
    # Genuinely signed (say, by another installation sharing the key), but nobody here.
    issuer = TokenIssuer(load_signing_key(settings.keys_dir, IDENTITY_TOKEN_KEY))
    stranger = bearer(issuer.access_token("0" * 32, "participant")[0])
    problem(client.get("/v1/me", headers=stranger), 404, "person_not_found")
    problem(client.put("/v1/me/district", headers=stranger, json={"district": "north"}),
            404, "person_not_found")


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("POST", "/v1/me", "DELETE, GET"),
    ("PUT", "/v1/me", "DELETE, GET"),
    ("GET", "/v1/me/district", "PUT"),
    ("POST", "/v1/me/district", "PUT"),
])
def test_a_wrong_method_is_405(client: TestClient, method: str, path: str, allow: str) -> None:
    r = client.request(method, path)
    problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow


def test_the_routes_are_in_the_openapi_document_and_strict(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/v1/me"]["get"]["operationId"] == "me-get_profile"
    put = spec["paths"]["/v1/me/district"]["put"]
    assert put["operationId"] == "me-declare_district"
    assert put["security"] == [{"HTTPBearer": []}]
    ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert body["additionalProperties"] is False and body["required"] == ["district"]
    assert body["properties"]["district"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


def test_synthetic_voters_are_spread_over_districts(
        client: TestClient, settings: EmbeddedSettings, organiser: dict[str, str]) -> None:
    pid = create_poll(client, organiser)
    client.post(f"/v1/polls/{pid}/open", headers=organiser)
    route = f"/v1/testing/polls/{pid}/voting-tokens"
    r = client.post(route, headers=organiser, json={"count": 3, "districts": ["north", "south"]})
    assert r.status_code == 201, r.text
    assert [voting_claims(settings, t).district for t in r.json()["voting_tokens"]] == [
        "north", "south", "north"]
    r = client.post(route, headers=organiser, json={"count": 1})
    assert voting_claims(settings, r.json()["voting_tokens"][0]).district is None
    problem(client.post(route, headers=organiser, json={"count": 1, "districts": ["*"]}),
            422, "invalid_request")


BUDGETS = {"method": "budget", "question": "Which projects?",
           "projects": [{"id": "n1", "title": "North park", "cost": 80, "district": "north"},
                        {"id": "s1", "title": "South lights", "cost": 40, "district": "south"}],
           "budgets": {"north": 100, "south": 50}}


def test_a_budget_per_district_counts_each_ballot_in_its_voters_declared_district(
        client: TestClient, organiser: dict[str, str], participant: dict[str, str]) -> None:
    cid = client.post("/v1/consultations", headers=organiser, json={"title": "B"}).json()["id"]
    assert client.post(f"/v1/consultations/{cid}/publish", headers=organiser).status_code == 200
    pid = client.post(f"/v1/consultations/{cid}/polls", headers=organiser,
                      json={"rules": BUDGETS}).json()["id"]
    assert client.post(f"/v1/polls/{pid}/open", headers=organiser).status_code == 200

    def cast(projects: list[str]) -> Any:
        ticket = client.post(f"/v1/polls/{pid}/voting-token", headers=participant).json()
        return client.post(f"/v1/polls/{pid}/ballots", headers=bearer(ticket["voting_token"]),
                           json={"choice": {"method": "budget", "projects": projects}})

    assert "names no district" in problem(cast(["n1"]), 422, "ballot_invalid")["detail"]
    client.put("/v1/me/district", headers=participant, json={"district": "north"})
    problem(cast(["s1"]), 422, "ballot_invalid")  # a project of another district
    assert cast(["n1"]).status_code == 201
    assert client.post(f"/v1/polls/{pid}/close", headers=organiser).status_code == 200
    districts = client.get(f"/v1/polls/{pid}/results").json()["tally"]["districts"]
    assert (districts["north"]["ballots"], districts["south"]["ballots"]) == (1, 0)
    assert districts["north"]["selected"] == ["n1"]


def test_a_person_deletes_their_account_and_signing_in_again_gives_the_same_voter(
        client: TestClient, settings: EmbeddedSettings, organiser: dict[str, str],
        participant: dict[str, str], outbox: Path) -> None:
    """DELETE /v1/me: the profile goes (404 where it is needed, 204 said once); signing
    in again with the address gives the same person id, without the district, and the
    same voter key in a poll voted in before: no second voter."""
    from tests.e2e.scenario import sign_in

    pid = create_poll(client, organiser)
    assert client.post(f"/v1/polls/{pid}/open", headers=organiser).status_code == 200
    client.put("/v1/me/district", headers=participant, json={"district": "north"})
    me = client.get("/v1/me", headers=participant).json()
    r = client.post(f"/v1/polls/{pid}/voting-token", headers=participant)
    before = voting_claims(settings, r.json()["voting_token"]).voter_key

    r = client.delete("/v1/me", headers=participant)
    assert (r.status_code, r.content) == (204, b"")
    for gone in (client.get("/v1/me", headers=participant),
                 client.delete("/v1/me", headers=participant)):
        problem(gone, 404, "person_not_found")
    assert client.delete("/v1/me").status_code == 401  # signed in only

    again = sign_in(client, outbox, DORA)
    back = client.get("/v1/me", headers=again).json()
    assert back == {**me, "district": None}
    r = client.post(f"/v1/polls/{pid}/voting-token", headers=again)
    assert voting_claims(settings, r.json()["voting_token"]).voter_key == before
