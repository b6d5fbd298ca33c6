"""Wires the vote core to its adapters, for each profile."""

from __future__ import annotations

from services.vote.handlers import VoteHandlers
from urne.shared.kernel import ServiceCore
from urne.shared.keys import IDENTITY_TOKEN_KEY, load_public_key
from urne.shared.settings import EmbeddedSettings, ServiceSettings
from urne.shared.sqlite import SqliteDb
from urne.shared.tokens import TokenVerifier


def embedded(settings: EmbeddedSettings) -> ServiceCore:
    from services.vote.adapters.sqlite_store import SqliteVoteStore

    store = SqliteVoteStore(SqliteDb(settings.data_dir / "vote.db", "vote"))
    # vote holds only identity's public key: it can check tokens, never mint them.
    verifier = TokenVerifier(load_public_key(settings.keys_dir, IDENTITY_TOKEN_KEY))
    return VoteHandlers(store, verifier).core()


def distributed(settings: ServiceSettings) -> ServiceCore:
    from services.vote.adapters.cassandra_store import CassandraVoteStore
    from urne.shared.cassandra import connect, ensure_schema

    session = connect(settings)
    store = CassandraVoteStore(session, ensure_schema(session, settings, "vote"))
    verifier = TokenVerifier(load_public_key(settings.keys_dir, IDENTITY_TOKEN_KEY))
    return VoteHandlers(store, verifier).core()
