"""Helpers for the unit tests: drive a service core through real envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from urne.contracts import Command, Event, wrap
from urne.messaging.kernel import ServiceCore
from urne.runtime.registry import SERVICES
from urne.storage.sqlite import SqliteDb


def service_db(path: Path, service: str) -> SqliteDb:
    """A SQLite file with ``service``'s migrations applied."""
    return SqliteDb(path, SERVICES[service].migrations.sqlite)


class Clock:
    """A settable clock for the handlers' ``clock=`` field; starts at the real now so
    JWT expiry (which uses the real time) and domain expiry agree."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def send(core: ServiceCore, cmd: Command) -> tuple[dict, list[dict]]:
    """Run a command through the whole kernel path (envelope, registry, validation)."""
    return core.handle(wrap(cmd, "test"))


def ok(core: ServiceCore, cmd: Command) -> tuple[dict, list[dict]]:
    """Run a command that must succeed; returns the reply data and the events."""
    reply, events = send(core, cmd)
    assert reply["ok"], reply
    return reply["data"], events


def refused(core: ServiceCore, cmd: Command) -> dict:
    """Run a command that must fail; returns the error and checks no event escaped."""
    reply, events = send(core, cmd)
    assert not reply["ok"], reply
    assert events == []
    return reply["error"]


def deliver(core: ServiceCore, event: Event) -> list[dict]:
    return core.on_event(wrap(event, "test"))


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]
