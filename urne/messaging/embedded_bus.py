"""The embedded profile's message bus: every service in this process, events through
a durable SQLite outbox.

Events a command produced are written to the outbox before they are delivered and
removed once every subscriber has handled them; whatever a crash leaves there is
delivered again at the next start (subscribers are idempotent).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from urne.contracts.envelope import REGISTRY, Event
from urne.messaging.kernel import RawEnvelope, RawReply, ServiceCore
from urne.platform.logging import log_fields
from urne.platform.metrics import EVENTS_PUBLISHED
from urne.storage.sqlite import SqliteDb

log = logging.getLogger(__name__)


class EmbeddedBus:
    def __init__(self, cores: Mapping[str, ServiceCore], outbox_path: Path):
        self.cores = dict(cores)
        self._lock = threading.RLock()  # one message at a time: simple and ordered
        self._db = SqliteDb(outbox_path, None)
        with self._db.tx() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS outbox ("
                       "seq INTEGER PRIMARY KEY AUTOINCREMENT, envelope TEXT NOT NULL)")
        self._subscribers: dict[str, list[ServiceCore]] = {}
        for core in self.cores.values():
            for event_cls in core.event_types:
                self._subscribers.setdefault(event_cls.TYPE, []).append(core)
        for type_name in self._subscribers:
            cls = REGISTRY[type_name]
            assert issubclass(cls, Event), type_name

    def call(self, service: str, envelope: RawEnvelope) -> RawReply:
        with self._lock:
            reply, events = self.cores[service].handle(envelope)
            self._deliver(self._persist(events))
        return reply

    def recover(self) -> int:
        """Deliver what a previous run left in the outbox; returns how many."""
        with self._lock:
            pending = [(r["seq"], json.loads(r["envelope"]))
                       for r in self._db.query("SELECT seq, envelope FROM outbox ORDER BY seq")]
            if pending:
                log.warning("delivering events left by the previous run",
                            extra=log_fields(count=len(pending)))
            self._deliver(pending)
            return len(pending)

    def _persist(self, events: list[RawEnvelope]) -> list[tuple[int, RawEnvelope]]:
        if not events:
            return []
        stored = []
        with self._db.tx() as tx:
            for env in events:
                cur = tx.execute("INSERT INTO outbox (envelope) VALUES (?)", (json.dumps(env),))
                stored.append((int(cur.lastrowid or 0), env))
        for env in events:
            EVENTS_PUBLISHED.labels(env["producer"], env["type"]).inc()
        return stored

    def _deliver(self, items: list[tuple[int, RawEnvelope]]) -> None:
        queue = deque(items)
        while queue:
            seq, env = queue.popleft()
            delivered = True
            for core in self._subscribers.get(env["type"], []):
                try:
                    queue.extend(self._persist(core.on_event(env)))
                except Exception:
                    delivered = False  # stays in the outbox; retried at next start
                    log.exception("event handler failed", extra=log_fields(
                        service=core.name, type=env["type"], event_id=env["id"]))
            if delivered:
                with self._db.tx() as tx:
                    tx.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def close(self) -> None:
        self._db.close()
