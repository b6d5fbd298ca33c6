"""The embedded profile's message bus: every service in this process, each event
written to an outbox in the SQLite file of the service that produced it, in the
same transaction as that service's writes.

So a command's writes and its events commit together or not at all: a crash can
leave events undelivered, never lost. Delivery hands the events to their
subscribers (each subscriber's writes, and the events *they* produce, commit
together in the subscriber's own file) and deletes each event from its outbox once
every subscriber has handled it. ``recover()`` delivers, at start, what a crash
left in any outbox; subscribers are idempotent, so a second delivery changes nothing.
A refused command commits nothing at all.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from urne.contracts.envelope import Event
from urne.messaging.kernel import RawEnvelope, RawReply, ServiceCore
from urne.platform.logging import log_fields
from urne.platform.metrics import EVENTS_PUBLISHED
from urne.storage.sqlite import SqliteDb

log = logging.getLogger(__name__)

T = TypeVar("T")
OUTBOX = ("CREATE TABLE IF NOT EXISTS outbox ("
          "seq INTEGER PRIMARY KEY AUTOINCREMENT, envelope TEXT NOT NULL)")


class Subscriber(Protocol):
    """What consumes events: a ``ServiceCore``, or an adapter of the same shape."""

    name: str

    @property
    def event_types(self) -> Iterable[type[Event]]: ...
    def on_event(self, raw: RawEnvelope) -> list[RawEnvelope]: ...


@dataclass
class Member:
    """One service of the process: its core, its SQLite file, and any further
    subscriber that writes to the same file (the vote service's close markers)."""

    core: ServiceCore
    db: SqliteDb
    extra_subscribers: list[Subscriber] = field(default_factory=list)


@dataclass(frozen=True)
class _Pending:
    producer: str  # whose outbox holds it
    seq: int
    envelope: RawEnvelope


class _Rollback(Exception):
    def __init__(self, result: object):
        super().__init__("refused: roll back")
        self.result = result


class EmbeddedBus:
    def __init__(self, members: Mapping[str, Member]):
        self.members = dict(members)
        self._lock = threading.RLock()  # one unit of work at a time: simple and ordered
        self._routes: dict[str, list[tuple[str, Subscriber]]] = {}
        for name, member in self.members.items():
            with member.db.tx() as tx:
                tx.execute(OUTBOX)
            for sub in (member.core, *member.extra_subscribers):
                for event_cls in sub.event_types:
                    self._routes.setdefault(event_cls.TYPE, []).append((name, sub))

    def call(self, service: str, envelope: RawEnvelope) -> RawReply:
        """Run one command; its writes and its events commit together, or nothing does."""
        core = self.members[service].core

        def command() -> tuple[RawReply, list[RawEnvelope], bool]:
            reply, events = core.handle(envelope)
            # A refusal rolls back, unless it is itself counted (DomainError.keep_writes).
            return reply, events, bool(reply.get("ok") or reply.get("keep_writes"))

        return self.run(service, command)

    def run(self, service: str, work: Callable[[], tuple[T, list[RawEnvelope], bool]]) -> T:
        """Run ``work`` (which writes to ``service``'s file and returns its result, the
        events to publish and whether to commit) as one transaction with its events;
        deliver them after the commit."""
        with self._lock:
            try:
                result, pending = self._commit(service, work)
            except _Rollback as refused:
                return refused.result  # type: ignore[return-value]
            self._deliver(pending)
            return result

    def recover(self) -> int:
        """Deliver what a previous run left in the outboxes; returns how many."""
        with self._lock:
            pending = [_Pending(name, int(r["seq"]), json.loads(r["envelope"]))
                       for name, member in self.members.items()
                       for r in member.db.query("SELECT seq, envelope FROM outbox ORDER BY seq")]
            if pending:
                log.warning("delivering events left by the previous run",
                            extra=log_fields(count=len(pending)))
            self._deliver(pending)
            return len(pending)

    def close(self) -> None:
        for member in self.members.values():
            member.db.close()

    # --- inside the lock -------------------------------------------------------
    def _commit(self, service: str, work: Callable[[], tuple[T, list[RawEnvelope], bool]]
                ) -> tuple[T, list[_Pending]]:
        db = self.members[service].db
        with db.tx():
            result, events, commit = work()
            if not commit:
                raise _Rollback(result)
            return result, self._persist(service, events)

    def _persist(self, service: str, events: list[RawEnvelope]) -> list[_Pending]:
        """Write events to ``service``'s outbox, inside the caller's transaction."""
        if not events:
            return []
        stored = []
        with self.members[service].db.tx() as tx:
            for env in events:
                cur = tx.execute("INSERT INTO outbox (envelope) VALUES (?)", (json.dumps(env),))
                stored.append(_Pending(service, int(cur.lastrowid or 0), env))
        for env in events:
            EVENTS_PUBLISHED.labels(service, env["type"]).inc()
        return stored

    def _deliver(self, items: list[_Pending]) -> None:
        queue = deque(items)
        while queue:
            # Consecutive events go to each subscriber in one transaction of its own
            # file: a batch of ballots costs each subscriber one commit, not one each.
            batch = [queue.popleft() for _ in range(min(len(queue), 512))]
            failed: set[int] = set()
            by_subscriber: dict[tuple[str, int], tuple[str, Subscriber, list[int]]] = {}
            for i, item in enumerate(batch):
                for name, sub in self._routes.get(item.envelope["type"], []):
                    by_subscriber.setdefault((name, id(sub)), (name, sub, []))[2].append(i)
            for name, sub, indexes in by_subscriber.values():
                produced, lost = self._handle(name, sub, [batch[i] for i in indexes])
                queue.extend(produced)
                failed.update(indexes[j] for j in lost)
            self._delete(item for i, item in enumerate(batch) if i not in failed)

    def _handle(self, name: str, sub: Subscriber, items: list[_Pending]
                ) -> tuple[list[_Pending], list[int]]:
        """Hand ``items`` to one subscriber in one transaction; if one of them fails,
        again one by one, so only the failing ones stay in their outbox."""
        try:
            with self.members[name].db.tx():
                produced = [p for item in items
                            for p in self._persist(name, sub.on_event(item.envelope))]
            return produced, []
        except Exception:
            if len(items) > 1:
                produced, lost = [], []
                for j, item in enumerate(items):
                    more, failed = self._handle(name, sub, [item])
                    produced += more
                    lost += [j] if failed else []
                return produced, lost
            log.exception("event handler failed; kept in the outbox for the next start",
                          extra=log_fields(service=sub.name, type=items[0].envelope["type"],
                                           event_id=items[0].envelope.get("id")))
            return [], [0]

    def _delete(self, delivered: Iterable[_Pending]) -> None:
        by_producer: dict[str, list[int]] = {}
        for item in delivered:
            by_producer.setdefault(item.producer, []).append(item.seq)
        for producer, seqs in by_producer.items():
            with self.members[producer].db.tx() as tx:
                tx.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
