"""TLS to Cassandra by setting (urne/storage/cassandra_tls.py), against the local node's
TLS port (infra/cassandra: TLS beside plain CQL on 9042, a self-signed certificate for
localhost and 127.0.0.1). Both reactors urne runs the driver on are tried: threads (vote
and tally workers, tools), here, and eventlet (the nameko services), in a process of its
own since eventlet must patch before anything else is imported. The node itself says
whether a connection is TLS (``system_views.clients``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import cassandra_address, cassandra_tls_cafile
from tests.support.tls import self_signed
from urne.platform.settings import StoreSettings
from urne.storage.cassandra import LoginRefused, connect

pytestmark = [pytest.mark.integration, pytest.mark.distributed]

# Run by the eventlet process: connect as a service does, say what the node saw.
GREEN = """
import eventlet
eventlet.monkey_patch()
import json, sys
from urne.platform.settings import StoreSettings
from urne.storage.cassandra import LoginRefused, connect
from tests.integration.test_cassandra_tls import seen_by_the_node
settings = StoreSettings.model_validate_json(sys.argv[1])
try:
    session = connect(settings)
except LoginRefused as exc:
    print(json.dumps({"refused": str(exc)}))
else:
    try:
        print(json.dumps(seen_by_the_node(session)))
    finally:
        session.cluster.shutdown()
"""


def seen_by_the_node(session: object) -> dict[str, object]:
    """How the node sees this session's control connection, and the reactor's class."""
    connection = session.cluster.control_connection._connection  # type: ignore[attr-defined]
    address, port = connection._socket.getsockname()[:2]
    row = session.execute(  # type: ignore[attr-defined]
        "SELECT ssl_enabled, ssl_protocol FROM system_views.clients "
        "WHERE address = %s AND port = %s", (address, port)).one()
    assert session.execute("SELECT release_version FROM system.local").one()  # type: ignore[attr-defined]
    return {"reactor": type(connection).__name__, "ssl_enabled": row.ssl_enabled,
            "ssl_protocol": row.ssl_protocol}


def settings(cafile: str = "") -> StoreSettings:
    host, port = cassandra_address()
    return StoreSettings(cassandra_hosts=host, cassandra_port=port, cassandra_tls_cafile=cafile)


def in_eventlet(store: StoreSettings) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", GREEN, store.model_dump_json()],
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def stranger(tmp_path: Path) -> str:
    """A self-signed certificate for the same names, which did not sign the node's."""
    return str(self_signed(tmp_path, "stranger")[0])


def test_the_workers_talk_to_cassandra_over_tls() -> None:
    session = connect(settings(cassandra_tls_cafile()))
    try:
        seen = seen_by_the_node(session)
    finally:
        session.cluster.shutdown()
    assert seen["ssl_enabled"] is True and str(seen["ssl_protocol"]).startswith("TLSv1.")


def test_without_the_setting_the_connection_is_plain() -> None:
    cassandra_tls_cafile()  # the same node, its TLS port on: the setting alone decides
    session = connect(settings())
    try:
        assert seen_by_the_node(session)["ssl_enabled"] is False
    finally:
        session.cluster.shutdown()


def test_the_services_talk_to_cassandra_over_tls_under_eventlet() -> None:
    seen = in_eventlet(settings(cassandra_tls_cafile()))
    assert seen["reactor"] == "GreenConnection"  # eventlet's reactor, not the threads'
    assert seen["ssl_enabled"] is True and str(seen["ssl_protocol"]).startswith("TLSv1.")


def test_a_node_not_vouched_for_is_refused_in_both_reactors(stranger: str) -> None:
    cassandra_tls_cafile()
    with pytest.raises(LoginRefused, match="URNE_CASSANDRA_TLS_CAFILE"):
        connect(settings(stranger))
    assert "URNE_CASSANDRA_TLS_CAFILE" in str(in_eventlet(settings(stranger)).get("refused"))
