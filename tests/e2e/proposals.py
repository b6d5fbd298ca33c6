"""Proposals as cities run them, end to end through the gateway: a consultation in its
proposals step; participants submit (the per-person limit reached is a 409); the organiser
publishes one, rejects one with a reason; a participant reports one and the organiser hides
it; the listing's filters, search and cursors; Markdown with a ``<script>`` served
sanitised. Run against both profiles by test_embedded and test_distributed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.bad_input import expect
from tests.e2e.scenario import ORGANISER, login

INES, JULES, KARIM = "ines@example.org", "jules@example.org", "karim@example.org"
LIMIT = 5  # URNE_MAX_PROPOSALS_PER_PERSON's default, which both systems run with
SCRIPTED = "Des **bancs** à l'ombre. <script>document.location='https://evil.example'</script>"


def ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return dict(r.json())


def every(http: httpx.Client, path: str, headers: dict[str, str] | None = None,
          **params: Any) -> list[dict[str, Any]]:
    """Every proposal a listing gives, following its cursors to the end."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = ok(http.get(path, headers=headers or {},
                           params={**params, **({"cursor": cursor} if cursor else {})}))
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def run_proposals(http: httpx.Client, outbox: Path) -> None:
    org = login(http, outbox, ORGANISER)
    ines, jules, karim = (login(http, outbox, e) for e in (INES, JULES, KARIM))
    now = datetime.now(UTC)
    cid = ok(http.post("/v1/consultations", headers=org, json={
        "title": "Budget participatif 2031", "steps": [
            {"kind": "proposals", "starts_at": (now - timedelta(hours=1)).isoformat(),
             "ends_at": (now + timedelta(days=14)).isoformat()},
            {"kind": "vote", "starts_at": (now + timedelta(days=20)).isoformat(),
             "ends_at": (now + timedelta(days=30)).isoformat()}]}), 201)["id"]
    ok(http.post(f"/v1/consultations/{cid}/publish", headers=org))
    assert ok(http.get(f"/v1/consultations/{cid}"))["current_step"] == "proposals"
    add = f"/v1/consultations/{cid}/proposals"

    # Participants submit, up to the limit.
    ideas = [("Bancs du square", "parks", "nord", SCRIPTED, 8_000),
             ("Piste cyclable", "mobility", "nord", "Le long du *canal*", 250_000),
             ("Jardin partagé", "parks", "sud", "Potagers et compost", 30_000),
             ("Fontaine", "parks", "sud", "Eau potable", 12_000),
             ("Navette de nuit", "mobility", None, "Un bus de NUIT le samedi", None)]
    mine = [ok(http.post(add, headers=ines, json={
        "title": t, "category": c, "body": b, "estimated_cost": cost,
        **({"district": d} if d else {})}), 201) for t, c, d, b, cost in ideas]
    assert {p["status"] for p in mine} == {"submitted"}
    assert len(mine) == LIMIT
    expect(http.post(add, headers=ines, json={"title": "Encore une"}), 409,
           "proposal_limit_reached")
    theirs = ok(http.post(add, headers=jules, json={"title": "Skatepark", "category": "sport",
                                                    "district": "sud"}), 201)
    by_title = {p["title"]: p["id"] for p in [*mine, theirs]}

    # Submitted: the organiser and each author see theirs; the public, nothing yet.
    assert every(http, add) == []
    assert len(every(http, add, org)) == LIMIT + 1
    assert {p["id"] for p in every(http, add, jules)} == {theirs["id"]}
    expect(http.get(f"/v1/proposals/{theirs['id']}", headers=karim), 404, "proposal_not_found")

    # The organiser decides: four published, one rejected with a public reason.
    for title in ("Bancs du square", "Piste cyclable", "Navette de nuit", "Skatepark"):
        assert ok(http.post(f"/v1/proposals/{by_title[title]}/publish",
                            headers=org))["status"] == "published"
    rejected = ok(http.post(f"/v1/proposals/{by_title['Fontaine']}/reject", headers=org,
                            json={"reason": "Déjà prévue au budget 2030"}))
    assert rejected["status"] == "rejected"
    expect(http.post(f"/v1/proposals/{by_title['Fontaine']}/publish", headers=org), 409,
           "proposal_rejected")
    expect(http.post(f"/v1/proposals/{by_title['Skatepark']}/publish", headers=jules), 403,
           "forbidden")
    seen = ok(http.get(f"/v1/proposals/{by_title['Fontaine']}"))
    assert seen["rejection_reason"] == "Déjà prévue au budget 2030"

    # A participant reports one; the organiser reads the report and hides it.
    skate = by_title["Skatepark"]
    ok(http.post(f"/v1/proposals/{skate}/reports", headers=karim,
                 json={"reason": "Publicité déguisée"}), 201)
    expect(http.post(f"/v1/proposals/{skate}/reports", headers=karim, json={"reason": "Bis"}),
           409, "proposal_already_reported")
    expect(http.get(f"/v1/proposals/{skate}/reports", headers=karim), 403, "forbidden")
    reports = ok(http.get(f"/v1/proposals/{skate}/reports", headers=org))["items"]
    assert [r["reason"] for r in reports] == ["Publicité déguisée"]
    hidden = ok(http.post(f"/v1/proposals/{skate}/hide", headers=org,
                          json={"reason": "Publicité (1 signalement)"}))
    assert hidden["hidden"] and hidden["moderation"]["reason"] == "Publicité (1 signalement)"
    expect(http.get(f"/v1/proposals/{skate}"), 404, "proposal_not_found")
    expect(http.get(f"/v1/proposals/{skate}", headers=karim), 404, "proposal_not_found")
    own = ok(http.get(f"/v1/proposals/{skate}", headers=jules))  # still its author's
    assert own["hidden"] and own["moderation"] is None
    assert ok(http.get(f"/v1/proposals/{skate}", headers=org))["report_count"] == 1

    # The public listing: what is published or rejected, not hidden, in order, by pages.
    public = every(http, add, limit=1)
    assert [p["title"] for p in public] == [
        "Bancs du square", "Piste cyclable", "Fontaine", "Navette de nuit"]
    assert every(http, add, limit=2) == public
    titles = {"category=parks": ["Bancs du square", "Fontaine"],
              "district=nord": ["Bancs du square", "Piste cyclable"],
              "status=rejected": ["Fontaine"], "q=nuit": ["Navette de nuit"],
              "q=CANAL": ["Piste cyclable"], "category=mobility&district=sud": []}
    for query, expected in titles.items():
        params = dict(kv.split("=") for kv in query.split("&"))
        assert [p["title"] for p in every(http, add, limit=1, **params)] == expected, query
    expect(http.get(add, params={"cursor": "pas-un-curseur"}), 422, "invalid_cursor")
    page = ok(http.get(f"/v1/consultations/{cid}"))
    assert [p["title"] for p in page["proposals"]] == [p["title"] for p in public]

    # Markdown is kept as written and served sanitised.
    benches = ok(http.get(f"/v1/proposals/{by_title['Bancs du square']}"))
    assert benches["body"] == SCRIPTED
    assert "<strong>bancs</strong>" in benches["body_html"]
    assert "<script" not in benches["body_html"] and "&lt;script&gt;" in benches["body_html"]

    # Then the organiser selects one, and records it done.
    lane = by_title["Piste cyclable"]
    ok(http.post(f"/v1/proposals/{lane}/select", headers=org))
    done = ok(http.post(f"/v1/proposals/{lane}/implement", headers=org))
    assert done["status"] == "implemented"
    assert [p["title"] for p in every(http, add, status="implemented")] == ["Piste cyclable"]
