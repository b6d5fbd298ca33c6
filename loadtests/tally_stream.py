"""Tally consumption as a building block: how fast tally workers count what is waiting
in the counting streams, and the CPU it costs each server process. Prints JSON.

    python -m loadtests.tally_stream [--ballots 100000] [--shards 16] [--workers 1]

Against the local RabbitMQ and Cassandra (``infra/*/start.sh``), on a virtual host and
keyspaces of its own, removed at the end. It publishes ``--ballots`` recorded ballots of
one poll (10 % of them revotes) to the counting streams, in events of ``--per-event``
ballots per shard (as vote workers do), *before* any worker runs; then it starts the
``urne tally-worker`` processes and times them from their first checkpoint to the last,
so start-up is left out. At the end the merged partials must hold every ballot and the
counts the ballots give (a benchmark that counts wrong fails).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika

from loadtests import cpu
from loadtests.system import close_vhost, open_vhost
from urne.contracts import wrap
from urne.contracts.events import BallotsRecorded, RecordedBallot
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import generate_keys
from urne.messaging.counting_stream import (
    COUNTING_EXCHANGE,
    counting_shard,
    declare_counting,
    shard_key,
)
from urne.messaging.signatures import Signer, load_signer
from urne.platform.settings import StoreSettings
from urne.runtime.registry import TALLY
from urne.services.tally.adapters.cassandra_store import CassandraTallyStore
from urne.storage.cassandra import connect, ensure_schema

ROOT = Path(__file__).resolve().parents[1]
RULES = YesNoAbstainRules(method="yes_no_abstain", question="Benchmark?")


def ballots(n: int, poll_id: str, rng: random.Random) -> list[RecordedBallot]:
    """``n`` ballots: about 10 % are revotes of an earlier voter (the next sequence)."""
    now = datetime.now(UTC)
    out: list[RecordedBallot] = []
    voters: list[str] = []
    sequences: dict[str, int] = {}
    for i in range(n):
        if voters and rng.random() < 0.1:
            key = rng.choice(voters)
        else:
            key = f"{rng.getrandbits(256):064x}"
            voters.append(key)
        sequences[key] = sequences.get(key, 0) + 1
        out.append(RecordedBallot(
            poll_id=poll_id, ballot_id=uuid.uuid4().hex, tracker=f"T{i:09d}", voter_key=key,
            sequence=sequences[key], choice={"answer": rng.choice(["yes", "no", "abstain"])},
            channel="online", recorded_at=now))
    return out


def expected(recorded: list[RecordedBallot]) -> dict[str, int]:
    last: dict[str, RecordedBallot] = {}
    for b in recorded:
        if b.voter_key not in last or b.sequence > last[b.voter_key].sequence:
            last[b.voter_key] = b
    counts = {"yes": 0, "no": 0, "abstain": 0}
    for b in last.values():
        counts[b.choice["answer"]] += 1
    return counts


def publish(url: str, shards: int, recorded: list[RecordedBallot], per_event: int,
            sign: Signer) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    declare_counting(channel, shards)
    channel.confirm_delivery()
    by_shard: dict[int, list[RecordedBallot]] = {}
    for b in recorded:
        by_shard.setdefault(counting_shard(b.voter_key, shards), []).append(b)
    events = 0
    for shard, items in by_shard.items():
        for i in range(0, len(items), per_event):
            # Signed as a vote worker signs them: the tally worker checks every one.
            env = sign.sign(wrap(BallotsRecorded(ballots=items[i:i + per_event], shard=shard),
                                 "vote"))
            channel.basic_publish(COUNTING_EXCHANGE, shard_key(shard), json.dumps(env).encode(),
                                  pika.BasicProperties(delivery_mode=2))
            events += 1
    connection.close()
    return events


def counted(store: CassandraTallyStore, stream: str, shards: int, poll_id: str
            ) -> tuple[int, dict[str, Any] | None]:
    """Ballots the checkpointed partials hold, and their merged counts."""
    states = list(store.partials(stream, shards, poll_id).values())
    total: dict[str, int] = {"yes": 0, "no": 0, "abstain": 0}
    for s in states:
        for k, v in s["tally"]["counts"].items():
            total[k] += v
    return sum(s["received"] for s in states), total if states else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--per-event", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"urne-bench-{run}", f"bench_{run}_"
    url = open_vhost(vhost)
    settings = StoreSettings(cassandra_keyspace_prefix=prefix)
    session = connect(settings)
    workers: list[subprocess.Popen[bytes]] = []
    keys = Path(tempfile.mkdtemp(prefix="urne-bench-keys-"))
    generate_keys(keys)
    try:
        keyspace = ensure_schema(session, settings, "tally", TALLY.migrations.cassandra)
        store = CassandraTallyStore(session, keyspace)
        poll_id = uuid.uuid4().hex
        store.save_rules(poll_id, RULES, rules_hash(RULES), "after_close")
        recorded = ballots(args.ballots, poll_id, random.Random(args.seed))
        t0 = time.perf_counter()
        events = publish(url, args.shards, recorded, args.per_event, load_signer(keys, "vote"))
        publish_s = time.perf_counter() - t0

        env = {**os.environ, "URNE_ENVIRONMENT": "test", "URNE_LOG_LEVEL": "WARNING",
               "URNE_AMQP_URL": url, "URNE_CASSANDRA_KEYSPACE_PREFIX": prefix,
               "URNE_KEYS_DIR": str(keys),
               "URNE_COUNTING_SHARDS": str(args.shards)}
        for _ in range(args.workers):
            workers.append(subprocess.Popen([sys.executable, "-m", "urne", "tally-worker"],
                                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        pids = {w.pid for w in workers}
        servers = [p for p in cpu.servers() if p.role in ("rabbitmq", "cassandra")] + \
            [cpu.Process(pid, "tally-worker") for pid in pids]
        deadline = time.monotonic() + 600
        first = 0
        while first == 0:  # the first checkpoint: the workers are counting
            assert time.monotonic() < deadline, "no tally worker counted anything"
            first = counted(store, vhost, args.shards, poll_id)[0]
            time.sleep(0.05)
        started, before = time.perf_counter(), cpu.snapshot(servers)
        while (got := counted(store, vhost, args.shards, poll_id))[0] < args.ballots:
            assert time.monotonic() < deadline, f"counted {got[0]} of {args.ballots}"
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        spent = cpu.spent(before, cpu.snapshot(servers))
        measured = args.ballots - first
        print(json.dumps({
            "benchmark": "tally_stream", "ballots": args.ballots, "shards": args.shards,
            "workers": args.workers, "events": events, "per_event": args.per_event,
            "publish_s": round(publish_s, 2), "measured_ballots": measured,
            "seconds": round(seconds, 2),
            "ballots_per_s": round(measured / seconds, 1),
            "ballots_per_s_per_worker": round(measured / seconds / args.workers, 1),
            "cpu_ms_per_ballot": {role: round(1000 * s / measured, 3)
                                  for role, s in spent.items()},
            "counts_right": got[1] == expected(recorded),
        }, indent=2))
        if got[1] != expected(recorded):
            raise SystemExit("the merged partials do not give the ballots' counts")
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
        shutil.rmtree(keys, ignore_errors=True)
        session.execute(f"DROP KEYSPACE IF EXISTS {prefix}tally", timeout=60)
        session.cluster.shutdown()
        close_vhost(vhost)


if __name__ == "__main__":
    main()
