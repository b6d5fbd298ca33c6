"""urne.storage.cassandra.write_grouped on a real Cassandra: every row lands, and
batches stay under the server's batch size failure threshold (50 KiB by default)."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.integration.conftest import CassandraRun

pytestmark = [pytest.mark.integration, pytest.mark.distributed]


@pytest.fixture
def probe(cassandra: CassandraRun) -> str:
    table = f"{cassandra.keyspaces['vote']}.grouped_probe"
    cassandra.session.execute(f"CREATE TABLE IF NOT EXISTS {table} "
                              "(k text, c int, v text, PRIMARY KEY (k, c))", timeout=60)
    return table


def test_many_rows_of_many_partitions_all_land(cassandra: CassandraRun, probe: str) -> None:
    from urne.storage.cassandra import write_grouped

    run = uuid.uuid4().hex
    insert = cassandra.session.prepare(f"INSERT INTO {probe} (k, c, v) VALUES (?, ?, ?)")
    rows = [(insert, (f"{run}-{i % 150}", i, f"value {i}")) for i in range(1000)]
    write_grouped(cassandra.session, rows)
    select = cassandra.session.prepare(f"SELECT c, v FROM {probe} WHERE k = ?")
    found = {r.c: r.v for i in range(150)
             for r in cassandra.session.execute(select, (f"{run}-{i}",))}
    assert found == {i: f"value {i}" for i in range(1000)}


def test_large_rows_are_not_batched_past_the_servers_limit(cassandra: CassandraRun,
                                                           probe: str) -> None:
    """Together, these rows make a batch Cassandra refuses (InvalidRequest: batch too
    large); write_grouped must split them."""
    from urne.storage.cassandra import write_grouped

    run = uuid.uuid4().hex
    insert = cassandra.session.prepare(f"INSERT INTO {probe} (k, c, v) VALUES (?, ?, ?)")
    big = "x" * 20_000
    write_grouped(cassandra.session, [(insert, (f"{run}-{i}", i, big)) for i in range(6)])
    select = cassandra.session.prepare(f"SELECT v FROM {probe} WHERE k = ? AND c = ?")
    assert all(cassandra.session.execute(select, (f"{run}-{i}", i)).one().v == big
               for i in range(6))


def test_every_connection_sends_without_delay(cassandra: CassandraRun) -> None:
    """Nagle's algorithm off on every socket to the cluster: with it on, a request sent
    while an earlier one was unacknowledged waited up to 40 ms (the node's delayed ACK),
    and a vote worker's batch of grouped writes took ~50 ms instead of ~10."""
    session = cassandra.session
    connections = [c for pool in session.get_pools() for c in pool.get_connections()]
    connections += session.cluster.control_connection.get_connections()
    assert len(connections) >= 2  # the session's pool and the control connection
    for connection in connections:
        assert connection._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_the_node_acknowledges_a_write_once_its_commit_log_is_synced(
        cassandra: CassandraRun) -> None:
    """What a 201 promises (docs/architecture.md): the ballot is on disk. The node the
    project's scripts start (infra/cassandra/cassandra.yaml) says so itself; Cassandra's
    default, ``periodic``, acknowledges first and syncs up to 10 s later."""
    rows = cassandra.session.execute(
        "SELECT name, value FROM system_views.settings WHERE name IN "
        "('commitlog_sync', 'commitlog_sync_period')")
    settings = {r.name: r.value for r in rows}
    assert settings["commitlog_sync"] == "batch"
    assert settings.get("commitlog_sync_period") in (None, "0ms")
