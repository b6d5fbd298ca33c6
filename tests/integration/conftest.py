"""Each store contract runs on both backends: SQLite files and a real Cassandra."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import cassandra_address, require_cassandra, require_rabbitmq
from urne.platform.settings import StoreSettings
from urne.runtime.registry import SERVICES
from urne.storage.sqlite import SqliteDb


@dataclass
class CassandraRun:
    session: Any
    settings: StoreSettings
    keyspaces: dict[str, str]  # service -> keyspace
    applied: dict[str, list[str]]  # service -> migrations applied when the run began


@pytest.fixture(scope="session")
def cassandra() -> Iterator[CassandraRun]:
    """One session and one set of keyspaces per test run (Cassandra DDL is slow);
    tests isolate themselves with fresh ids. The keyspaces are dropped at the end."""
    require_cassandra()
    from urne.storage.cassandra import connect, keyspace_name, migrate

    host, port = cassandra_address()
    settings = StoreSettings(cassandra_hosts=host, cassandra_port=port,
                             cassandra_keyspace_prefix=f"it_{uuid.uuid4().hex[:8]}_")
    session = connect(settings)
    try:
        applied = {name: migrate(session, settings, name, spec.migrations.cassandra)
                   for name, spec in SERVICES.items()}
        yield CassandraRun(session, settings,
                           {name: keyspace_name(settings, name) for name in SERVICES}, applied)
    finally:
        for row in list(session.execute("SELECT keyspace_name FROM system_schema.keyspaces")):
            if row.keyspace_name.startswith(settings.cassandra_keyspace_prefix):
                session.execute(f"DROP KEYSPACE IF EXISTS {row.keyspace_name}", timeout=60)
        session.cluster.shutdown()


@pytest.fixture(params=["sqlite", "cassandra"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Any]:
    """``backend("vote")`` gives that service's store on the parametrised backend."""
    if request.param == "sqlite":
        return lambda service: SERVICES[service].sqlite_store(
            SqliteDb(tmp_path / f"{service}.db", SERVICES[service].migrations.sqlite))
    run: CassandraRun = request.getfixturevalue("cassandra")
    return lambda service: SERVICES[service].cassandra_store(run.session, run.keyspaces[service])


MANAGEMENT = "http://127.0.0.1:15672/api"
GUEST = ("guest", "guest")


@pytest.fixture
def vhost_url() -> Iterator[str]:
    """An AMQP URL on a RabbitMQ virtual host of this test's own, deleted after it."""
    require_rabbitmq()
    vhost = f"urne-it-{uuid.uuid4().hex[:8]}"
    httpx.put(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST).raise_for_status()
    httpx.put(f"{MANAGEMENT}/permissions/{vhost}/guest", auth=GUEST,
              json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    httpx.delete(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST)
