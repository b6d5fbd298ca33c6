"""A person deletes their account over HTTP, either profile (issue 9, privacy): their
profile goes; signing in again with the same address gives them the same voter key, so
the ballot they cast then replaces the one before it: one person, one counted ballot."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.e2e.scenario import close_and_verify, login, open_poll, sign_in, vote


def run_account_deletion(http: httpx.Client, outbox: Path) -> None:
    state = open_poll(http, outbox)
    email = f"leaving-{uuid.uuid4().hex[:8]}@example.org"
    vote(http, outbox, state, email, "yes")
    user = login(http, outbox, email)
    r = http.delete("/v1/me", headers=user)
    assert r.status_code == 204, r.text
    r = http.get("/v1/me", headers=user)
    assert (r.status_code, r.json()["code"]) == (404, "person_not_found"), r.text

    again = sign_in(http, outbox, email)
    assert http.get("/v1/me", headers=again).json()["email"] == email
    r = http.post(f"/v1/polls/{state.poll_id}/voting-token", headers=again)
    assert r.status_code == 201, r.text
    state.tokens[email] = r.json()["voting_token"]
    vote(http, outbox, state, email, "no")  # its sequence 2: the same voter, a revote
    close_and_verify(http, state, {"yes": 0, "no": 1, "abstain": 0})
