"""``urne up``: the embedded profile, every service and the gateway in one process.

Each service gets its own SQLite file in the data folder (``<name>.db``), with its
own outbox; the in-process bus joins them. Ballots take the same intake as in the
distributed profile, one shard, in group commits: every ballot that arrived while
the previous batch was being written goes into the next transaction.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from urne.contracts.envelope import Command, Event, wrap
from urne.contracts.events import BallotBoxClosed
from urne.crypto.keys import generate_keys
from urne.gateway.app import create_app
from urne.gateway.clients import EmbeddedClient
from urne.messaging.embedded_bus import EmbeddedBus, Member
from urne.messaging.group_commit import GroupCommit
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.platform.files import private_folder
from urne.platform.logging import log_fields
from urne.platform.settings import DEV_PSEUDONYM_SECRET, EmbeddedSettings
from urne.runtime.registry import SCHEDULE_INTERVAL_SECONDS, SERVICES, VOTE
from urne.services.vote.intake import BallotIntake
from urne.storage.sqlite import SqliteDb

log = logging.getLogger(__name__)

SHARD = 0  # one process, one shard


@dataclass
class CloseMarkers:
    """Hands the close marker to the intake, as a bus subscriber of the vote service.

    The bus runs one unit of work at a time, so the marker falls between two ballot
    batches: ballots committed before it are sealed in, later ones are refused.
    """

    intake: BallotIntake
    name: str = "vote"

    @property
    def event_types(self) -> Iterable[type[Event]]:
        return [BallotBoxClosed]

    def on_event(self, raw: RawEnvelope) -> list[RawEnvelope]:
        return self.intake.record([raw], SHARD).events


class Ticker:
    """Sends each service its periodic command (``ServiceSpec.periodic``) every
    ``SCHEDULE_INTERVAL_SECONDS``, on a thread of its own, through the bus like any
    command: its writes and events commit together."""

    def __init__(self, bus: EmbeddedBus, commands: dict[str, type[Command]]):
        self.bus, self.commands = bus, commands
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="urne-ticker", daemon=True)

    def start(self) -> Ticker:
        if self.commands:
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(SCHEDULE_INTERVAL_SECONDS):
            for service, command in self.commands.items():
                try:
                    reply = self.bus.call(service, wrap(command(), "embedded"))
                    if not reply.get("ok"):
                        log.warning("periodic command refused", extra=log_fields(
                            service=service, error=reply.get("error")))
                except Exception:  # the next tick tries again
                    log.exception("periodic command failed", extra=log_fields(service=service))

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


@dataclass
class Embedded:
    bus: EmbeddedBus
    intake: BallotIntake
    ballots: GroupCommit[RawEnvelope, RawReply | None]
    ticker: Ticker

    def close(self) -> None:
        self.ticker.close()  # first: it sends commands through the bus
        self.ballots.close()
        self.bus.close()


def folder_secret(data_dir: Path, name: str = "pseudonym-secret") -> str:
    """A secret of the data folder's own (``pseudonym-secret``, ``code-secret``), made at
    random on its first start and kept (readable by its owner only) in
    ``<data_dir>/<name>``. A folder that already holds an identity store from before
    kept the development pseudonym secret: it keeps it, or its voters would get new
    voter keys in a poll they voted in (a new code secret costs only pending codes)."""
    path = data_dir / name
    private_folder(data_dir)
    if path.exists():
        return path.read_text().strip()
    if name == "pseudonym-secret" and (data_dir / "identity.db").exists():
        log.warning("this data folder was made with the development pseudonym secret; it "
                    "keeps it (move its polls to a new folder to change it)")
        secret = DEV_PSEUDONYM_SECRET
    else:
        secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


def embedded(settings: EmbeddedSettings) -> Embedded:
    """Every service on its SQLite file (migrated), joined by the bus, after delivering
    what a crash left in the outboxes; and the group commit of ballots."""
    private_folder(settings.data_dir)  # 0700: the files in it are 0600 (platform/files.py)
    if settings.is_development:
        generate_keys(settings.keys_dir)  # never overwrites; production brings its own
    for secret in ("pseudonym_secret", "code_secret"):
        if not getattr(settings, secret):  # development (settings refuse it otherwise)
            settings = settings.model_copy(update={secret: folder_secret(
                settings.data_dir, secret.replace("_", "-"))})
    settings.check_secrets()  # a folder's own may be the development one it was made with
    members: dict[str, Member] = {}
    intake: BallotIntake | None = None
    for name, spec in SERVICES.items():
        db = SqliteDb(settings.data_dir / f"{name}.db", spec.migrations.sqlite)
        store: Any = spec.sqlite_store(db)
        members[name] = Member(spec.core(store, settings), db)
        if spec.intake is not None:
            intake = spec.intake(store, settings, 1)
            members[name].extra_subscribers.append(CloseMarkers(intake))
    assert intake is not None, "no service takes ballots"
    bus = EmbeddedBus(members)
    bus.recover()
    ticker = Ticker(bus, {name: spec.periodic for name, spec in SERVICES.items()
                          if spec.periodic is not None}).start()
    ballots = GroupCommit(_ballot_batches(bus, intake), name="ballots",
                          linger=settings.ballot_linger_seconds)
    return Embedded(bus, intake, ballots, ticker)


def _ballot_batches(bus: EmbeddedBus, intake: BallotIntake
                    ) -> Callable[[list[RawEnvelope]], list[RawReply | None]]:
    def record(batch: list[RawEnvelope]) -> list[RawReply | None]:
        def work() -> tuple[list[RawReply | None], list[RawEnvelope], bool]:
            outcome = intake.record(batch, SHARD)
            return outcome.replies, outcome.events, True

        return bus.run(VOTE.name, work)

    return record


def build_app(settings: EmbeddedSettings) -> FastAPI:
    system = embedded(settings)
    # The gateway and the vote service check the same voting tokens: one verifier.
    client = EmbeddedClient(system.bus, system.ballots, stop_first=system.ticker.close)
    return create_app(client, settings.keys_dir, services=tuple(SERVICES),
                      tokens=system.intake.tokens,
                      testing=settings.is_development, metrics=settings.api_metrics)
