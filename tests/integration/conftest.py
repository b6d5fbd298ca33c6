"""Each store contract runs on both backends: SQLite files and a real Cassandra."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import cassandra_address, require_cassandra
from urne.runtime import SERVICES
from urne.shared.sqlite import SqliteDb


@pytest.fixture(scope="session")
def cassandra() -> Iterator[tuple[Any, Any]]:
    """One session and one set of keyspaces per test run (Cassandra DDL is slow)."""
    require_cassandra()
    from urne.shared.cassandra import connect, ensure_schema
    from urne.shared.settings import StoreSettings

    host, port = cassandra_address()
    settings = StoreSettings(cassandra_hosts=host, cassandra_port=port,
                             cassandra_keyspace_prefix=f"it_{uuid.uuid4().hex[:8]}_")
    session = connect(settings)
    keyspaces = {name: ensure_schema(session, settings, name) for name in SERVICES}
    yield session, (settings, keyspaces)
    for ks in keyspaces.values():
        session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)
    session.cluster.shutdown()


@pytest.fixture(params=["sqlite", "cassandra"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Any]:
    """``backend("vote")`` gives that service's store on the parametrised backend."""
    if request.param == "sqlite":
        def sqlite_store(service: str) -> Any:
            db = SqliteDb(tmp_path / f"{service}.db", service)
            module = __import__(f"services.{service}.adapters.sqlite_store", fromlist=["x"])
            return getattr(module, f"Sqlite{service.title()}Store")(db)
        return sqlite_store

    session, (_, keyspaces) = request.getfixturevalue("cassandra")

    def cassandra_store(service: str) -> Any:
        module = __import__(f"services.{service}.adapters.cassandra_store", fromlist=["x"])
        return getattr(module, f"Cassandra{service.title()}Store")(session, keyspaces[service])
    return cassandra_store
