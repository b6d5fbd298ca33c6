"""``urne up``: the embedded profile — every service and the gateway in one process."""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI

from urne.runtime import SERVICES
from urne.runtime.embedded_bus import EmbeddedBus
from urne.shared.keys import generate_keys
from urne.shared.settings import EmbeddedSettings

log = logging.getLogger(__name__)


def embedded_bus(settings: EmbeddedSettings) -> EmbeddedBus:
    """Every service on its SQLite file, joined by the in-process bus."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_development:
        generate_keys(settings.keys_dir)  # never overwrites; production brings its own
    cores = {name: importlib.import_module(f"services.{name}.bootstrap").embedded(settings)
             for name in SERVICES}
    bus = EmbeddedBus(cores, settings.data_dir / "bus.db")
    bus.recover()
    return bus


def build_app(settings: EmbeddedSettings) -> FastAPI:
    from gateway.app import create_app
    from gateway.clients import EmbeddedClient

    bus = embedded_bus(settings)
    return create_app(EmbeddedClient(bus), settings.keys_dir)
