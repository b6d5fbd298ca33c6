"""Wires the identity core to its adapters, for each profile."""

from __future__ import annotations

from pathlib import Path

from services.identity.adapters.outbox_sender import FileOutboxSender
from services.identity.handlers import IdentityHandlers
from services.identity.ports import IdentityStore
from urne.shared.kernel import ServiceCore
from urne.shared.keys import IDENTITY_TOKEN_KEY, load_signing_key
from urne.shared.settings import EmbeddedSettings, ServiceSettings
from urne.shared.sqlite import SqliteDb
from urne.shared.tokens import TokenIssuer


def build(store: IdentityStore, *, keys_dir: Path, secret: str, organiser_emails: str,
          outbox_dir: Path, development: bool) -> ServiceCore:
    organisers = frozenset(e.strip().lower() for e in organiser_emails.split(",") if e.strip())
    return IdentityHandlers(
        store=store,
        sender=FileOutboxSender(outbox_dir, echo_codes=development),
        tokens=TokenIssuer(load_signing_key(keys_dir, IDENTITY_TOKEN_KEY)),
        secret=secret,
        organisers=organisers,
    ).core()


def embedded(settings: EmbeddedSettings) -> ServiceCore:
    from services.identity.adapters.sqlite_store import SqliteIdentityStore

    store = SqliteIdentityStore(SqliteDb(settings.data_dir / "identity.db", "identity"))
    return build(store, keys_dir=settings.keys_dir, secret=settings.pseudonym_secret,
                 organiser_emails=settings.organiser_emails,
                 outbox_dir=settings.data_dir / "outbox", development=settings.is_development)


def distributed(settings: ServiceSettings) -> ServiceCore:
    from services.identity.adapters.cassandra_store import CassandraIdentityStore
    from urne.shared.cassandra import connect, ensure_schema

    session = connect(settings)
    store = CassandraIdentityStore(session, ensure_schema(session, settings, "identity"))
    return build(store, keys_dir=settings.keys_dir, secret=settings.pseudonym_secret,
                 organiser_emails=settings.organiser_emails, outbox_dir=settings.outbox_dir,
                 development=settings.is_development)
