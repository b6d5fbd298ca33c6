"""Ballot intake through the embedded profile's group commit (no HTTP), against its
building blocks.

    python -m loadtests.ballots [--voters 2000] [--revotes 0.2] [--in-flight 256]

Prints JSON: ballots/s through the whole core (token check, rules, SQLite commit with
fsync in group commits, outbox, tally copy), next to the raw cost of its two heaviest
parts measured in the same run — Ed25519 token verification and a bare SQLite fsynced
insert — so the overhead of urne itself shows as a ratio, whatever the machine's noise.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from urne.contracts.commands import (
    Actor,
    CastBallot,
    ClosePoll,
    CreateConsultation,
    CreatePoll,
    GetResult,
    IssueVotingToken,
    OpenPoll,
    PublishConsultation,
)
from urne.contracts.envelope import Command, wrap
from urne.contracts.ids import new_ballot_id, new_tracker
from urne.counting.rules import YesNoAbstainRules
from urne.crypto.keys import IDENTITY_TOKEN_KEY, load_public_key
from urne.crypto.tokens import TokenVerifier
from urne.platform.settings import EmbeddedSettings


def _send(bus, cmd: Command) -> dict:  # type: ignore[no-untyped-def]
    reply = bus.call(cmd.OWNER, wrap(cmd, "loadtest"))
    assert reply["ok"], reply
    return reply["data"]  # type: ignore[no-any-return]


def bench(voters: int, revotes: float, in_flight: int) -> dict:
    from urne.runtime.embedded import embedded

    data = Path(tempfile.mkdtemp(prefix="urne-bench-"))
    settings = EmbeddedSettings(data_dir=data, environment="test")
    system = embedded(settings)
    bus = system.bus

    organiser = Actor(person_id="bench", role="organiser")
    cid = _send(bus, CreateConsultation(title="bench", actor=organiser))["id"]
    _send(bus, PublishConsultation(consultation_id=cid, actor=organiser))
    rules = YesNoAbstainRules(method="yes_no_abstain", question="bench?")
    pid = _send(bus, CreatePoll(consultation_id=cid, rules=rules, actor=organiser))["id"]
    _send(bus, OpenPoll(poll_id=pid, actor=organiser))
    tokens = [_send(bus, IssueVotingToken(person_id=f"p{i}", poll_id=pid))["voting_token"]
              for i in range(voters)]
    rng = random.Random(7)
    casts = tokens + rng.sample(tokens, int(voters * revotes))
    answers = ("yes", "no", "abstain")

    envelopes = [wrap(CastBallot(poll_id=pid, voting_token=t, choice={"answer": rng.choice(
        answers)}, ballot_id=new_ballot_id(), tracker=new_tracker(),
        received_at=datetime.now(UTC)), "loadtest") for t in casts]
    started = time.perf_counter()
    for wave in range(0, len(envelopes), in_flight):  # as many in flight as HTTP clients
        futures = [system.ballots.submit(env) for env in envelopes[wave:wave + in_flight]]
        for f in futures:
            assert f.result()["ok"], f.result()  # type: ignore[index]
    cast_seconds = time.perf_counter() - started

    started = time.perf_counter()
    _send(bus, ClosePoll(poll_id=pid, actor=organiser))
    close_seconds = time.perf_counter() - started
    result = _send(bus, GetResult(poll_id=pid))["result"]
    assert result["ballots_counted"] == voters, result

    verifier = TokenVerifier(load_public_key(settings.keys_dir, IDENTITY_TOKEN_KEY))
    started = time.perf_counter()
    for t in tokens:
        verifier.voting(t)
    verify_seconds = time.perf_counter() - started

    conn = sqlite3.connect(data / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    started = time.perf_counter()
    for i in range(len(casts)):
        conn.execute("INSERT INTO t VALUES (?, ?)", (f"k{i}", "v"))
    raw_seconds = time.perf_counter() - started

    ballots_per_s = len(casts) / cast_seconds
    return {
        "benchmark": "ballot_intake_embedded_group_commit",
        "in_flight": in_flight,
        "python": platform.python_version(),
        "voters": voters,
        "ballots": len(casts),
        "ballots_per_s": round(ballots_per_s, 1),
        "close_and_publish_s": round(close_seconds, 3),
        "building_blocks": {
            "ed25519_token_verify_per_s": round(len(tokens) / verify_seconds, 1),
            "sqlite_fsync_insert_per_s": round(len(casts) / raw_seconds, 1),
        },
        "ratios": {
            "ballots_vs_token_verify": round(ballots_per_s * verify_seconds / len(tokens), 3),
            "ballots_vs_sqlite_insert": round(ballots_per_s * raw_seconds / len(casts), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--voters", type=int, default=2000)
    parser.add_argument("--revotes", type=float, default=0.2)
    parser.add_argument("--in-flight", type=int, default=256)
    args = parser.parse_args()
    print(json.dumps(bench(args.voters, args.revotes, args.in_flight), indent=2))


if __name__ == "__main__":
    main()
