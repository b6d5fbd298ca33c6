"""Reaching the real RabbitMQ and Cassandra started by ``infra/``.

Outside CI a missing server skips the tests that need it (so the unit suite runs
anywhere); with ``CI=true`` it is a failure: CI must prove the distributed path.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _require(name: str, host: str, port: int, start: str) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}; start it with {start}"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def cassandra_address() -> tuple[str, int]:
    return (os.environ.get("URNE_CASSANDRA_HOSTS", "127.0.0.1").split(",")[0],
            int(os.environ.get("URNE_CASSANDRA_PORT", "9042")))


def cassandra_state_dir() -> str:
    """The local node's folder (data, logs, certificates), as infra/cassandra/common.sh
    chooses it."""
    return os.environ.get("URNE_CASSANDRA_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"),
        "urne", "cassandra")


def cassandra_tls_cafile() -> str:
    """What trusts the local node's TLS certificate (infra/cassandra/start.sh makes it)."""
    require_cassandra()
    cafile = os.path.join(cassandra_state_dir(), "tls", "node.pem")
    if not os.path.isfile(cafile):
        message = f"no {cafile}: the local Cassandra predates its TLS port; restart it " \
                  "with infra/cassandra/stop.sh and start.sh"
        if IN_CI:
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return cafile


def amqp_url() -> str:
    return os.environ.get("URNE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def require_cassandra() -> None:
    host, port = cassandra_address()
    _require("Cassandra", host, port, "infra/cassandra/start.sh")


def require_rabbitmq() -> None:
    _require("RabbitMQ", "127.0.0.1", 5672, "infra/rabbitmq/start.sh")


def _admin_session() -> Any:
    from urne.platform.settings import StoreSettings
    from urne.storage.cassandra import connect

    host, port = cassandra_address()
    return connect(StoreSettings(cassandra_hosts=host, cassandra_port=port))


def store_roles(prefix: str) -> dict[str, tuple[str, str]]:
    """A Cassandra role per service for a test run under ``prefix`` (keyspaces made):
    service -> (role, password), as ``urne store roles`` makes them."""
    from urne.platform.settings import StoreSettings
    from urne.runtime.registry import SERVICES
    from urne.storage.roles import grant_all

    host, port = cassandra_address()
    session = _admin_session()
    try:
        return grant_all(session, StoreSettings(cassandra_hosts=host, cassandra_port=port,
                                                cassandra_keyspace_prefix=prefix), SERVICES)
    finally:
        session.cluster.shutdown()


def drop_keyspaces(prefix: str) -> None:
    """Drop every service keyspace, and role, a test run created under ``prefix``."""
    from urne.runtime.registry import SERVICES

    session = _admin_session()
    try:
        for name in SERVICES:
            session.execute(f"DROP KEYSPACE IF EXISTS {prefix}{name}", timeout=60)
            session.execute(f"DROP ROLE IF EXISTS {prefix}{name}")
    finally:
        session.cluster.shutdown()
