"""A short ``urne loadtest`` of each profile, as CI's check that the benchmark runs and
that every accepted ballot is stored and counted, by id (the figures themselves are
measured on purpose, in docs/performance.md, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import require_cassandra, require_rabbitmq

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--participants", "60", "--rate", "25", "--duration", "3", "--seed", "11"]


def loadtest(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "urne", "loadtest", *args, "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def check(report: dict) -> None:
    assert report["accepted_equals_stored"] is True
    assert report["counted_trackers_equal_last_accepted"] is True
    assert report["accepted"] == report["stored"] > 0
    assert report["counted"] == report["voters"] > 0
    # The only refusals are the invalid ballots the plan sends on purpose (an answer the
    # ballot's schema does not allow: the edge refuses it).
    assert set(report["rejected"]) <= {"invalid_request"}
    assert report["rejected"].get("invalid_request", 0) == report["kinds"].get("invalid", 0)
    for field in ("ballots_per_s", "p50_ms", "p99_ms", "cpu_ms_per_ballot",
                  "cpu_ms_per_signin", "client_cpu_ms_per_request"):
        assert report[field] > 0, field
    # Every 201 (each accepted ballot, and each duplicate answered with its receipt)
    # falls in one 5 s window of the schedule.
    windows = report["latency_by_5s"]
    assert sum(w["n"] for w in windows.values()) == \
        report["accepted"] + report["kinds"].get("duplicate", 0)
    assert all(0 < w["p50_ms"] <= w["p99_ms"] for w in windows.values())
    ratios = report["cpu_per_ballot_in_client_requests"]
    assert set(ratios) == {"intake", *report["cpu_ms_per_ballot_by_process"]}
    assert ratios["intake"] > 0 and all(v >= 0 for v in ratios.values())
    machine = report["machine_during_ballots"]
    assert 0 < machine["busy_pct"] <= 100 and 0 <= machine["steal_pct"] <= 100
    assert machine["cores"] > 0 and machine["unmeasured_cores"] >= 0
    # Read from the tally's own histogram: a bucket bound, and a short run keeps up.
    assert report["tally_lag_p99_s"] in (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


@pytest.mark.e2e
def test_embedded(tmp_path: Path) -> None:
    report = loadtest(tmp_path, "--profile", "embedded", *SHORT)
    check(report)
    assert set(report["cpu_ms_per_ballot_by_process"]) == {"up"}


@pytest.mark.e2e
@pytest.mark.distributed
def test_distributed(tmp_path: Path) -> None:
    require_rabbitmq()
    require_cassandra()
    report = loadtest(tmp_path, "--profile", "distributed", "--vote-workers", "2",
                      "--shards", "4", *SHORT)
    check(report)
    assert {"gateway", "vote-worker", "rabbitmq", "cassandra"} <= set(
        report["cpu_ms_per_ballot_by_process"])
    assert report["broker_confirm_rate"] > 0 and report["ratio"] > 0
