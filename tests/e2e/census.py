"""A census poll over HTTP, either profile (issue 9's acceptance: census eligibility,
eligible, not eligible, an entry claimed twice): the organiser uploads the list, people
claim their entries, and only claimed, eligible entries get a voting token, which
carries the census's district; their ballots are counted."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.e2e.scenario import (
    ORGANISER,
    ORGANISER_B,
    PROBLEM,
    YES_NO,
    bearer,
    login,
    sign_in,
    wait_for,
)
from urne.runtime.cli import app


def run_census(http: httpx.Client, outbox: Path) -> None:
    org = login(http, outbox, ORGANISER)
    run = uuid.uuid4().hex[:8]
    eloise, paul, stranger, thief = (f"census-{n}-{run}@example.org"
                                     for n in ("eloise", "paul", "stranger", "thief"))
    r = http.post("/v1/consultations", headers=org, json={"title": "Budget des quartiers"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert http.post(f"/v1/consultations/{cid}/publish", headers=org).status_code == 200

    # The town hall's export: its own headers, semicolons, French dates.
    csv = ("Nom;Prénom;Naissance;Quartier;Courriel\n"
           f"Dupont-Léger;Éloïse;17/05/1990;nord;{eloise}\n"
           "Martin;Paul;01/01/2010;sud;\n").encode()
    columns = ("family_name=Nom,given_name=Prénom,birth_date=Naissance,district=Quartier,"
               "email=Courriel")
    upload = {"columns": columns, "minimum_age": 16, "age_on": "2025-12-31"}
    csv_type = {"Content-Type": "text/csv"}

    # Bad input changes nothing: a wrong line, a wrong type, someone else's consultation.
    r = http.post(f"/v1/consultations/{cid}/census", params=upload, headers=org | csv_type,
                  content=csv + b"Nguyen;Anh;31/02/1985;est;\n")
    assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
        422, PROBLEM, "census_invalid"), r.text
    assert r.json()["errors"] == ["line 4: birth_date '31/02/1985' is not YYYY-MM-DD or "
                                  "DD/MM/YYYY"]
    r = http.post(f"/v1/consultations/{cid}/census", params=upload,
                  headers=org | {"Content-Type": "application/json"}, content=b"{}")
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type"), r.text
    other = login(http, outbox, ORGANISER_B)
    r = http.post(f"/v1/consultations/{cid}/census", params=upload, headers=other | csv_type,
                  content=csv)
    assert r.status_code in (403, 404), r.text  # a draft of another organiser is not found

    r = http.post(f"/v1/consultations/{cid}/census", params=upload, headers=org | csv_type,
                  content=csv)
    assert r.status_code == 200, r.text
    # Paul is 15 on the reference day: on the census, not eligible.
    assert r.json() == {"consultation_id": cid, "rows": 2, "eligible": 1}

    r = http.post(f"/v1/consultations/{cid}/polls", headers=org,
                  json={"rules": YES_NO, "electorate": "census"})
    assert r.status_code == 201 and r.json()["electorate"] == "census", r.text
    poll_id = r.json()["id"]
    r = http.post(f"/v1/polls/{poll_id}/open", headers=org)
    assert r.status_code == 200 and r.json()["electorate"] == "census", r.text
    # Auditors see it with the frozen rules; the list is frozen too while it is open.
    assert http.get(f"/v1/audit/polls/{poll_id}/rules").json()["electorate"] == "census"
    r = http.post(f"/v1/consultations/{cid}/census", params=upload, headers=org | csv_type,
                  content=csv)
    assert (r.status_code, r.json()["code"]) == (409, "census_frozen"), r.text

    users = {who: sign_in(http, outbox, who) for who in (eloise, paul, stranger, thief)}

    # Not on the census, or not claimed yet: no token.
    for who in (stranger, eloise):
        r = wait_for(lambda w=who: http.post(f"/v1/polls/{poll_id}/voting-token",
                                             headers=users[w]), 403)
        assert (r.status_code, r.json()["code"]) == (403, "census_claim_required"), r.text

    # Éloïse claims by the address she signed in with; Paul by his names, as he types them.
    r = http.post(f"/v1/consultations/{cid}/census/claim", headers=users[eloise], json={})
    assert r.status_code == 200, r.text
    assert r.json() == {"consultation_id": cid, "district": "nord", "eligible": True}
    r = http.post(f"/v1/consultations/{cid}/census/claim", headers=users[paul],
                  json={"family_name": "MARTIN", "given_name": "paul",
                        "birth_date": "2010-01-01"})
    assert r.status_code == 200 and r.json()["eligible"] is False, r.text
    # Someone else who knows Éloïse's names and birth date cannot take her entry.
    r = http.post(f"/v1/consultations/{cid}/census/claim", headers=users[thief],
                  json={"family_name": "Dupont Leger", "given_name": "Eloise",
                        "birth_date": "1990-05-17"})
    assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
        409, PROBLEM, "census_entry_claimed"), r.text
    r = http.post(f"/v1/consultations/{cid}/census/claim", headers=users[stranger],
                  json={"family_name": "Personne", "given_name": "Nul",
                        "birth_date": "1990-01-01"})
    assert (r.status_code, r.json()["code"]) == (404, "census_entry_not_found"), r.text
    r = http.post(f"/v1/consultations/{cid}/census/claim", headers=users[stranger],
                  json={"family_name": "Personne"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), r.text

    r = http.post(f"/v1/polls/{poll_id}/voting-token", headers=users[paul])
    assert (r.status_code, r.json()["code"]) == (403, "not_eligible"), r.text
    r = http.post(f"/v1/polls/{poll_id}/voting-token", headers=users[thief])
    assert (r.status_code, r.json()["code"]) == (403, "census_claim_required"), r.text
    r = http.post(f"/v1/polls/{poll_id}/voting-token", headers=users[eloise])
    assert r.status_code == 201, r.text
    voting = r.json()["voting_token"]

    r = http.post(f"/v1/polls/{poll_id}/ballots", headers=bearer(voting),
                  json={"choice": {"method": "yes_no_abstain", "answer": "yes"}})
    assert r.status_code == 201, r.text
    assert http.post(f"/v1/polls/{poll_id}/close", headers=org).status_code == 200
    r = wait_for(lambda: http.get(f"/v1/polls/{poll_id}/results"), 200)
    assert r.status_code == 200, r.text
    assert r.json()["tally"]["counts"] == {"yes": 1, "no": 0, "abstain": 0}
    # The signed reconciliation names the electorate at the close, counted by identity
    # (Éloïse eligible, Paul not: one), beside its voters; the verifier agrees.
    signed = http.get(f"/v1/audit/polls/{poll_id}/result").json()
    reconciliation = signed["result"]["reconciliation"]
    assert (reconciliation["eligible"], reconciliation["voters"]) == (1, 1), reconciliation
    verified = CliRunner().invoke(app, ["audit", "verify", "--url", str(http.base_url),
                                        "--poll", poll_id, "--json"])
    assert verified.exit_code == 0, verified.output
    tally = next(c for c in json.loads(verified.stdout)["checks"] if c["name"] == "tally")
    assert tally["ok"] and "1 voters of 1 eligible people" in tally["detail"], tally
