"""Wires the proposal core to its adapters, for each profile."""

from __future__ import annotations

from services.proposal.handlers import ProposalHandlers
from urne.shared.kernel import ServiceCore
from urne.shared.settings import EmbeddedSettings, ServiceSettings
from urne.shared.sqlite import SqliteDb


def embedded(settings: EmbeddedSettings) -> ServiceCore:
    from services.proposal.adapters.sqlite_store import SqliteProposalStore

    db = SqliteDb(settings.data_dir / "proposal.db", "proposal")
    return ProposalHandlers(SqliteProposalStore(db)).core()


def distributed(settings: ServiceSettings) -> ServiceCore:
    from services.proposal.adapters.cassandra_store import CassandraProposalStore
    from urne.shared.cassandra import connect, ensure_schema

    session = connect(settings)
    store = CassandraProposalStore(session, ensure_schema(session, settings, "proposal"))
    return ProposalHandlers(store).core()
