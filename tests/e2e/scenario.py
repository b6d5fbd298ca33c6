"""The foundation's vertical slice, as one scenario run against either profile.

It speaks HTTP only, so the very same steps exercise the embedded process and
the distributed system (gateway + four services + RabbitMQ + Cassandra).
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner

from urne.counting import count
from urne.counting.rules import rules_adapter, rules_hash
from urne.record import log, merkle
from urne.record.canonical import canonical_json
from urne.runtime.cli import app

ORGANISER = "organiser@urne.example"
ORGANISER_B = "organiser.b@urne.example"
ADMIN = "admin@urne.example"
# What every system under test is given: its roles (the settings URNE_ORGANISER_EMAILS
# and URNE_ADMIN_EMAILS): two organisers, to show one cannot act on the other's
# consultations, and an admin; and the countries it texts sign-in codes to (tests/e2e/
# sms.py); and a log that grows every second from a single ballot, so every poll's
# record is checked against the tree heads signed while it was open; and a minimum cell
# size of 2 for the agents' lines, so a test's few desk and paper ballots show both a
# published line and a pooled one (tests/e2e/cross_channel.py).
TEST_ENV = {"URNE_ORGANISER_EMAILS": f"{ORGANISER},{ORGANISER_B}", "URNE_ADMIN_EMAILS": ADMIN,
            "URNE_SMS_COUNTRIES": "FR,BE", "URNE_TREE_HEAD_SECONDS": "1",
            "URNE_TREE_HEAD_MIN_BALLOTS": "1", "URNE_MIN_CELL": "2"}
YES_NO = {"method": "yes_no_abstain", "question": "Faut-il planter 200 arbres ?"}
PROBLEM = "application/problem+json"


def read_code(outbox: Path, email: str) -> str:
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    return [m for m in lines if m["to"] == email][-1]["code"]


# Access tokens already obtained, by (system, e-mail): signing in anew each time would
# soon meet the per-address limit on codes, in a system the tests of a module share.
_signed_in: dict[tuple[str, Path, str], dict[str, str]] = {}


def login(http: httpx.Client, outbox: Path, email: str) -> dict[str, str]:
    known = (str(http.base_url), outbox, email)
    if known not in _signed_in:
        _signed_in[known] = sign_in(http, outbox, email)
    return _signed_in[known]


def sign_in(http: httpx.Client, outbox: Path, email: str) -> dict[str, str]:
    r = http.post("/v1/auth/codes", json={"email": email})
    assert r.status_code == 202, r.text
    r = http.post("/v1/auth/tokens", json={"email": email, "code": read_code(outbox, email)})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until(predicate: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def wait_for(fn: Callable[[], httpx.Response], status: int, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


@dataclass
class OpenPoll:
    poll_id: str
    organiser: dict[str, str]
    receipts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    last_ballot: tuple[str, dict[str, Any]] = ("", {})  # (voter, choice): accepted, sent last


def open_poll(http: httpx.Client, outbox: Path, rules: dict[str, Any] = YES_NO,
              results_visibility: str | None = None, cross_channel: str | None = None
              ) -> OpenPoll:
    org = login(http, outbox, ORGANISER)
    r = http.post("/v1/consultations", headers=org,
                  json={"title": "Parc des Gayeulles", "description": "Que planter ?"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    # A poll opens only in a published consultation.
    r = http.post(f"/v1/consultations/{cid}/publish", headers=org)
    assert r.status_code == 200 and r.json()["status"] == "published", r.text
    r = http.post(f"/v1/consultations/{cid}/proposals", headers=org,
                  json={"title": "Planter 200 arbres", "body": "Le long de l'allée nord."})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    visibility = {"results_visibility": results_visibility} if results_visibility else {}
    policy = {"cross_channel": cross_channel} if cross_channel else {}
    r = http.post(f"/v1/consultations/{cid}/polls", headers=org,
                  json={"proposal_id": pid, "rules": rules, **visibility, **policy})
    assert r.status_code == 201, r.text
    poll = r.json()
    assert poll["results_visibility"] == (results_visibility or "after_close")
    assert poll["cross_channel"] == (cross_channel or "latest_wins")
    assert poll["status"] == "draft" and poll["rules_hash"] is None
    r = http.post(f"/v1/polls/{poll['id']}/open", headers=org)
    assert r.status_code == 200, r.text
    opened = r.json()
    assert opened["status"] == "open"
    assert opened["rules_hash"] == rules_hash(rules_adapter.validate_python(rules))
    listing = http.get(f"/v1/consultations/{cid}").json()
    assert [p["id"] for p in listing["proposals"]] == [pid]
    assert [p["id"] for p in listing["polls"]] == [poll["id"]]
    return OpenPoll(poll["id"], org)


def voting_token(http: httpx.Client, outbox: Path, state: OpenPoll, email: str) -> str:
    if email not in state.tokens:
        user = login(http, outbox, email)
        r = http.post(f"/v1/polls/{state.poll_id}/voting-token", headers=user)
        assert r.status_code == 201, r.text
        state.tokens[email] = r.json()["voting_token"]
    return state.tokens[email]


def vote(http: httpx.Client, outbox: Path, state: OpenPoll, email: str,
         choice: str | dict[str, Any]) -> None:
    """``choice``: a yes/no/abstain answer, or a whole ballot of any method."""
    if isinstance(choice, str):
        choice = {"method": "yes_no_abstain", "answer": choice}
    r = http.post(f"/v1/polls/{state.poll_id}/ballots",
                  headers=bearer(voting_token(http, outbox, state, email)),
                  json={"choice": choice})
    assert r.status_code == 201, r.text
    state.last_ballot = (email, choice)
    receipt = r.json()
    previous = state.receipts.setdefault(email, [])
    assert receipt["sequence"] == len(previous) + 1
    assert receipt["replaces_previous"] == bool(previous)
    previous.append(receipt)


def close_and_verify(http: httpx.Client, state: OpenPoll,
                     expected: dict[str, int] | None = None,
                     tally: dict[str, Any] | None = None) -> dict[str, Any]:
    """Close, wait for publication, and check the result as an auditor would.

    ``expected``: a yes/no/abstain poll's counts; ``tally``: for any method, what the
    published tally must hold (worked out by hand in the test, not by urne)."""
    pid = state.poll_id
    r = http.get(f"/v1/polls/{pid}/results")
    assert r.status_code == 409 and r.json()["code"] == "result_not_published", r.text
    r = http.post(f"/v1/polls/{pid}/close", headers=state.organiser)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    r = wait_for(lambda: http.get(f"/v1/polls/{pid}/results"), 200)
    assert r.status_code == 200, r.text
    summary = r.json()
    if expected is not None:
        assert summary["tally"]["counts"] == expected
    for key, value in (tally or {}).items():
        assert summary["tally"][key] == value, (key, summary["tally"])
    assert wait_until(lambda: http.get(f"/v1/polls/{pid}").json()["status"] == "published"), \
        "the proposal service never saw the result published"
    audit(http, state, summary, expected)
    return summary


def audit(http: httpx.Client, state: OpenPoll, summary: dict[str, Any],
          expected: dict[str, int] | None = None) -> None:
    """Check a published result as an auditor would (``summary``: its ``/results``)."""
    pid = state.poll_id
    # The auditor's view: rules, record, signed result, proofs, keys.
    rules = http.get(f"/v1/audit/polls/{pid}/rules").json()
    record = http.get(f"/v1/audit/polls/{pid}/record").json()
    signed = http.get(f"/v1/audit/polls/{pid}/result").json()
    keys = {k["name"]: k for k in http.get("/v1/audit/keys").json()["keys"]}

    leaves = [merkle.leaf_hash(canonical_json(e)) for e in record["entries"]]
    assert merkle.root(leaves).hex() == record["root"] == summary["record_root"]
    # The record is the log of every ballot accepted (urne.record.v2): revotes too.
    assert record["size"] == sum(len(r) for r in state.receipts.values())
    counted = log.counted(record["entries"])
    assert len(counted) == len(state.receipts)
    if expected is not None:
        assert len(counted) == sum(expected.values())
    result = signed["result"]
    assert (result["ballots_received"], result["ballots_counted"]) == (record["size"],
                                                                       len(counted))
    assert result["reconciliation"]["channels"] == log.channels(record["entries"])
    # The tree heads signed while the poll was open: the record extends each.
    heads = http.get(f"/v1/audit/polls/{pid}/heads").json()["heads"]
    for signed_head in heads:
        head = signed_head["head"]
        assert head["size"] in result["record"]["heads"]
        assert merkle.root(leaves[:head["size"]]).hex() == head["root"]
        public_head = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(
            keys["tally-result"]["public_key"] + "=="))
        public_head.verify(base64.urlsafe_b64decode(signed_head["signature"] + "=="),
                           canonical_json(head))
    # Counting the latest ballots' choices with the frozen rules gives the signed tally.
    frozen = rules_adapter.validate_python(rules["rules"])
    assert count(frozen, [e["choice"] for e in counted]) == result["tally"]
    assert result["record"]["root"] == record["root"]
    assert result["rules_hash"] == rules["rules_hash"]
    tally_key = keys["tally-result"]
    assert signed["key_id"] == tally_key["kid"]
    public = Ed25519PublicKey.from_public_bytes(
        base64.urlsafe_b64decode(tally_key["public_key"] + "=="))
    public.verify(base64.urlsafe_b64decode(signed["signature"] + "=="), canonical_json(result))

    # The same record whole as NDJSON (each line the canonical bytes of its leaf), and
    # page by page, following the ``next`` links.
    download = http.get(f"/v1/audit/polls/{pid}/record.ndjson")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("application/x-ndjson")
    assert (int(download.headers["urne-record-size"]), download.headers["urne-record-root"]) \
        == (record["size"], record["root"])
    lines = download.content.split(b"\n")
    assert lines[-1] == b"" and lines[:-1] == [canonical_json(e) for e in record["entries"]]
    assert [merkle.leaf_hash(line) for line in lines[:-1]] == leaves
    paged, url = [], f"/v1/audit/polls/{pid}/record?limit=2"
    while url is not None:
        page = http.get(url).json()
        assert page["start"] == len(paged) and len(page["entries"]) <= 2, page
        paged += page["entries"]
        url = page["next"]
    assert paged == record["entries"]

    # Only each voter's last ballot is counted, the others are in the log as replaced;
    # every tracker has a proof.
    trackers = {e["tracker"] for e in counted}
    entries = {e["tracker"]: e for e in record["entries"]}
    for receipts in state.receipts.values():
        *replaced, last = receipts
        assert last["tracker"] in trackers
        assert not {r["tracker"] for r in replaced} & trackers
        assert all(r["tracker"] in entries for r in replaced)
        for receipt in receipts:
            proof = http.get(f"/v1/audit/polls/{pid}/trackers/{receipt['tracker']}").json()
            assert proof["index"] == entries[receipt["tracker"]]["height"]
            assert merkle.verify_inclusion(bytes.fromhex(proof["leaf"]), proof["index"],
                                           proof["size"],
                                           [bytes.fromhex(h) for h in proof["path"]],
                                           bytes.fromhex(record["root"]))
    # The open verifier, as an auditor runs it, agrees: every check holds.
    last_tracker = next(iter(state.receipts.values()))[-1]["tracker"]
    verified = CliRunner().invoke(app, ["audit", "verify", "--url", str(http.base_url),
                                        "--poll", pid, "--receipt", last_tracker,
                                        "--kid", tally_key["kid"], "--json"])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.output)
    assert report["ok"] and [c["name"] for c in report["checks"] if c["ok"]] == [
        "signature", "rules", "record", "tally", *(["heads"] if heads else []),
        "inclusion"], report
    assert report["timings"]["download_s"] >= 0 and report["ballots"] == record["size"]
    # Saved as a bundle, the same documents verify offline.
    with tempfile.TemporaryDirectory() as folder:
        fetched = CliRunner().invoke(app, ["audit", "fetch", "--url", str(http.base_url),
                                           "--poll", pid, "--out", folder,
                                           "--receipt", last_tracker])
        assert fetched.exit_code == 0, fetched.output
        offline = CliRunner().invoke(app, ["audit", "verify", "--bundle", folder,
                                           "--receipt", last_tracker, "--kid",
                                           tally_key["kid"], "--json"])
        assert offline.exit_code == 0, offline.output
        assert json.loads(offline.output)["checks"] == report["checks"]

    # A closed poll takes no more ballots.
    voter, choice = state.last_ballot
    r = http.post(f"/v1/polls/{pid}/ballots", headers=bearer(state.tokens[voter]),
                  json={"choice": choice})
    assert r.status_code == 409 and r.json()["code"] == "poll_closed", r.text


def run_slice(http: httpx.Client, outbox: Path) -> dict[str, Any]:
    state = open_poll(http, outbox)
    vote(http, outbox, state, "alice@example.org", "no")
    vote(http, outbox, state, "bob@example.org", "abstain")
    vote(http, outbox, state, "alice@example.org", "yes")  # alice changes her mind
    vote(http, outbox, state, "chloe@example.org", "yes")
    return close_and_verify(http, state, {"yes": 2, "no": 0, "abstain": 1})
