"""docs/operations.md's Cassandra backup, done on the real local node: a snapshot of the
vote service's keyspace copied off the node, its tables made again from the schema the
snapshot came with (as on a new cluster), the copied files loaded with ``nodetool
import``, and every ballot there as it was."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.conftest import CassandraRun
from tests.support.servers import cassandra_state_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("ballot_boxes", "voter_ballots")
BALLOTS = ("SELECT voter_key, sequence, ballot_id, tracker, choice, channel, recorded_at, "
           "idempotency_key FROM {keyspace}.voter_ballots WHERE poll_id = %s AND "
           "voter_key = %s")


def nodetool(*args: str) -> str:
    done = subprocess.run([str(ROOT / "infra/cassandra/nodetool.sh"), *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def restored_keyspace(cassandra: CassandraRun) -> Iterator[str]:
    """An empty keyspace to restore into, dropped afterwards."""
    keyspace = f"restored_{uuid.uuid4().hex[:8]}"
    cassandra.session.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}", timeout=60)
    try:
        yield keyspace
    finally:
        cassandra.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)


def _ballots(run: CassandraRun, keyspace: str, poll_id: str,
             voters: list[str]) -> list[tuple[object, ...]]:
    query = BALLOTS.format(keyspace=keyspace)
    return [tuple(row) for voter in voters
            for row in run.session.execute(query, (poll_id, voter))]


def test_a_keyspace_snapshot_restores_with_nodetool_import(
        cassandra: CassandraRun, restored_keyspace: str, tmp_path: Path) -> None:
    keyspace, session = cassandra.keyspaces["vote"], cassandra.session
    poll_id = f"poll-{uuid.uuid4().hex[:8]}"
    voters = [f"voter-{n:04d}" for n in range(200)]
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    session.execute(f"INSERT INTO {keyspace}.ballot_boxes (poll_id, rules_hash, status) "
                    "VALUES (%s, 'h', 'open')", (poll_id,))
    insert = session.prepare(
        f"INSERT INTO {keyspace}.voter_ballots (poll_id, voter_key, sequence, ballot_id, "
        "tracker, choice, channel, recorded_at, idempotency_key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    for n, voter in enumerate(voters):
        for sequence in range(1, 2 + n % 2):  # every other voter voted again
            session.execute(insert, (poll_id, voter, sequence, str(uuid.uuid4()), f"t{n}",
                                     '{"yes": 1}', "online", at, f"k{n}-{sequence}"))
    before = _ballots(cassandra, keyspace, poll_id, voters)
    assert len(before) == 300

    # Back up: the snapshot (it flushes the memtables first), its files off the node.
    tag = f"backup-{uuid.uuid4().hex[:8]}"
    nodetool("snapshot", "--tag", tag, keyspace)
    data = Path(cassandra_state_dir()) / "data" / "data" / keyspace
    copies = {}
    for table in TABLES:
        (snapshot,) = data.glob(f"{table}-*/snapshots/{tag}")
        copies[table] = shutil.copytree(snapshot, tmp_path / table)
    nodetool("clearsnapshot", "-t", tag, "--", keyspace)

    # Restore elsewhere: the tables made from the snapshot's own schema, then the files.
    for table in TABLES:
        schema = (copies[table] / "schema.cql").read_text()
        # Without its table id: this "other cluster" is the same node, which has that id.
        schema = re.sub(r"\bID = [0-9a-f-]+\s+AND\s+", "", schema)
        assert " ID = " not in schema, schema
        session.execute(schema.replace(f"{keyspace}.", f"{restored_keyspace}."), timeout=60)
    assert _ballots(cassandra, restored_keyspace, poll_id, voters) == []
    for table in TABLES:
        nodetool("import", restored_keyspace, table, str(copies[table]))

    assert _ballots(cassandra, restored_keyspace, poll_id, voters) == before
    box = session.execute(f"SELECT status FROM {restored_keyspace}.ballot_boxes "
                          "WHERE poll_id = %s", (poll_id,)).one()
    assert box.status == "open"
