"""Abuse limits on sign-in over HTTP, either profile (issue 9's acceptance): a
stranger's code requests for an address do not stop its owner, and one client's wrong
guesses spread over many addresses are stopped for that client only. Clients are told
apart by the address the trusted proxy forwards (``X-Forwarded-For`` from loopback,
which ``URNE_TRUSTED_PROXIES`` trusts by default), each run in its own IPv6 /64."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import httpx

from tests.e2e.scenario import PROBLEM, read_code

SENDS_FROM_ONE_CLIENT = 5  # urne/services/identity/limits.py
FAILURES_FROM_ONE_CLIENT = 30
WRONG_CODES_PER_ADDRESS = 5  # urne/services/identity/domain.py: MAX_ATTEMPTS


def client() -> dict[str, str]:
    """A client of its own: a /64 of the documentation prefix nobody else uses."""
    return {"X-Forwarded-For": f"2001:db8:{secrets.randbelow(65536):x}:"
                               f"{secrets.randbelow(65536):x}::1"}


def address() -> str:
    return f"limits-{uuid.uuid4().hex[:10]}@example.org"


def run_sign_in_limits(http: httpx.Client, outbox: Path) -> None:
    owner, stranger, guesser = client(), client(), client()
    email = address()
    assert http.post("/v1/auth/codes", json={"email": email}, headers=owner).status_code == 202
    owners_code = read_code(outbox, email)

    # The stranger asks for the owner's address until stopped.
    for _ in range(SENDS_FROM_ONE_CLIENT):
        r = http.post("/v1/auth/codes", json={"email": email}, headers=stranger)
        assert r.status_code == 202, r.text
    r = http.post("/v1/auth/codes", json={"email": email}, headers=stranger)
    assert (r.status_code, r.headers["content-type"]) == (429, PROBLEM), r.text
    assert r.json()["code"] == "code_rate_limited"
    assert 0 < int(r.headers["retry-after"]) <= 3600
    # The owner signs in with the code they were typing, and may ask for another.
    r = http.post("/v1/auth/tokens", json={"email": email, "code": owners_code}, headers=owner)
    assert r.status_code == 200, r.text
    assert http.post("/v1/auth/codes", json={"email": email}, headers=owner).status_code == 202

    # Five wrong codes for an address burn its pending codes (kept, though refused).
    burnt, prober = address(), client()
    assert http.post("/v1/auth/codes", json={"email": burnt}, headers=owner).status_code == 202
    right = read_code(outbox, burnt)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    for _ in range(WRONG_CODES_PER_ADDRESS):
        r = http.post("/v1/auth/tokens", json={"email": burnt, "code": wrong}, headers=prober)
        assert r.status_code == 401, r.text
    r = http.post("/v1/auth/tokens", json={"email": burnt, "code": right}, headers=owner)
    assert (r.status_code, r.json()["code"]) == (401, "code_invalid"), r.text

    # One client's guesses over many addresses: one answer until the client is stopped.
    answers = [http.post("/v1/auth/tokens", json={"email": address(), "code": "000000"},
                         headers=guesser) for _ in range(100)]
    first = [(a.status_code, a.json()) for a in answers[:FAILURES_FROM_ONE_CLIENT]]
    assert all(a == first[0] for a in first) and first[0][0] == 401, first[0]
    assert first[0][1]["code"] == "code_invalid"
    stopped = answers[FAILURES_FROM_ONE_CLIENT:]
    assert {(a.status_code, a.json()["code"]) for a in stopped} == {(429, "too_many_attempts")}, \
        [(a.status_code, a.json()["code"]) for a in stopped]
    assert all(0 < int(a.headers["retry-after"]) <= 15 * 60 for a in stopped)
    # Only that client: someone else signs in at once.
    other = address()
    assert http.post("/v1/auth/codes", json={"email": other}, headers=owner).status_code == 202
    r = http.post("/v1/auth/tokens", json={"email": other, "code": read_code(outbox, other)},
                  headers=owner)
    assert r.status_code == 200, r.text
