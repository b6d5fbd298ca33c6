"""Least privilege on the store: one Cassandra role per service (issue 10).

Cassandra runs with ``PasswordAuthenticator`` and ``CassandraAuthorizer``. Each service's
processes (the service, and its vote or tally workers) log in as the role named like
its keyspace, ``<prefix><service>``, which may create, alter and drop tables in that
keyspace and read and write them, and nothing else: not another service's keyspace
(identity's e-mail addresses stay identity's), not the roles. The keyspaces are made
here, by an administrator, because a role that may create keyspaces may create any.

``urne store roles`` runs ``grant`` once per deployment (docker-compose: the
``store-roles`` one-shot), with the administrator's login and each service's password
from ``URNE_CASSANDRA_PASSWORD_<SERVICE>``; running it again sets the passwords again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable

from cassandra.cluster import Session

from urne.platform.settings import StoreSettings
from urne.storage.cassandra import keyspace_name

# What a service's role may do on its own keyspace: its migrations (CREATE, ALTER, DROP
# tables) and its data (SELECT, MODIFY). Not AUTHORIZE: it cannot hand its keyspace on.
PERMISSIONS = ("CREATE", "ALTER", "DROP", "SELECT", "MODIFY")


def role_name(settings: StoreSettings, service: str) -> str:
    return keyspace_name(settings, service)  # a plain identifier, checked there


def grant(session: Session, settings: StoreSettings, service: str, password: str) -> str:
    """Create (or update) the keyspace and the role of ``service``; returns the role.
    ``session``: an administrator's (a superuser, or a role that may create keyspaces
    and roles)."""
    if not password:
        raise ValueError(f"no password for the {service} role")
    keyspace = role = role_name(settings, service)
    rf = int(settings.cassandra_replication_factor)
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
                    f"{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}", timeout=60)
    # Created, or its password set again (not both: Cassandra 5 refuses a second password
    # change within 5 s).
    if session.execute("SELECT role FROM system_auth.roles WHERE role = %s", (role,)).one():
        session.execute(f"ALTER ROLE {role} WITH PASSWORD = %s AND LOGIN = true", (password,))
    else:
        session.execute(f"CREATE ROLE IF NOT EXISTS {role} WITH PASSWORD = %s AND "
                        "LOGIN = true", (password,))
    for permission in PERMISSIONS:
        session.execute(f"GRANT {permission} ON KEYSPACE {keyspace} TO {role}")
    return role


def grant_all(session: Session, settings: StoreSettings, services: Iterable[str],
              password_of: Callable[[str], str | None] = lambda service: None
              ) -> dict[str, tuple[str, str]]:
    """``grant`` each of ``services``; service -> (role, password).
    ``password_of(service)`` gives a password, or None for a random one."""
    logins = {}
    for service in services:
        password = password_of(service) or secrets.token_urlsafe(24)
        logins[service] = (grant(session, settings, service, password), password)
    return logins


def revoke(session: Session, settings: StoreSettings, service: str) -> None:
    """Drop the role of ``service`` (its keyspace stays)."""
    session.execute(f"DROP ROLE IF EXISTS {role_name(settings, service)}")
