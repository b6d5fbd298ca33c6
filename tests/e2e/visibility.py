"""Results visibility, end to end through the gateway: an embargoed poll whose result
no route shows (summary, exports, audit) until an organiser publishes it, even once the
tally has signed it; then every route shows it and the auditor's checks hold. And a live
poll whose running counts follow a revote. Run against both profiles by test_embedded
and test_distributed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx

from tests.e2e.scenario import (
    ORGANISER_B,
    PROBLEM,
    audit,
    close_and_verify,
    login,
    open_poll,
    vote,
    wait_for,
    wait_until,
)

ALICE, BOB, CHLOE = "alice@example.org", "bob@example.org", "chloe@example.org"


def showing(pid: str, tracker: str) -> list[str]:
    """Every route that shows something of the poll's ballots."""
    return [f"/v1/polls/{pid}/results", f"/v1/polls/{pid}/results.csv",
            f"/v1/polls/{pid}/results.json", f"/v1/audit/polls/{pid}/result",
            f"/v1/audit/polls/{pid}/record", f"/v1/audit/polls/{pid}/trackers/{tracker}"]


def refused(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.text}"
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    assert r.json()["code"] == code, r.json()


def embargoed(http: httpx.Client, outbox: Path) -> None:
    state = open_poll(http, outbox, results_visibility="embargoed")
    pid, org = state.poll_id, state.organiser
    rules = http.get(f"/v1/audit/polls/{pid}/rules").json()
    assert rules["results_visibility"] == "embargoed"  # published, and frozen, at opening
    vote(http, outbox, state, ALICE, "no")
    vote(http, outbox, state, BOB, "yes")
    vote(http, outbox, state, ALICE, "yes")  # alice changes her mind
    vote(http, outbox, state, CHLOE, "abstain")
    tracker = state.receipts[ALICE][-1]["tracker"]
    for path in showing(pid, tracker):
        refused(http.get(path), 409, "result_embargoed")
    refused(http.get(f"/v1/polls/{pid}/results/live"), 409, "results_hidden")
    refused(http.post(f"/v1/polls/{pid}/publish", headers=org), 409, "poll_open")

    r = http.post(f"/v1/polls/{pid}/close", headers=org)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    # The tally signs at the close; the poll says so, and stays closed.
    assert wait_until(lambda: http.get(f"/v1/polls/{pid}").json()["result_signed_at"]
                      is not None), "the tally never signed the result"
    closed = http.get(f"/v1/polls/{pid}").json()
    assert (closed["status"], closed["published_at"]) == ("closed", None)
    # Signed, and still shown to no one: not the result, its exports, the record or a proof.
    for path in showing(pid, tracker):
        refused(http.get(path), 409, "result_embargoed")
    # Only an organiser of its consultation lifts the embargo.
    refused(http.post(f"/v1/polls/{pid}/publish"), 401, "missing_token")
    refused(http.post(f"/v1/polls/{pid}/publish", headers=login(http, outbox, "dora@example.org")),
            403, "forbidden")
    refused(http.post(f"/v1/polls/{pid}/publish", headers=login(http, outbox, ORGANISER_B)),
            403, "not_an_organiser_of_this_consultation")
    for path in showing(pid, tracker):
        refused(http.get(path), 409, "result_embargoed")

    r = http.post(f"/v1/polls/{pid}/publish", headers=org)
    assert r.status_code == 200, r.text
    published = r.json()
    assert published["status"] == "published" and published["published_at"]
    assert published["result_signed_at"] == closed["result_signed_at"]
    r = wait_for(lambda: http.get(f"/v1/polls/{pid}/results"), 200)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["tally"]["counts"] == {"yes": 2, "no": 0, "abstain": 1}
    audit(http, state, summary, {"yes": 2, "no": 0, "abstain": 1})

    r = http.get(f"/v1/polls/{pid}/results.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="poll-{pid}-results.csv"'
    assert list(csv.reader(io.StringIO(r.text, newline=""))) == [
        ["option_id", "votes", "winner"], ["yes", "2", "true"], ["no", "0", "false"],
        ["abstain", "1", "false"]]
    r = http.get(f"/v1/polls/{pid}/results.json")
    assert r.status_code == 200, r.text
    exported = r.json()
    assert (exported["poll_id"], exported["outcome"], exported["winners"]) == \
        (pid, "adopted", ["yes"])
    assert exported["record_root"] == summary["record_root"]
    assert exported["rows"][0] == {"option_id": "yes", "votes": 2, "winner": True}
    # Publishing again changes nothing.
    r = http.post(f"/v1/polls/{pid}/publish", headers=org)
    assert r.status_code == 200 and r.json() == published, r.text


def live(http: httpx.Client, outbox: Path) -> None:
    state = open_poll(http, outbox, results_visibility="live")
    pid = state.poll_id
    assert http.get(f"/v1/audit/polls/{pid}/rules").json()["results_visibility"] == "live"

    def counts() -> dict:
        r = http.get(f"/v1/polls/{pid}/results/live")
        assert r.status_code == 200, r.text
        return dict(r.json())

    first = counts()
    assert (first["ballots"], first["tally"]["counts"]) == (0, {"yes": 0, "no": 0,
                                                                "abstain": 0})
    vote(http, outbox, state, ALICE, "yes")
    vote(http, outbox, state, BOB, "no")
    assert wait_until(lambda: counts()["tally"]["counts"] == {"yes": 1, "no": 1, "abstain": 0})
    vote(http, outbox, state, ALICE, "no")  # alice's revote replaces her yes
    assert wait_until(lambda: counts()["tally"]["counts"] == {"yes": 0, "no": 2, "abstain": 0})
    running = counts()
    assert (running["ballots"], running["ballots_received"]) == (2, 3)
    assert running["as_of"] > first["as_of"]
    # Live counts are not the signed result: that one waits for the close, as always.
    refused(http.get(f"/v1/polls/{pid}/results.csv"), 409, "result_not_published")
    refused(http.post(f"/v1/polls/{pid}/publish", headers=state.organiser), 409,
            "poll_not_embargoed")
    summary = close_and_verify(http, state, {"yes": 0, "no": 2, "abstain": 0})
    assert wait_until(lambda: counts()["tally"] == summary["tally"])


def run_visibility(http: httpx.Client, outbox: Path) -> None:
    embargoed(http, outbox)
    live(http, outbox)
