"""Sign-in by SMS over HTTP, either profile (issue 9's acceptance: SMS): someone without
an e-mail address gets a code on their mobile, signs in, and votes; numbers the operator
does not text (another country, a premium-rate range, not a number) are refused with a
clear problem and nothing sent."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx

from tests.e2e.scenario import PROBLEM, bearer, close_and_verify, open_poll, vote


def sms_sent(outbox: Path, phone: str) -> list[dict]:
    """The SMS written for ``phone`` to the development outbox (``sms.jsonl`` beside the
    e-mail one)."""
    path = outbox.with_name("sms.jsonl")
    if not path.exists():
        return []
    return [m for m in map(json.loads, path.read_text().splitlines()) if m["to"] == phone]


def new_mobile() -> str:
    """A French mobile number nobody else in the run uses, in the 061 range (not every
    06 range is allocated: libphonenumber refuses 0639 and 0690, for instance)."""
    return f"+3361{secrets.randbelow(10**7):07d}"


def run_sms(http: httpx.Client, outbox: Path) -> None:
    state = open_poll(http, outbox)
    phone = new_mobile()

    # Refused, with nothing sent: not E.164 (the edge), not a number, a country and a
    # range the operator does not text, an address and a number at once.
    for body, status, code in (
            ({"phone": "06 12 34 56 78"}, 422, "invalid_request"),
            ({"phone": "+3361234"}, 422, "phone_invalid"),
            ({"phone": "+12015550123"}, 422, "phone_refused"),  # the United States
            ({"phone": "+33899123456"}, 422, "phone_refused"),  # a premium-rate range
            ({"phone": "+33123456789"}, 422, "phone_refused"),  # a landline: no SMS
            ({"phone": phone, "email": "someone@example.org"}, 422, "invalid_request")):
        r = http.post("/v1/auth/codes", json=body)
        assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
            status, PROBLEM, code), (body, r.text)
        assert r.json()["detail"], r.text  # a human message
    assert sms_sent(outbox, phone) == []

    r = http.post("/v1/auth/codes", json={"phone": phone})
    assert r.status_code == 202 and r.json() == {"channel": "sms", "expires_in": 600}, r.text
    [message] = sms_sent(outbox, phone)
    code = message["code"]

    # A wrong code, or the right one with another number, gets the one answer of every
    # failure; the code still works afterwards.
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for body in ({"phone": phone, "code": wrong}, {"phone": new_mobile(), "code": code},
                 {"phone": "+12015550123", "code": code}):
        r = http.post("/v1/auth/tokens", json=body)
        assert (r.status_code, r.json()["code"]) == (401, "code_invalid"), r.text
    r = http.post("/v1/auth/tokens", json={"phone": phone, "code": code})
    assert r.status_code == 200 and r.json()["role"] == "participant", r.text
    person = r.json()
    me = http.get("/v1/me", headers=bearer(person["access_token"])).json()
    assert me == {"person_id": person["person_id"], "email": None, "phone": phone,
                  "role": "participant", "district": None, "district_verified": False}

    # Signing in again by SMS is the same person.
    assert http.post("/v1/auth/codes", json={"phone": phone}).status_code == 202
    r = http.post("/v1/auth/tokens",
                  json={"phone": phone, "code": sms_sent(outbox, phone)[-1]["code"]})
    assert r.status_code == 200 and r.json()["person_id"] == person["person_id"], r.text

    # They vote like anyone, and their ballot is counted.
    r = http.post(f"/v1/polls/{state.poll_id}/voting-token",
                  headers=bearer(person["access_token"]))
    assert r.status_code == 201, r.text
    state.tokens[phone] = r.json()["voting_token"]
    vote(http, outbox, state, phone, "yes")
    close_and_verify(http, state, {"yes": 1, "no": 0, "abstain": 0})
