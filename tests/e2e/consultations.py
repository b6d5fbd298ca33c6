"""A consultation belongs to its organisers, end to end through the gateway: a draft seen
by its organisers only, another organiser who can neither edit it nor run its polls, an
admin who adds them, and poll rules frozen at opening. Every refusal is a problem+json
that changed nothing. Run against both profiles by test_embedded and test_distributed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.e2e.bad_input import expect
from tests.e2e.scenario import ADMIN, ORGANISER, ORGANISER_B, YES_NO, login

PARTICIPANT = "paul@example.org"
STEPS = [
    {"kind": "proposals", "starts_at": "2030-03-01T09:00:00+01:00",
     "ends_at": "2030-03-15T00:00:00Z"},
    {"kind": "vote", "starts_at": "2030-03-20T00:00:00Z", "ends_at": "2030-04-01T00:00:00Z"},
    {"kind": "results", "starts_at": "2030-04-01T00:00:00Z", "ends_at": "2030-04-15T00:00:00Z"},
]
APPROVAL = {"method": "approval", "question": "Quels arbres ?", "max_choices": 2,
            "options": [{"id": "chene", "title": "Chêne"}, {"id": "tilleul", "title": "Tilleul"},
                        {"id": "erable", "title": "Érable"}]}
NOT_THEIRS = (403, "not_an_organiser_of_this_consultation")


def ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return dict(r.json())


def run_consultations(http: httpx.Client, outbox: Path) -> None:
    a = login(http, outbox, ORGANISER)
    b = login(http, outbox, ORGANISER_B)
    admin = login(http, outbox, ADMIN)
    participant = login(http, outbox, PARTICIPANT)
    role = ok(http.get("/v1/me", headers=admin))["role"]
    assert role == "admin", f"{ADMIN} registered as {role}, not from URNE_ADMIN_EMAILS"
    b_id = ok(http.get("/v1/me", headers=b))["person_id"]

    # A drafts a consultation with its calendar (in UTC, shown in Paris time) and two polls.
    draft = ok(http.post("/v1/consultations", headers=a, json={
        "title": "Arbres du mail", "time_zone": "Europe/Paris", "steps": STEPS}), 201)
    cid = draft["id"]
    assert (draft["status"], draft["time_zone"]) == ("draft", "Europe/Paris")
    assert [s["kind"] for s in draft["steps"]] == ["proposals", "vote", "results"]
    assert draft["steps"][0]["starts_at"] == "2030-03-01T08:00:00Z"
    ok(http.post(f"/v1/consultations/{cid}/proposals", headers=a, json={"title": "Des chênes"}),
       201)
    first = ok(http.post(f"/v1/consultations/{cid}/polls", headers=a, json={"rules": YES_NO}),
               201)["id"]
    second = ok(http.post(f"/v1/consultations/{cid}/polls", headers=a,
                          json={"rules": APPROVAL}), 201)["id"]

    # Nobody else sees the draft: not the public, not a participant, not another organiser.
    for headers in ({}, participant, b):
        expect(http.get(f"/v1/consultations/{cid}", headers=headers), 404,
               "consultation_not_found")
        expect(http.get(f"/v1/polls/{first}", headers=headers), 404, "poll_not_found")
        listed = ok(http.get("/v1/consultations", params={"limit": 500}, headers=headers))
        assert cid not in {c["id"] for c in listed["items"]}
    expect(http.patch(f"/v1/consultations/{cid}", headers=b, json={"title": "À moi"}),
           404, "consultation_not_found")
    # Not even its organiser opens a poll before the consultation is published.
    expect(http.post(f"/v1/polls/{first}/open", headers=a), 409, "consultation_draft")
    assert ok(http.get(f"/v1/polls/{first}", headers=a))["status"] == "draft"

    published = ok(http.post(f"/v1/consultations/{cid}/publish", headers=a))
    assert published["status"] == "published" and published["published_at"]
    assert ok(http.post(f"/v1/polls/{first}/open", headers=a))["status"] == "open"
    page = ok(http.get(f"/v1/consultations/{cid}", headers=participant))
    # Everyone sees it now, with its open poll; its draft poll and organisers stay private.
    assert ([p["id"] for p in page["polls"]], page["organisers"]) == ([first], None)

    # B cannot edit it nor run its polls, and nothing changes.
    before = (ok(http.get(f"/v1/consultations/{cid}", headers=a)),
              ok(http.get(f"/v1/polls/{first}", headers=a)),
              ok(http.get(f"/v1/polls/{second}", headers=a)))
    expect(http.patch(f"/v1/consultations/{cid}", headers=b, json={"title": "À moi"}),
           *NOT_THEIRS)
    expect(http.post(f"/v1/consultations/{cid}/organisers", headers=b,
                     json={"person_id": b_id}), *NOT_THEIRS)
    expect(http.post(f"/v1/consultations/{cid}/polls", headers=b, json={"rules": YES_NO}),
           *NOT_THEIRS)
    expect(http.post(f"/v1/polls/{first}/close", headers=b), *NOT_THEIRS)
    expect(http.patch(f"/v1/polls/{first}", headers=b, json={"rules": YES_NO}), *NOT_THEIRS)
    # A draft poll is not B's to see: as if it did not exist.
    expect(http.post(f"/v1/polls/{second}/open", headers=b), 404, "poll_not_found")
    expect(http.post(f"/v1/polls/{first}/close", headers=participant), 403, "forbidden")
    assert (ok(http.get(f"/v1/consultations/{cid}", headers=a)),
            ok(http.get(f"/v1/polls/{first}", headers=a)),
            ok(http.get(f"/v1/polls/{second}", headers=a))) == before

    # An admin adds B; B now acts on it.
    added = ok(http.post(f"/v1/consultations/{cid}/organisers", headers=admin,
                         json={"person_id": b_id}))
    assert added["organisers"] == [before[0]["organisers"][0], b_id]
    renamed = ok(http.patch(f"/v1/consultations/{cid}", headers=b,
                            json={"title": "Arbres du mail (2030)"}))
    assert (renamed["title"], renamed["steps"]) == ("Arbres du mail (2030)", before[0]["steps"])
    edited = ok(http.patch(f"/v1/polls/{second}", headers=b,
                           json={"rules": {**APPROVAL, "max_choices": 1}}))
    assert (edited["status"], edited["rules"]["max_choices"]) == ("draft", 1)
    opened = ok(http.post(f"/v1/polls/{second}/open", headers=b))
    assert opened["status"] == "open" and opened["rules_hash"]

    # Rules are frozen from the opening on, for everyone: 409, and the rules stay.
    for poll_id, rules in ((first, {**YES_NO, "question": "Autre question ?"}),
                           (second, APPROVAL)):
        frozen = ok(http.get(f"/v1/polls/{poll_id}"))
        for headers in (a, b, admin):
            expect(http.patch(f"/v1/polls/{poll_id}", headers=headers, json={"rules": rules}),
                   409, "poll_rules_frozen")
        assert ok(http.get(f"/v1/polls/{poll_id}")) == frozen
        assert ok(http.get(f"/v1/audit/polls/{poll_id}/rules"))["rules_hash"] == \
            frozen["rules_hash"]
    assert ok(http.post(f"/v1/polls/{first}/close", headers=b))["status"] == "closed"

    # Creations sent again with their Idempotency-Key (an answer lost on the way) are the
    # same ones; the key with another body is refused, and creates nothing.
    keyed = {**a, "Idempotency-Key": "retry-1"}
    made = [ok(http.post("/v1/consultations", headers=keyed, json={"title": "Bancs"}), 201)
            for _ in range(2)]
    assert made[0] == made[1]
    again = made[0]["id"]
    expect(http.post("/v1/consultations", headers=keyed, json={"title": "Bancs publics"}),
           422, "idempotency_key_reused")
    mine = ok(http.get("/v1/consultations", params={"limit": 500}, headers=a))["items"]
    assert [c["title"] for c in mine].count("Bancs") == 1
    assert "Bancs publics" not in {c["title"] for c in mine}
    polls = [ok(http.post(f"/v1/consultations/{again}/polls", headers=keyed,
                          json={"rules": YES_NO}), 201) for _ in range(2)]
    assert polls[0] == polls[1]
    expect(http.post(f"/v1/consultations/{again}/polls", headers=keyed,
                     json={"rules": APPROVAL}), 422, "idempotency_key_reused")
    assert [p["id"] for p in ok(http.get(f"/v1/consultations/{again}", headers=a))[
        "polls"]] == [polls[0]["id"]]
    # A key the edge cannot take (a space; too long) is refused before any service.
    for bad in ("two words", "k" * 129):
        expect(http.post("/v1/consultations", headers={**a, "Idempotency-Key": bad},
                         json={"title": "Bancs"}), 422, "invalid_request")
