"""Wires the tally core to its adapters, for each profile."""

from __future__ import annotations

from services.tally.handlers import TallyHandlers
from urne.shared.kernel import ServiceCore
from urne.shared.keys import TALLY_RESULT_KEY, load_signing_key
from urne.shared.settings import EmbeddedSettings, ServiceSettings
from urne.shared.sqlite import SqliteDb


def embedded(settings: EmbeddedSettings) -> ServiceCore:
    from services.tally.adapters.sqlite_store import SqliteTallyStore

    store = SqliteTallyStore(SqliteDb(settings.data_dir / "tally.db", "tally"))
    return TallyHandlers(store, load_signing_key(settings.keys_dir, TALLY_RESULT_KEY)).core()


def distributed(settings: ServiceSettings) -> ServiceCore:
    from services.tally.adapters.cassandra_store import CassandraTallyStore
    from urne.shared.cassandra import connect, ensure_schema

    session = connect(settings)
    store = CassandraTallyStore(session, ensure_schema(session, settings, "tally"))
    return TallyHandlers(store, load_signing_key(settings.keys_dir, TALLY_RESULT_KEY)).core()
