"""Least privilege on the store (urne/storage/roles.py) on a real Cassandra with
PasswordAuthenticator: a service's role migrates and uses its own keyspace, and can
neither read nor write another's, nor make a keyspace or a role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cassandra import Unauthorized

from tests.support.servers import cassandra_address, drop_keyspaces, require_cassandra, store_roles
from urne.platform.settings import StoreSettings
from urne.runtime.registry import SERVICES
from urne.storage.cassandra import LoginRefused, connect, ensure_schema

pytestmark = [pytest.mark.integration, pytest.mark.distributed]


@pytest.fixture(scope="module")
def roles() -> Iterator[tuple[str, dict[str, tuple[str, str]]]]:
    require_cassandra()
    prefix = f"ro_{uuid.uuid4().hex[:8]}_"
    try:
        yield prefix, store_roles(prefix)
    finally:
        drop_keyspaces(prefix)


def as_role(prefix: str, login: tuple[str, str]) -> StoreSettings:
    host, port = cassandra_address()
    return StoreSettings(cassandra_hosts=host, cassandra_port=port,
                         cassandra_keyspace_prefix=prefix, cassandra_username=login[0],
                         cassandra_password=login[1])


def test_a_service_uses_its_own_keyspace_and_no_other(
        roles: tuple[str, dict[str, tuple[str, str]]]) -> None:
    prefix, logins = roles
    settings = as_role(prefix, logins["identity"])
    session = connect(settings)
    try:
        # Its migrations and its data: allowed.
        keyspace = ensure_schema(session, settings, "identity",
                                 SERVICES["identity"].migrations.cassandra)
        assert session.execute(f"SELECT count(*) FROM {keyspace}.schema_migrations").one()[0] > 0
        # Another service's keyspace (the tally's, migrated by its own role): refused.
        tally = as_role(prefix, logins["tally"])
        other = connect(tally)
        try:
            ensure_schema(other, tally, "tally", SERVICES["tally"].migrations.cassandra)
        finally:
            other.cluster.shutdown()
        for statement in (f"SELECT * FROM {prefix}tally.schema_migrations",
                          f"INSERT INTO {prefix}tally.schema_migrations (version, name) "
                          "VALUES (999, 'forged')",
                          f"DROP TABLE {prefix}tally.schema_migrations",
                          f"CREATE KEYSPACE {prefix}extra WITH replication = "
                          "{'class': 'SimpleStrategy', 'replication_factor': 1}",
                          "CREATE ROLE intruder WITH PASSWORD = 'x' AND LOGIN = true",
                          f"GRANT SELECT ON KEYSPACE {prefix}tally TO {prefix}identity"):
            with pytest.raises(Unauthorized):
                session.execute(statement)
    finally:
        session.cluster.shutdown()


def test_a_wrong_password_is_refused_at_once_not_waited_out(
        roles: tuple[str, dict[str, tuple[str, str]]]) -> None:
    prefix, logins = roles
    with pytest.raises(LoginRefused, match=logins["vote"][0]):
        connect(as_role(prefix, (logins["vote"][0], "not-the-password")))
