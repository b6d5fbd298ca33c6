"""The store as a building block: single-partition writes and reads on the local
Cassandra (as the vote service's are), one at a time and in concurrent rounds, with
the CPU each costs Cassandra and this Python client. Prints JSON.

    python -m loadtests.cassandra_ops [--ops 3000]

Run it beside ``urne loadtest --profile distributed``: a ballot costs about three such
writes and one read (amortised), plus the tally's copy. ``insert_if_absent`` is a
lightweight transaction (``IF NOT EXISTS``, Paxos), as identity's sign-in writes are:
its cost depends on the node's ``paxos_variant``.

``grouped_writes``: a vote worker's batch write (``write_grouped``: a voter's ballot row
and its id row per ballot, in unlogged batches of rows on the same replicas), its wall
time per batch as urne connects (Nagle's algorithm off) and with Nagle's algorithm put
back on the same connections, to show what the setting is for.

``index_rows``: the vote service's id index (``ballot_ids``) written through
``write_grouped`` two ways, alternated: a bucket a row (the voter key's, as before
2026-12-02: a partition, so a mutation, a row) and runs of ``GROUP_ROWS`` rows in one
bucket (as now); the CPU each row costs Cassandra.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from cassandra.concurrent import execute_concurrent_with_args

from loadtests import cpu
from urne.platform.settings import StoreSettings
from urne.storage.cassandra import GROUP_ROWS, connect, write_grouped

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
        grouped = grouped_writes(session)
        index = index_rows(session, cassandra)
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
        session.cluster.shutdown()
    print(json.dumps({"benchmark": "cassandra_single_partition_ops", "ops": args.ops,
                      "results": report, "grouped_writes": grouped, "index_rows": index},
                     indent=2))


def grouped_writes(session: Any, rounds: int = 40) -> list[dict[str, Any]]:
    session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.ballots (p text, v text, s int, "
                    "ballot_id text, choice text, digest text, recorded_at timestamp, "
                    "PRIMARY KEY ((p, v), s))", timeout=60)
    session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.ids (p text, bucket int, "
                    "ballot_id text, v text, PRIMARY KEY ((p, bucket), ballot_id))", timeout=60)
    ballot = session.prepare(f"INSERT INTO {KEYSPACE}.ballots (p, v, s, ballot_id, choice, "
                             "digest, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
    ballot_id = session.prepare(f"INSERT INTO {KEYSPACE}.ids (p, bucket, ballot_id, v) "
                                "VALUES (?, ?, ?, ?)")
    results = []
    for nagle in (False, True):
        _nagle(session, nagle)
        for ballots in (10, 50):
            times = []
            for _ in range(rounds):
                rows: list[tuple[Any, tuple[Any, ...]]] = []
                for _ in range(ballots):
                    voter, bid = uuid.uuid4().hex, uuid.uuid4().hex
                    rows.append((ballot, ("poll", voter, 1, bid, '{"option": "a"}', "d" * 64,
                                          datetime.now(UTC))))
                    rows.append((ballot_id, ("poll", int(voter[:4], 16) % 1024, bid, voter)))
                started = time.perf_counter()
                write_grouped(session, rows)
                times.append(time.perf_counter() - started)
            times = sorted(times[5:])  # the first rounds warm the connections
            results.append({"nagle": nagle, "ballots": ballots,
                            "wall_ms_p50": round(statistics.median(times) * 1000, 1),
                            "wall_ms_max": round(times[-1] * 1000, 1)})
    _nagle(session, False)
    return results


def index_rows(session: Any, cassandra: list[Any], rows: int = 20_000, turns: int = 3
               ) -> dict[str, Any]:
    session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.ballot_ids (p text, bucket int, "
                    "ballot_id text, v text, PRIMARY KEY ((p, bucket), ballot_id))", timeout=60)
    insert = session.prepare(f"INSERT INTO {KEYSPACE}.ballot_ids (p, bucket, ballot_id, v) "
                             "VALUES (?, ?, ?, ?)")
    spent: dict[str, list[float]] = {"bucket_a_row": [], "runs": []}
    for turn in range(turns + 1):  # the first turn warms the table up, unreported
        for way in spent:
            poll = uuid.uuid4().hex
            voters = [uuid.uuid4().hex * 2 for _ in range(rows)]
            buckets = ([int(v[:8], 16) % 128 for v in voters] if way == "bucket_a_row" else
                       [int(voters[i - i % GROUP_ROWS][:8], 16) % 128 for i in range(rows)])
            statements = [(insert, (poll, b, uuid.uuid4().hex, v))
                          for v, b in zip(voters, buckets, strict=True)]
            before = cpu.snapshot(cassandra)
            for i in range(0, rows, 500):  # a vote worker's largest batch
                write_grouped(session, statements[i:i + 500])
            seconds = cpu.spent(before, cpu.snapshot(cassandra)).get("cassandra", 0.0)
            if turn:
                spent[way].append(round(seconds * 1e6 / rows, 1))
    return {"rows": rows, "cassandra_cpu_us_per_row": spent,
            "median": {way: statistics.median(v) for way, v in spent.items()}}


def _nagle(session: Any, on: bool) -> None:
    """Nagle's algorithm on or off on the session's open connections (urne's are off)."""
    for pool in session.get_pools():
        for connection in pool.get_connections():
            connection._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(not on))


if __name__ == "__main__":
    main()
