"""``urne up``: the embedded profile — every service and the gateway in one process."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from urne.shared.keys import generate_keys
from urne.shared.settings import EmbeddedSettings

log = logging.getLogger(__name__)


def build_app(settings: EmbeddedSettings) -> FastAPI:
    from gateway.app import create_app
    from gateway.clients import EmbeddedClient
    from services.identity import bootstrap as identity
    from services.proposal import bootstrap as proposal
    from services.tally import bootstrap as tally
    from services.vote import bootstrap as vote
    from urne.runtime.embedded_bus import EmbeddedBus

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_development:
        generate_keys(settings.keys_dir)  # never overwrites; production brings its own
    cores = {m.__name__.split(".")[1]: m.embedded(settings)
             for m in (identity, proposal, vote, tally)}
    bus = EmbeddedBus(cores, settings.data_dir / "bus.db")
    bus.recover()
    return create_app(EmbeddedClient(bus), settings.keys_dir)
