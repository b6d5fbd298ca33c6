"""``urne up``: the embedded profile, every service and the gateway in one process.

Each service gets its own SQLite file in the data folder (``<name>.db``); the
in-process bus joins them, with its durable outbox in ``bus.db``.
"""

from __future__ import annotations

from fastapi import FastAPI

from urne.crypto.keys import generate_keys
from urne.gateway.app import create_app
from urne.gateway.clients import EmbeddedClient
from urne.messaging.embedded_bus import EmbeddedBus
from urne.messaging.kernel import ServiceCore
from urne.platform.settings import EmbeddedSettings
from urne.runtime.registry import SERVICES
from urne.storage.sqlite import SqliteDb


def embedded_cores(settings: EmbeddedSettings) -> dict[str, ServiceCore]:
    """Every service's core on its own SQLite file, migrated."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_development:
        generate_keys(settings.keys_dir)  # never overwrites; production brings its own
    cores = {}
    for name, spec in SERVICES.items():
        db = SqliteDb(settings.data_dir / f"{name}.db", spec.migrations.sqlite)
        cores[name] = spec.core(spec.sqlite_store(db), settings)
    return cores


def embedded_bus(settings: EmbeddedSettings) -> EmbeddedBus:
    """The cores joined by the in-process bus, after delivering what a crash left behind."""
    bus = EmbeddedBus(embedded_cores(settings), settings.data_dir / "bus.db")
    bus.recover()
    return bus


def build_app(settings: EmbeddedSettings) -> FastAPI:
    return create_app(EmbeddedClient(embedded_bus(settings)), settings.keys_dir,
                      services=tuple(SERVICES))
