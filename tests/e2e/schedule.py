"""A poll that opens and closes by itself, end to end through the gateway: its schedule
checked at the edge, opened at its time, its close extended once (a public amendment),
a ballot that came in after the close time refused although the close had not been
sent yet, the close sent by itself and the result published. Run against both profiles
by test_embedded and test_distributed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.scenario import ORGANISER, bearer, login, wait_until
from tests.e2e.scenario import YES_NO as RULES

ALICE, BOB = "alice@example.org", "bob@example.org"


def _at(t: datetime) -> str:
    return t.isoformat()


def _token(http: httpx.Client, outbox: Path, poll_id: str, email: str) -> str:
    user = login(http, outbox, email)
    r = http.post(f"/v1/polls/{poll_id}/voting-token", headers=user)
    assert r.status_code == 201, r.text
    return str(r.json()["voting_token"])


def _cast(http: httpx.Client, poll_id: str, token: str, answer: str) -> httpx.Response:
    return http.post(f"/v1/polls/{poll_id}/ballots", headers=bearer(token),
                     json={"choice": {"method": "yes_no_abstain", "answer": answer}})


def _sleep_until(t: datetime) -> None:
    time.sleep(max(0.0, (t - datetime.now(UTC)).total_seconds()))


def run_schedule(http: httpx.Client, outbox: Path) -> dict[str, Any]:
    org = login(http, outbox, ORGANISER)
    r = http.post("/v1/consultations", headers=org,
                  json={"title": "Budget 2027", "description": "Par quartier"})
    cid = r.json()["id"]
    assert http.post(f"/v1/consultations/{cid}/publish", headers=org).status_code == 200
    now = datetime.now(UTC).replace(microsecond=0)  # the stores keep milliseconds

    # The schedule is checked at creation, and a bad one changes nothing.
    for schedule, code in (
            ({"closes_at": _at(now - timedelta(minutes=1))}, "schedule_in_past"),
            ({"opens_at": _at(now + timedelta(minutes=2)),
              "closes_at": _at(now + timedelta(minutes=1))}, "schedule_invalid"),
            ({"opens_at": "2030-01-01T10:00:00"}, "invalid_request")):  # whose 10:00?
        r = http.post(f"/v1/consultations/{cid}/polls", headers=org,
                      json={"rules": RULES, **schedule})
        assert (r.status_code, r.json()["code"]) == (422, code), r.text
    assert http.get(f"/v1/consultations/{cid}", headers=org).json()["polls"] == []

    opens_at, closes_at = now + timedelta(seconds=3), now + timedelta(seconds=9)
    r = http.post(f"/v1/consultations/{cid}/polls", headers=org,
                  json={"rules": RULES, "opens_at": _at(opens_at), "closes_at": _at(closes_at)})
    assert r.status_code == 201, r.text
    poll = r.json()
    pid = poll["id"]
    assert (poll["status"], poll["amendments"]) == ("draft", [])
    assert datetime.fromisoformat(poll["closes_at"]) == closes_at

    # It opens by itself, at its time (within the schedule's second), not before.
    assert http.get(f"/v1/polls/{pid}", headers=org).json()["status"] == "draft"
    assert wait_until(lambda: http.get(f"/v1/polls/{pid}").status_code == 200
                      and http.get(f"/v1/polls/{pid}").json()["status"] == "open", 20)
    opened = http.get(f"/v1/polls/{pid}").json()
    assert datetime.fromisoformat(opened["opened_at"]) >= opens_at
    alice, bob = _token(http, outbox, pid, ALICE), _token(http, outbox, pid, BOB)
    assert wait_until(lambda: _cast(http, pid, alice, "yes").status_code == 201, 20)

    # An extension moves the close later, never earlier; it is public and announced.
    r = http.post(f"/v1/polls/{pid}/extension", headers=org,
                  json={"closes_at": _at(closes_at - timedelta(seconds=1)), "reason": "x"})
    assert (r.status_code, r.json()["code"]) == (422, "extension_not_later"), r.text
    extended_to = closes_at + timedelta(seconds=3)
    r = http.post(f"/v1/polls/{pid}/extension", headers=org,
                  json={"closes_at": _at(extended_to), "reason": "Affluence en fin de vote"})
    assert r.status_code == 200, r.text
    amended = r.json()
    assert datetime.fromisoformat(amended["closes_at"]) == extended_to
    [amendment] = amended["amendments"]
    assert amendment["kind"] == "close_extended"
    assert datetime.fromisoformat(amendment["previous_closes_at"]) == closes_at
    assert amendment["reason"] == "Affluence en fin de vote"
    assert http.get(f"/v1/polls/{pid}").json()["amendments"] == [amendment]  # public

    # Between the first close time and the extended one, ballots are still taken.
    _sleep_until(closes_at + timedelta(seconds=0.5))
    r = _cast(http, pid, bob, "no")
    assert r.status_code == 201, r.text

    # After the close time, a ballot is refused at once, although the close itself is
    # sent a couple of seconds later (the grace for ballots still on their way).
    _sleep_until(extended_to + timedelta(seconds=0.2))
    r = _cast(http, pid, bob, "yes")  # Bob changing his mind, too late
    assert (r.status_code, r.json()["code"]) == (409, "poll_closed"), r.text
    r = http.post(f"/v1/polls/{pid}/extension", headers=org,
                  json={"closes_at": _at(extended_to + timedelta(hours=1)), "reason": "x"})
    assert (r.status_code, r.json()["code"]) == (409, "poll_closed"), r.text  # final

    # It closes by itself, and the result counts the ballots taken before the close.
    assert wait_until(lambda: http.get(f"/v1/polls/{pid}").json()["status"] == "published",
                      60), http.get(f"/v1/polls/{pid}").json()
    closed = http.get(f"/v1/polls/{pid}").json()
    assert datetime.fromisoformat(closed["closed_at"]) >= extended_to
    summary = http.get(f"/v1/polls/{pid}/results").json()
    assert summary["tally"]["counts"] == {"yes": 1, "no": 1, "abstain": 0}, summary
    return summary
