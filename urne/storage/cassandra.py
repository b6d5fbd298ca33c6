"""Cassandra for the distributed profile: session, keyspace per service, migrations.

Every keyspace is ``<prefix><service>``; each service applies its own numbered CQL
files at start (idempotent DDL, ``IF NOT EXISTS``), so a fresh cluster needs no
manual step and several processes may start at once. Only adapters import this
module (D2).

- ``connect``: LOCAL_QUORUM reads and writes, LOCAL_SERIAL for lightweight
  transactions, 10 s per request; the eventlet reactor when sockets are green.
- ``ensure_schema`` / ``migrate``: keyspace, ``schema_migrations``, pending files.
- ``guard`` / ``guarded``: "the cluster cannot answer now" becomes ``StoreUnavailable``
  (503, retryable) instead of a driver exception.
"""

from __future__ import annotations

import functools
import logging
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload

from cassandra import (
    AuthenticationFailed,
    ConsistencyLevel,
    CoordinationFailure,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.connection import ConnectionException
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import (
    BatchStatement,
    BatchType,
    BoundStatement,
    PreparedStatement,
    SimpleStatement,
    named_tuple_factory,
)

from urne.platform.errors import DomainError
from urne.platform.logging import log_fields
from urne.platform.settings import StoreSettings
from urne.storage.cassandra_tls import green_connection_class, tls_context, untrusted
from urne.storage.migrations import migration_files, split_statements

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

REQUEST_TIMEOUT = 10.0  # seconds, client side, per request
DDL_TIMEOUT = 60.0  # schema changes are slow on small machines
SCHEMA_AGREEMENT_WAIT = 30.0  # seconds the driver waits for all nodes after a schema change
RECONNECT_BASE, RECONNECT_MAX = 0.5, 5.0  # seconds between tries to reach a node marked down

# "Not now" rather than "wrong request": a retry later may succeed. CoordinationFailure
# covers ReadFailure and WriteFailure (a replica failed the request).
DRIVER_FAULTS: tuple[type[Exception], ...] = (
    NoHostAvailable, OperationTimedOut, Unavailable, ReadTimeout, WriteTimeout,
    CoordinationFailure, ConnectionException,
)

# Keyspace names go into CQL text, so only plain identifiers are accepted.
_KEYSPACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")


class StoreUnavailable(DomainError):
    status = 503
    code = "store_unavailable"


class LoginRefused(RuntimeError):
    """Cassandra refused the process's role or password, or the process refused
    Cassandra's certificate: a setting to fix, not a fault to wait out."""


@contextmanager
def guard(what: str = "the store") -> Iterator[None]:
    """``with guard(): ...``: driver availability faults become ``StoreUnavailable``.

    Use it inside generators (``@guarded`` on a generator function only covers its
    creation, not the iteration that fetches the pages). A WriteTimeout on a
    lightweight transaction means "outcome unknown": the caller retries with its own
    idempotency key (the vote handler reads the latest sequence again).
    """
    try:
        yield
    except DRIVER_FAULTS as exc:
        log.warning("cassandra unavailable",
                    extra=log_fields(error=type(exc).__name__, detail=str(exc)[:300]))
        raise StoreUnavailable(f"{what} did not answer ({type(exc).__name__}); retry later"
                               ) from exc


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of :func:`guard` for store methods (not for generators)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with guard():
            return fn(*args, **kwargs)

    return wrapper


def _eventlet_patched() -> bool:
    # Look, do not import: eventlet must not be dragged into processes that do not use it.
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is None:
        return False
    try:
        return bool(patcher.is_monkey_patched("socket"))
    except AttributeError:  # the driver guards against the same breakage (PYTHON-1364)
        return False


def connection_class() -> type | None:
    """The driver reactor for this process; None keeps the driver's default (libev).

    ``cassandra.cluster`` picks its default reactor once, when first imported: libev,
    or eventlet's if sockets were already patched then. nameko services patch at the
    entry point, but decide here anyway: under eventlet, libev's loop thread cannot
    wake green threads and requests hang until they time out. The eventlet reactor
    is never chosen otherwise: its ``initialize_reactor`` calls ``eventlet.monkey_patch()``.
    """
    if _eventlet_patched():
        return green_connection_class()  # eventlet's, with the standard library's TLS
    return None


@functools.lru_cache(maxsize=512)
def _row_class(colnames: tuple[str, ...]) -> Any:
    # The driver's own factory on one dummy row builds the class (same cleaned names,
    # same fallbacks); we keep the class.
    probe = named_tuple_factory(list(colnames), [tuple(None for _ in colnames)])
    return type(probe[0])


def cached_named_tuple_factory(colnames: list[str], rows: list[Any]) -> list[Any]:
    """The driver's default rows (named tuples, same names), without building a new
    namedtuple class for every result: that alone cost more than the read."""
    row = _row_class(tuple(colnames))
    return [row(*r) for r in rows]


def applied(result: Any) -> bool:
    """Whether a lightweight transaction (``IF NOT EXISTS``...) was applied: its first
    column, ``[applied]`` (the driver's ``was_applied`` accepts only its own factories)."""
    row = result.one()
    return bool(row[0]) if row is not None else False


# Requests go out at once, without Nagle's algorithm. The driver leaves it on by default
# and sends a request in pieces of 4 KiB; the last piece of a larger request then waits
# for the acknowledgement of the others, which the node delays by up to 40 ms. A vote
# worker's write of 12 ballots took 48 ms against 4 ms for 11 (idle Cassandra,
# ``python -m loadtests.cassandra_ops``), 50 ballots 53 ms against 11 without Nagle.
SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def connect(settings: StoreSettings) -> Session:
    """A connected session; the caller ends it with ``session.cluster.shutdown()``."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=REQUEST_TIMEOUT,
        row_factory=cached_named_tuple_factory,
    )
    kwargs: dict[str, Any] = {}
    if (cls := connection_class()) is not None:
        kwargs["connection_class"] = cls
        # Under eventlet, protocol v5's checksummed segments broke when a nameko worker
        # read 32 partitions at once: "ConnectionShutdown('CRC mismatch on header')"
        # (seen on the tally's record reads, 128 buckets). v4 frames have no such
        # segments; every feature urne uses is in v4.
        kwargs["protocol_version"] = 4
    # Otherwise no protocol_version: the driver starts at v5 (Cassandra 4.0+) and steps
    # down by itself against an older cluster.
    if settings.cassandra_username:
        kwargs["auth_provider"] = PlainTextAuthProvider(settings.cassandra_username,
                                                        settings.cassandra_password)
    if (context := tls_context(settings)) is not None:
        kwargs["ssl_context"] = context
    cluster = Cluster(
        [h.strip() for h in settings.cassandra_hosts.split(",") if h.strip()],
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=REQUEST_TIMEOUT,
        control_connection_timeout=REQUEST_TIMEOUT,
        max_schema_agreement_wait=SCHEMA_AGREEMENT_WAIT,
        # A node marked down is tried again within seconds: the driver's default waits
        # up to 10 minutes between attempts, which kept a service out for ~30 s after a
        # one-second blip (issue 8). Its requests meanwhile get a quick 503.
        reconnection_policy=ExponentialReconnectionPolicy(RECONNECT_BASE, RECONNECT_MAX),
        sockopts=SOCKET_OPTIONS,
        **kwargs,
    )
    try:
        with guard("Cassandra"):
            try:
                return cluster.connect()
            except NoHostAvailable as exc:
                if exc.errors and all(isinstance(e, AuthenticationFailed)
                                      for e in exc.errors.values()):
                    # Wrong role or password: no retry will fix it.
                    raise LoginRefused(f"Cassandra refused the login of "
                                       f"{settings.cassandra_username!r}: check "
                                       "URNE_CASSANDRA_USERNAME and _PASSWORD") from exc
                if untrusted(exc.errors):
                    raise LoginRefused("Cassandra's certificate is not vouched for by "
                                       f"{settings.cassandra_tls_cafile} or does not name "
                                       "the node's address: check "
                                       "URNE_CASSANDRA_TLS_CAFILE") from exc
                raise
    except BaseException:
        cluster.shutdown()
        raise


def connect_patiently(settings: StoreSettings, within: float = 60.0) -> Session:
    """``connect``, trying again with backoff for up to ``within`` seconds: a service that
    starts while Cassandra is still starting (or briefly away) waits, it does not exit."""
    deadline = time.monotonic() + within
    pause = 0.5
    while True:
        try:
            return connect(settings)
        except StoreUnavailable:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            log.warning("Cassandra not reachable yet; trying again",
                        extra=log_fields(retry_in_s=min(pause, remaining)))
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 5.0)


def keyspace_name(settings: StoreSettings, service: str) -> str:
    keyspace = f"{settings.cassandra_keyspace_prefix}{service}"
    if not _KEYSPACE.match(keyspace):
        raise ValueError(f"invalid keyspace name {keyspace!r}: a letter, then letters, "
                         "digits or _, 48 at most")
    return keyspace


def migrate(session: Session, settings: StoreSettings, service: str,
            folder: Path) -> list[str]:
    """Create the service's keyspace and apply the pending migrations of ``folder``;
    returns the ones applied.

    ``{keyspace}`` in a migration file stands for the keyspace name. Concurrent runs
    are safe on one node (every statement is IF NOT EXISTS, the version row is written
    IF NOT EXISTS); on a multi-node cluster run ``urne migrate`` once before scaling
    services out, as concurrent schema changes through different coordinators are
    still a hazard before Cassandra's transactional metadata (5.1).
    """
    keyspace = keyspace_name(settings, service)
    rf = int(settings.cassandra_replication_factor)
    applied: list[str] = []
    with guard("Cassandra"):
        # Made by `urne store roles` in production, where a service's role may not create
        # keyspaces (even with IF NOT EXISTS: the permission is checked first).
        if keyspace not in session.cluster.metadata.keyspaces:
            _ddl(session, f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
                          f"{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")
        _ddl(session, f"CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations ("
                      "version int PRIMARY KEY, name text, applied_at timestamp)")
        done = {r.version for r in session.execute(
            f"SELECT version FROM {keyspace}.schema_migrations")}
        for f in migration_files(folder):
            version = int(f.stem[:3])
            if version in done:
                continue
            for statement in split_statements(f.read_text()):
                _ddl(session, statement.replace("{keyspace}", keyspace))
            # If another process recorded it meanwhile, its row (and time) stays.
            session.execute(f"INSERT INTO {keyspace}.schema_migrations (version, name, "
                            "applied_at) VALUES (%s, %s, %s) IF NOT EXISTS",
                            (version, f.stem, datetime.now(UTC)))
            applied.append(f.stem)
            log.info("migration applied", extra=log_fields(keyspace=keyspace, migration=f.stem))
    return applied


def ensure_schema(session: Session, settings: StoreSettings, service: str,
                  folder: Path) -> str:
    """Bring ``<prefix><service>`` up to date with ``folder``; returns the keyspace name."""
    migrate(session, settings, service, folder)
    return keyspace_name(settings, service)


def _ddl(session: Session, statement: str) -> None:
    result = session.execute(SimpleStatement(statement), timeout=DDL_TIMEOUT)
    # The driver has already waited (up to max_schema_agreement_wait) for every node to
    # agree on the new schema before returning. If they still disagree, wait once more
    # rather than build the next table on a schema some node does not know yet.
    if not result.response_future.is_schema_agreed:
        control = session.cluster.control_connection
        if not control.wait_for_schema_agreement(wait_time=SCHEMA_AGREEMENT_WAIT):
            raise StoreUnavailable("Cassandra nodes do not agree on the schema; retry later",
                                   code="store_schema_disagreement")


def ping(session: Session) -> None:
    """A real round trip to a coordinator (for ``/readyz``)."""
    session.execute(SimpleStatement("SELECT release_version FROM system.local",
                                    is_idempotent=True))


# A grouped write's batches stay well under Cassandra's batch_size_fail_threshold
# (50 KiB by default); infra/cassandra/cassandra.yaml raises the warning thresholds to
# match, so such batches do not fill the logs.
GROUP_ROWS = 32
GROUP_BYTES = 24 * 1024


def write_grouped(session: Session, rows: list[tuple[PreparedStatement, tuple[Any, ...]]],
                  concurrency: int = 64, group_rows: int = GROUP_ROWS) -> None:
    """Write ``rows`` (idempotent inserts) in unlogged batches of rows that live on the
    same replicas.

    The Python driver's cost is per request, far more than per row (profiled in a vote
    worker: the driver took a third of its CPU, two requests per ballot). Rows whose
    partitions share their replicas travel as one request: the coordinator the
    token-aware policy picks for the batch (a replica of its first row) is a replica of
    every row in it, so the cluster does no extra hop. An unlogged batch is not atomic
    across partitions, and need not be: the caller retries the whole write until it
    succeeds. On a large cluster groups get small, and this degrades to row by row.
    """
    metadata = session.cluster.metadata
    groups: dict[tuple[str, ...], list[tuple[BoundStatement, int]]] = {}
    for statement, values in rows:
        bound = statement.bind(values)
        replicas = metadata.get_replicas(bound.keyspace, bound.routing_key)
        key = tuple(sorted(str(host.endpoint) for host in replicas))
        groups.setdefault(key, []).append((bound, _size(values)))
    requests: list[BatchStatement | BoundStatement] = []
    for group in groups.values():
        batch: list[BoundStatement] = []
        size = 0
        for bound, row_size in group:
            if batch and (len(batch) >= group_rows or size + row_size > GROUP_BYTES):
                requests.append(_batch(batch))
                batch, size = [], 0
            batch.append(bound)
            size += row_size
        requests.append(_batch(batch))
    for request in requests:
        request.is_idempotent = True
    execute_concurrent(session, [(request, ()) for request in requests],
                       concurrency=concurrency, raise_on_first_error=True)


def _batch(rows: list[BoundStatement]) -> BatchStatement | BoundStatement:
    # A row alone goes as itself: a batch of one large row (a chunk of the record) would
    # still meet the batch size thresholds.
    if len(rows) == 1:
        return rows[0]
    batch = BatchStatement(BatchType.UNLOGGED)
    for bound in rows:
        batch.add(bound)
    return batch


def _size(values: tuple[Any, ...]) -> int:
    # Generous: text counted as up to 4 bytes a character, blobs as their length,
    # anything else as 16 bytes.
    return sum(4 * len(v) if isinstance(v, str) else len(v) if isinstance(v, bytes)
               else 16 for v in values) + 32


def scan_buckets(session: Session, select: PreparedStatement, poll_id: str,
                 buckets: int | range) -> Iterator[Any]:
    """Rows of ``select`` (``... WHERE poll_id = ? AND bucket = ?``) over the bucket
    partitions of a poll (``buckets``: all of them, 0 … n-1, or these), first pages
    read concurrently (at most 32 partitions at a time), later pages as iteration goes."""
    which = range(buckets) if isinstance(buckets, int) else buckets
    # A generator: the guard sits inside, where the pages are fetched.
    with guard():
        results = execute_concurrent_with_args(
            session, select, [(poll_id, b) for b in which],
            concurrency=min(len(which), 32) or 1, raise_on_first_error=True)
        for _, rows in results:
            yield from rows


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """The driver returns timestamps as naive UTC datetimes (milliseconds); urne uses
    aware ones everywhere."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def write_time(at: datetime) -> int:
    """``at`` as a write's timestamp (microseconds since the epoch), for rows whose write
    time must say no more than a column already does: a ballot's rows are written at its
    recorded minute, not at the moment they reach the store."""
    return (at - _EPOCH) // timedelta(microseconds=1)
