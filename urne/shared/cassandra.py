"""Cassandra for the distributed profile: session, keyspace per service, migrations.

Every keyspace is ``<prefix><service>``; each service applies its own numbered
CQL files at start (idempotent DDL), so a fresh cluster needs no manual step.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, overload

from cassandra import (
    ConsistencyLevel,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from urne.shared.errors import DomainError
from urne.shared.migrations import migration_files, split_statements
from urne.shared.settings import StoreSettings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
DRIVER_FAULTS = (NoHostAvailable, OperationTimedOut, Unavailable, ReadTimeout, WriteTimeout)


class StoreUnavailable(DomainError):
    status = 503
    code = "store_unavailable"


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the driver's "cannot reach the cluster" errors into a 503 for the caller."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DRIVER_FAULTS as exc:
            raise StoreUnavailable(f"the store did not answer: {type(exc).__name__}") from exc

    return wrapper


def _connection_class() -> Any:
    # nameko services run under eventlet; the driver's default reactor would block
    # the hub, so use its eventlet reactor whenever sockets are green.
    eventlet = sys.modules.get("eventlet")
    if eventlet is not None and eventlet.patcher.is_monkey_patched("socket"):
        from cassandra.io.eventletreactor import EventletConnection

        return EventletConnection
    return None


def connect(settings: StoreSettings) -> Session:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=10,
    )
    kwargs: dict[str, Any] = {}
    if (cls := _connection_class()) is not None:
        kwargs["connection_class"] = cls
    cluster = Cluster(
        [h.strip() for h in settings.cassandra_hosts.split(",") if h.strip()],
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=5,
        **kwargs,
    )
    return cluster.connect()


def ensure_schema(session: Session, settings: StoreSettings, service: str) -> str:
    """Create the service's keyspace and apply its pending migrations; returns the keyspace."""
    keyspace = f"{settings.cassandra_keyspace_prefix}{service}"
    if not keyspace.replace("_", "").isalnum():
        raise ValueError(f"invalid keyspace name {keyspace!r}")
    _ddl(session, f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
                  f"{{'class': 'SimpleStrategy', 'replication_factor': "
                  f"{settings.cassandra_replication_factor}}}")
    _ddl(session, f"CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations ("
                  "version int PRIMARY KEY, name text, applied_at timestamp)")
    done = {r.version for r in session.execute(f"SELECT version FROM {keyspace}.schema_migrations")}
    for f in migration_files(service, "cassandra"):
        version = int(f.stem[:3])
        if version in done:
            continue
        for statement in split_statements(f.read_text()):
            _ddl(session, statement.replace("{keyspace}", keyspace))
        session.execute(f"INSERT INTO {keyspace}.schema_migrations (version, name, applied_at) "
                        "VALUES (%s, %s, %s)", (version, f.stem, datetime.now(UTC)))
        log.info("migration applied", extra={"fields": {"keyspace": keyspace,
                                                         "migration": f.stem}})
    return keyspace


def _ddl(session: Session, statement: str) -> None:
    session.execute(statement, timeout=60)
    # Several processes may start together: wait until every node agrees on the
    # schema before the next statement uses what this one created.
    deadline = time.monotonic() + 60
    while not session.cluster.control_connection.wait_for_schema_agreement(wait_time=10):
        if time.monotonic() > deadline:
            raise StoreUnavailable("Cassandra nodes do not agree on the schema")


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """The driver returns naive UTC datetimes; urne uses aware ones everywhere."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
