"""The store as a building block: single-partition writes and reads on the local
Cassandra (as the vote service's are), one at a time and in concurrent rounds, with
the CPU each costs Cassandra and this Python client. Prints JSON.

    python -m loadtests.cassandra_ops [--ops 3000]

Run it beside ``urne loadtest --profile distributed``: a ballot costs about three such
writes and one read (amortised), plus the tally's copy. ``insert_if_absent`` is a
lightweight transaction (``IF NOT EXISTS``, Paxos), as identity's sign-in writes are:
its cost depends on the node's ``paxos_variant``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

from cassandra.concurrent import execute_concurrent_with_args

from loadtests import cpu
from urne.platform.settings import StoreSettings
from urne.storage.cassandra import connect

KEYSPACE = "urne_bench_ops"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=3000)
    args = parser.parse_args()
    session = connect(StoreSettings())
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}", timeout=60)
    session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.t (p text, c int, v text, "
                    "PRIMARY KEY (p, c))", timeout=60)
    write = session.prepare(f"INSERT INTO {KEYSPACE}.t (p, c, v) VALUES (?, ?, ?)")
    read = session.prepare(f"SELECT * FROM {KEYSPACE}.t WHERE p = ?")
    insert_if_absent = session.prepare(f"INSERT INTO {KEYSPACE}.t (p, c, v) VALUES (?, ?, ?) "
                                       "IF NOT EXISTS")
    cassandra = [p for p in cpu.servers() if p.role == "cassandra"]
    me = os.getpid()
    report = []
    try:
        for round_size in (1, 10, 100):
            rows = [(uuid.uuid4().hex, 1, "x" * 200) for _ in range(args.ops)]
            fresh = [(uuid.uuid4().hex, 1, "x" * 200) for _ in range(args.ops)]
            for op, statement, params in (("write", write, rows),
                                          ("read", read, [(r[0],) for r in rows]),
                                          ("insert_if_absent", insert_if_absent, fresh)):
                before, mine = cpu.snapshot(cassandra), cpu.cpu_seconds(me)
                started = time.perf_counter()
                for i in range(0, len(params), round_size):
                    execute_concurrent_with_args(session, statement, params[i:i + round_size],
                                                 concurrency=round_size)
                seconds = time.perf_counter() - started
                spent = cpu.spent(before, cpu.snapshot(cassandra)).get("cassandra", 0.0)
                report.append({"op": op, "in_flight": round_size,
                               "per_s": round(len(params) / seconds),
                               "cassandra_cpu_ms": round(spent * 1000 / len(params), 3),
                               "client_cpu_ms": round((cpu.cpu_seconds(me) - mine) * 1000
                                                      / len(params), 3)})
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
        session.cluster.shutdown()
    print(json.dumps({"benchmark": "cassandra_single_partition_ops", "ops": args.ops,
                      "results": report}, indent=2))


if __name__ == "__main__":
    main()
