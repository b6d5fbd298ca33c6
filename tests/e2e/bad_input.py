"""Bad input on every route of the slice: a problem+json with a stable code, never a 500,
and no change of state."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.scenario import PROBLEM, YES_NO, bearer, login, open_poll

UNKNOWN = "0" * 32


def expect(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status and body["title"] and body["detail"], body


def run_bad_input(http: httpx.Client, outbox: Path) -> None:
    state = open_poll(http, outbox)
    org, pid = state.organiser, state.poll_id
    poll_before = http.get(f"/v1/polls/{pid}").json()
    cid = poll_before["consultation_id"]
    consultation_before = http.get(f"/v1/consultations/{cid}", headers=org).json()
    malformed = {"content": b'{"title": ', "headers": {"content-type": "application/json"}}

    # auth
    expect(http.post("/v1/auth/codes", **malformed), 400, "malformed_json")
    expect(http.post("/v1/auth/codes", json={}), 422, "invalid_request")
    expect(http.post("/v1/auth/codes", json={"email": "not-an-address"}), 422, "invalid_request")
    expect(http.put("/v1/auth/codes", json={"email": "a@b.org"}), 405, "method_not_allowed")
    expect(http.post("/v1/auth/tokens", json={"email": "nobody@example.org", "code": "123456"}),
           401, "code_invalid")

    # consultations
    expect(http.post("/v1/consultations", json={"title": "x"}), 401, "missing_token")
    expect(http.post("/v1/consultations", json={"title": "x"}, headers=bearer("garbage")),
           401, "invalid_token")
    participant = login(http, outbox, "dora@example.org")
    expect(http.post("/v1/consultations", json={"title": "x"}, headers=participant),
           403, "forbidden")
    expect(http.post("/v1/consultations", headers={**org, **malformed["headers"]},
                     content=malformed["content"]), 400, "malformed_json")
    expect(http.post("/v1/consultations", json={"title": ""}, headers=org), 422, "invalid_request")
    expect(http.post("/v1/consultations", json={"title": "x", "extra": 1}, headers=org),
           422, "invalid_request")
    expect(http.get(f"/v1/consultations/{UNKNOWN}"), 404, "consultation_not_found")
    expect(http.delete(f"/v1/consultations/{UNKNOWN}"), 405, "method_not_allowed")
    r = http.options("/v1/consultations")
    expect(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, POST"  # both routes of the path, not just one
    expect(http.get("/v1/consultations", params={"limit": "lots"}), 422, "invalid_request")
    expect(http.post(f"/v1/consultations/{UNKNOWN}/proposals", json={"title": "x"}, headers=org),
           404, "consultation_not_found")
    expect(http.post(f"/v1/consultations/{UNKNOWN}/polls", headers=org,
                     json={"rules": {"method": "yes_no_abstain", "question": "?"}}),
           404, "consultation_not_found")
    expect(http.post(f"/v1/consultations/{UNKNOWN}/polls", headers=org,
                     json={"rules": {"method": "plurality", "question": "?"}}),
           422, "invalid_request")
    # a consultation's calendar, edits, publication and organisers
    step = {"kind": "vote", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-03T00:00:00Z"}
    for bad in ({"time_zone": "Mars/Olympus"}, {"steps": [{**step, "ends_at": step["starts_at"]}]},
                {"steps": [{**step, "starts_at": "2030-01-02T00:00:00"}]},
                {"steps": [step, {**step, "kind": "proposals"}]}, {"steps": [{**step, "x": 1}]},
                {"status": "draft"}):
        expect(http.post("/v1/consultations", headers=org, json={"title": "x", **bad}),
               422, "invalid_request")
        expect(http.patch(f"/v1/consultations/{cid}", headers=org, json=bad),
               422, "invalid_request")
    expect(http.patch(f"/v1/consultations/{cid}", headers={**org, **malformed["headers"]},
                      content=malformed["content"]), 400, "malformed_json")
    expect(http.patch(f"/v1/consultations/{UNKNOWN}", headers=org, json={"title": "x"}),
           404, "consultation_not_found")
    expect(http.patch(f"/v1/consultations/{cid}", json={"title": "x"}), 401, "missing_token")
    expect(http.patch(f"/v1/consultations/{cid}", headers=participant, json={"title": "x"}),
           403, "forbidden")
    expect(http.post(f"/v1/consultations/{UNKNOWN}/publish", headers=org),
           404, "consultation_not_found")
    expect(http.post(f"/v1/consultations/{cid}/publish", headers=participant), 403, "forbidden")
    expect(http.post(f"/v1/consultations/{cid}/publish", headers=org),
           409, "consultation_published")
    organisers = f"/v1/consultations/{cid}/organisers"
    expect(http.post(organisers, headers=org, json={}), 422, "invalid_request")
    expect(http.post(organisers, headers=org, json={"person_id": UNKNOWN}),
           404, "person_not_found")
    dora = http.get("/v1/me", headers=participant).json()["person_id"]
    expect(http.post(organisers, headers=org, json={"person_id": dora}),
           422, "person_not_an_organiser")
    expect(http.post(organisers, headers=participant, json={"person_id": dora}), 403, "forbidden")
    expect(http.get(organisers), 405, "method_not_allowed")
    assert http.get(f"/v1/consultations/{cid}", headers=org).json() == consultation_before

    # proposals: submission, listing, statuses, moderation, reports
    prop = consultation_before["proposals"][0]["id"]  # the organiser's: published
    proposals = f"/v1/consultations/{cid}/proposals"
    expect(http.post(proposals, json={"title": "x"}), 401, "missing_token")
    expect(http.post(proposals, headers=participant, json={"title": "x"}), 409,
           "proposals_closed")  # no proposals step in its calendar
    for bad in ({}, {"title": "x", "estimated_cost": -5}, {"title": "x", "estimated_cost": 9.99},
                {"title": "x", "estimated_cost": "10"}, {"title": "x", "category": "with space"},
                {"title": "x", "district": "*"}, {"title": "x", "status": "published"}):
        expect(http.post(proposals, headers=org, json=bad), 422, "invalid_request")
    expect(http.post(proposals, headers={**org, **malformed["headers"]},
                     content=malformed["content"]), 400, "malformed_json")
    for params in ({"status": "hidden"}, {"limit": 0}, {"limit": 101}, {"q": ""},
                   {"category": "a b"}, {"cursor": ""}):
        expect(http.get(proposals, params=params), 422, "invalid_request")
    expect(http.get(proposals, params={"cursor": "nope"}), 422, "invalid_cursor")
    expect(http.get(f"/v1/consultations/{UNKNOWN}/proposals"), 404, "consultation_not_found")
    expect(http.get(f"/v1/proposals/{UNKNOWN}"), 404, "proposal_not_found")
    expect(http.delete(f"/v1/proposals/{prop}"), 405, "method_not_allowed")
    for action in ("publish", "select", "implement", "unhide"):
        expect(http.post(f"/v1/proposals/{UNKNOWN}/{action}", headers=org), 404,
               "proposal_not_found")
        expect(http.post(f"/v1/proposals/{prop}/{action}", headers=participant), 403,
               "forbidden")
        expect(http.post(f"/v1/proposals/{prop}/{action}"), 401, "missing_token")
    expect(http.post(f"/v1/proposals/{prop}/publish", headers=org), 409, "proposal_published")
    expect(http.post(f"/v1/proposals/{prop}/implement", headers=org), 409, "proposal_published")
    expect(http.post(f"/v1/proposals/{prop}/unhide", headers=org), 409, "proposal_not_hidden")
    for action in ("reject", "hide", "reports"):
        for bad in ({}, {"reason": ""}, {"reason": "x" * 2001}, {"reason": "x", "extra": 1}):
            expect(http.post(f"/v1/proposals/{prop}/{action}", headers=org, json=bad),
                   422, "invalid_request")
        expect(http.post(f"/v1/proposals/{UNKNOWN}/{action}", headers=org,
                         json={"reason": "x"}), 404, "proposal_not_found")
    expect(http.post(f"/v1/proposals/{prop}/reports", json={"reason": "x"}), 401,
           "missing_token")
    expect(http.get(f"/v1/proposals/{prop}/reports", headers=participant), 403, "forbidden")
    expect(http.get(f"/v1/proposals/{UNKNOWN}/reports", headers=org), 404, "proposal_not_found")
    assert http.get(f"/v1/consultations/{cid}", headers=org).json() == consultation_before

    # polls
    expect(http.get(f"/v1/polls/{UNKNOWN}"), 404, "poll_not_found")
    expect(http.delete(f"/v1/polls/{pid}"), 405, "method_not_allowed")
    expect(http.post(f"/v1/polls/{UNKNOWN}/open", headers=org), 404, "poll_not_found")
    before = http.get(f"/v1/polls/{pid}", headers=org).json()
    r = http.post(f"/v1/polls/{pid}/open", headers=org)  # a retry: sent again, no change
    assert (r.status_code, r.json()) == (200, before), r.text
    expect(http.patch(f"/v1/polls/{pid}", headers=org, json={"rules": YES_NO}),
           409, "poll_rules_frozen")
    expect(http.patch(f"/v1/polls/{pid}", headers=org,
                      json={"rules": {"method": "approval", "question": "?", "options": []}}),
           422, "invalid_request")
    expect(http.patch(f"/v1/polls/{pid}", headers=org, json={"rules": YES_NO, "status": "draft"}),
           422, "invalid_request")
    expect(http.patch(f"/v1/polls/{UNKNOWN}", headers=org, json={"rules": YES_NO}),
           404, "poll_not_found")
    expect(http.patch(f"/v1/polls/{pid}", headers=participant, json={"rules": YES_NO}),
           403, "forbidden")
    expect(http.post(f"/v1/polls/{pid}/close", headers=participant), 403, "forbidden")
    expect(http.post(f"/v1/polls/{pid}/close"), 401, "missing_token")
    expect(http.post(f"/v1/polls/{UNKNOWN}/voting-token", headers=participant),
           404, "poll_not_found")
    expect(http.post(f"/v1/polls/{pid}/voting-token"), 401, "missing_token")
    token = http.post(f"/v1/polls/{pid}/voting-token", headers=participant).json()["voting_token"]
    ballot = {"choice": {"method": "yes_no_abstain", "answer": "yes"}}
    expect(http.post(f"/v1/polls/{pid}/ballots", json=ballot), 401, "missing_token")
    expect(http.post(f"/v1/polls/{pid}/ballots", json=ballot, headers=bearer("x.y.z")),
           401, "voting_token_invalid")
    # An access token is not a voting token (wrong audience).
    expect(http.post(f"/v1/polls/{pid}/ballots", json=ballot, headers=participant),
           401, "voting_token_invalid")
    expect(http.post(f"/v1/polls/{UNKNOWN}/ballots", json=ballot, headers=bearer(token)),
           403, "voting_token_wrong_poll")
    # The shape of a ballot is the edge's to check; its fit with the rules, the poll's.
    for choice in ({"answer": "yes"}, {"method": "yes_no_abstain", "answer": "maybe"},
                   {"method": "yes_no_abstain", "answer": "yes", "x": 1},
                   {"method": "plurality", "answer": "yes"}):
        expect(http.post(f"/v1/polls/{pid}/ballots", json={"choice": choice},
                         headers=bearer(token)), 422, "invalid_request")
    expect(http.post(f"/v1/polls/{pid}/ballots",
                     json={"choice": {"method": "approval", "approved": ["p1"]}},
                     headers=bearer(token)), 422, "ballot_invalid")
    expect(http.post(f"/v1/polls/{pid}/ballots", json={}, headers=bearer(token)),
           422, "invalid_request")
    expect(http.post(f"/v1/polls/{pid}/ballots", headers={**bearer(token),
                                                          **malformed["headers"]},
                     content=malformed["content"]), 400, "malformed_json")
    expect(http.get(f"/v1/polls/{pid}/ballots"), 405, "method_not_allowed")
    expect(http.get(f"/v1/polls/{pid}/results"), 409, "result_not_published")
    expect(http.get(f"/v1/polls/{UNKNOWN}/results"), 404, "poll_not_found")
    # results visibility: the setting, the organiser's publication, live counts, exports
    expect(http.patch(f"/v1/polls/{pid}", headers=org,
                      json={"rules": YES_NO, "results_visibility": "sometimes"}),
           422, "invalid_request")
    expect(http.patch(f"/v1/polls/{pid}", headers=org,
                      json={"rules": YES_NO, "results_visibility": "embargoed"}),
           409, "poll_rules_frozen")
    expect(http.post(f"/v1/consultations/{cid}/polls", headers=org,
                     json={"rules": YES_NO, "results_visibility": "never"}),
           422, "invalid_request")
    expect(http.post(f"/v1/polls/{pid}/publish"), 401, "missing_token")
    expect(http.post(f"/v1/polls/{pid}/publish", headers=participant), 403, "forbidden")
    expect(http.post(f"/v1/polls/{UNKNOWN}/publish", headers=org), 404, "poll_not_found")
    expect(http.post(f"/v1/polls/{pid}/publish", headers=org), 409, "poll_not_embargoed")
    expect(http.get(f"/v1/polls/{pid}/publish"), 405, "method_not_allowed")
    expect(http.get(f"/v1/polls/{pid}/results/live"), 409, "results_hidden")
    expect(http.get(f"/v1/polls/{UNKNOWN}/results/live"), 404, "poll_not_found")
    expect(http.post(f"/v1/polls/{pid}/results/live"), 405, "method_not_allowed")
    for export in ("results.csv", "results.json"):
        expect(http.get(f"/v1/polls/{pid}/{export}"), 409, "result_not_published")
        expect(http.get(f"/v1/polls/{UNKNOWN}/{export}"), 404, "poll_not_found")
    expect(http.get(f"/v1/polls/{pid}/results.xlsx"), 404, "route_not_found")

    # audit
    expect(http.get(f"/v1/audit/polls/{pid}/record"), 409, "result_not_published")
    expect(http.get(f"/v1/audit/polls/{UNKNOWN}/record"), 404, "poll_not_found")
    expect(http.get(f"/v1/audit/polls/{pid}/record.ndjson"), 409, "result_not_published")
    expect(http.get(f"/v1/audit/polls/{UNKNOWN}/record.ndjson"), 404, "poll_not_found")
    for query in ("limit=0", "limit=10001", "start=-1", "start=x", "limit="):
        expect(http.get(f"/v1/audit/polls/{pid}/record?{query}"), 422, "invalid_request")
    expect(http.get(f"/v1/audit/polls/{UNKNOWN}/result"), 404, "poll_not_found")
    expect(http.get(f"/v1/audit/polls/{UNKNOWN}/rules"), 404, "poll_not_found")
    expect(http.get(f"/v1/audit/polls/{pid}/trackers/NOPE"), 409, "result_not_published")
    expect(http.get("/v1/nowhere"), 404, "route_not_found")

    # Nothing above changed anything: the poll is as it was, and the participant's
    # first real ballot is their first.
    assert http.get(f"/v1/polls/{pid}").json() == poll_before
    assert http.get(f"/v1/consultations/{cid}", headers=org).json() == consultation_before
    r = http.post(f"/v1/polls/{pid}/ballots", json=ballot, headers=bearer(token))
    assert r.status_code == 201 and r.json()["sequence"] == 1, r.text
