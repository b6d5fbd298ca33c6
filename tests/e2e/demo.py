"""``urne demo`` on a running urne, either profile, then ``urne audit verify`` on every
poll it made (the audit issue's acceptance: a newcomer's first run, checked as an
auditor would)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.e2e.scenario import ADMIN, ORGANISER
from tests.support.audit_schema import conforms
from urne.runtime.cli import app

METHODS = ["yes_no_abstain", "approval", "ranking", "majority_judgment", "budget"]


def run_demo(http: httpx.Client, outbox: Path, bulk: bool = False) -> None:
    # Signing in, the demo also enters three paper ballots a poll (as its admin).
    options = ["--bulk"] if bulk else ["--paper", "3", "--admin-email", ADMIN]
    paper = 0 if bulk else 3
    done = CliRunner().invoke(app, ["demo", "--url", str(http.base_url), "--participants",
                                    "8", "--outbox", str(outbox), "--organiser-email",
                                    ORGANISER, "--seed", "7", *options])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert [p["method"] for p in report["polls"]] == METHODS
    assert all((p["voters"], p["paper"]) == (8, paper) for p in report["polls"])
    for poll in report["polls"]:
        # Its result is public: every ballot counted once, the last of each voter.
        summary = http.get(f"/v1/polls/{poll['poll_id']}/results").json()
        assert summary["tally"]["ballots"] == 8 + paper
        assert summary["record_root"] == poll["record_root"]
        verified = CliRunner().invoke(app, ["audit", "verify", "--url", str(http.base_url),
                                            "--poll", poll["poll_id"], "--json"])
        assert verified.exit_code == 0, verified.output
        checks = json.loads(verified.stdout)["checks"]
        served_heads = http.get(f"/v1/audit/polls/{poll['poll_id']}/heads").json()
        heads = served_heads["heads"]
        assert heads, "a head is signed at publication at least"
        assert [(c["name"], c["ok"]) for c in checks] == [
            ("signature", True), ("rules", True), ("record", True), ("tally", True),
            ("heads", True)], checks
        # A light client that saved the first head follows the log to the last by a
        # consistency proof, without the record.
        with tempfile.TemporaryDirectory() as folder:
            saved = Path(folder) / "head.json"
            saved.write_text(json.dumps(heads[0]))
            followed = CliRunner().invoke(app, [
                "audit", "head", "--url", str(http.base_url), "--poll", poll["poll_id"],
                "--head", str(saved), "--json"])
            # A head that is not the one signed (its root changed) is refused.
            saved.write_text(json.dumps({**heads[0], "head": {**heads[0]["head"],
                                                              "root": "0" * 64}}))
            forged = CliRunner().invoke(app, [
                "audit", "head", "--url", str(http.base_url), "--poll", poll["poll_id"],
                "--head", str(saved), "--json"])
            assert forged.exit_code == 1, forged.output
            assert [c["name"] for c in json.loads(forged.stdout)["checks"]
                    if not c["ok"]] == ["saved head"]
        assert followed.exit_code == 0, followed.output
        report = json.loads(followed.stdout)
        assert report["latest"] == heads[-1] and all(c["ok"] for c in report["checks"])
        # Each document, as served, conforms to the published schema.
        audit = f"/v1/audit/polls/{poll['poll_id']}"
        page = http.get(f"{audit}/record").json()
        served = {"frozen_rules": http.get(f"{audit}/rules").json(),
                  "signed_result": http.get(f"{audit}/result").json(), "record_page": page,
                  "inclusion_proof": http.get(
                      f"{audit}/trackers/{page['entries'][0]['tracker']}").json(),
                  "keys": http.get("/v1/audit/keys").json(), "tree_heads": served_heads,
                  "consistency_proof": http.get(f"{audit}/consistency", params={
                      "first": heads[0]["head"]["size"]}).json()}
        assert {name: conforms(name, doc) for name, doc in served.items()} == {
            name: [] for name in served}
        # The demo's papers were entered by one agent (its admin): all theirs.
        reconciliation = served["signed_result"]["result"]["reconciliation"]
        if paper:
            [cells] = reconciliation["agents"].values()
            assert cells == {"paper": reconciliation["channels"]["paper"]}, reconciliation
        else:
            assert "agents" not in reconciliation
