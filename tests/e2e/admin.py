"""Accountable operators over HTTP, either profile: an admin grants a role, the person
acts with it, and the admin reads both in the action log; nobody else reads it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.e2e.scenario import ADMIN, PROBLEM, login, sign_in


def run_admin(http: httpx.Client, outbox: Path) -> None:
    admin = login(http, outbox, ADMIN)
    newcomer = f"clerk-{uuid.uuid4().hex[:8]}@example.org"
    # A role given before the first sign-in awaits it.
    r = http.put("/v1/admin/roles", headers=admin, json={"email": newcomer,
                                                          "role": "organiser"})
    assert r.status_code == 200 and r.json()["role"] == "organiser", r.text
    person_id = r.json()["person_id"]
    clerk = sign_in(http, outbox, newcomer)
    me = http.get("/v1/me", headers=clerk).json()
    assert (me["person_id"], me["role"]) == (person_id, "organiser")
    r = http.post("/v1/consultations", headers=clerk,
                  json={"title": "Budget participatif", "description": "2027"})
    assert r.status_code == 201, r.text
    consultation = r.json()["id"]

    # The clerk may not read the log, nor grant roles.
    for r in (http.get("/v1/admin/actions", headers=clerk),
              http.put("/v1/admin/roles", headers=clerk,
                       json={"email": newcomer, "role": "admin"})):
        assert (r.status_code, r.headers["content-type"]) == (403, PROBLEM), r.text

    month = datetime.now(UTC).strftime("%Y-%m")
    log = http.get("/v1/admin/actions", headers=admin, params={"month": month})
    assert log.status_code == 200, log.text
    actions = log.json()["actions"]
    granted = [a for a in actions if a["action"] == "person.role.set.v1"
               and a["subject"]["email"] == newcomer]
    created = [a for a in actions if a["action"] == "consultation.create.v1"
               and a["actor"] == person_id]
    assert [(a["service"], a["role"]) for a in granted] == [("identity", "admin")]
    assert [(a["service"], a["role"]) for a in created] == [("proposal", "organiser")]
    assert created[0]["subject"]["title"] == "Budget participatif"
    assert granted[0]["at"] <= created[0]["at"]  # oldest first
    assert consultation  # made by the clerk, under the role the admin gave
    # The same month a page of one entry at a time: the same entries, in the same order.
    assert log.json()["next"] is None
    paged: list[dict] = []
    params = {"month": month, "limit": "1"}
    while len(paged) <= len(actions):
        page = http.get("/v1/admin/actions", headers=admin, params=params).json()
        paged += page["actions"]
        if page["next"] is None:
            break
        params["after"] = page["next"]
    assert paged[:len(actions)] == actions  # entries logged since come after

    # Taken back: the clerk's next sign-in carries the participant role.
    r = http.put("/v1/admin/roles", headers=admin, json={"email": newcomer,
                                                          "role": "participant"})
    assert r.status_code == 200 and r.json()["role"] == "participant"
    assert http.get("/v1/me", headers=sign_in(http, outbox, newcomer)).json()["role"] == \
        "participant"
