"""The nameko adapter: turns a transport-free ``ServiceCore`` into a nameko service.

One RPC entrypoint, ``<service>.handle``, takes any command envelope the core
registers; one event handler per subscribed event type feeds ``core.on_event``.
Events a handler produced are dispatched after it returned, i.e. after its
writes were committed. Importing this module requires eventlet to be patched.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from typing import Any

from kombu import Exchange, Queue
from nameko.events import EventDispatcher, event_handler
from nameko.extensions import DependencyProvider
from nameko.messaging import Publisher
from nameko.rpc import rpc

from urne.shared.kernel import RawEnvelope, Reply, ServiceCore
from urne.shared.logging import log_fields
from urne.shared.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = Exchange("urne.dead-letters", type="fanout", durable=True)
DEAD_LETTER_QUEUE = Queue("urne.dead-letters", exchange=DEAD_LETTER_EXCHANGE, durable=True)
# A failing event is requeued (transient faults: store down) up to this many times
# in one process, then parked in the dead-letter queue instead of looping forever.
MAX_EVENT_ATTEMPTS = 5


class CoreProvider(DependencyProvider):
    """Hands the (already built) core to every worker."""

    def __init__(self, core: ServiceCore):
        self.core = core

    def get_dependency(self, worker_ctx: Any) -> ServiceCore:
        return self.core


def service_class(core: ServiceCore) -> type:
    failures: Tally[str] = Tally()

    def publish(self: Any, events: list[RawEnvelope]) -> None:
        for env in events:
            self.dispatch(env["type"], env)  # waits for the broker's confirm
            EVENTS_PUBLISHED.labels(core.name, env["type"]).inc()

    def handle(self: Any, envelope: RawEnvelope) -> Reply:
        reply, events = self.core.handle(envelope)
        publish(self, events)
        return reply

    def consume(self: Any, envelope: RawEnvelope) -> None:
        event_id = str(envelope.get("id", "?")) if isinstance(envelope, dict) else "?"
        try:
            publish(self, self.core.on_event(envelope))
        except Exception as exc:
            failures[event_id] += 1
            if failures[event_id] < MAX_EVENT_ATTEMPTS:
                log.warning("event failed; requeued", extra=log_fields(
                    event_id=event_id, attempt=failures[event_id], error=repr(exc)))
                raise
            del failures[event_id]
            log.error("event dead-lettered", extra=log_fields(event_id=event_id,
                                                               error=repr(exc)))
            self.dead_letter({"service": core.name, "error_type": type(exc).__name__,
                              "error": str(exc), "attempts": MAX_EVENT_ATTEMPTS,
                              "envelope": envelope})
        else:
            failures.pop(event_id, None)

    attrs: dict[str, Any] = {
        "name": core.name,
        "core": CoreProvider(core),
        "dispatch": EventDispatcher(),
        "dead_letter": Publisher(exchange=DEAD_LETTER_EXCHANGE, declare=[DEAD_LETTER_QUEUE]),
        "handle": rpc(handle),
    }
    for event_cls in core.event_types:
        def on_event(self: Any, envelope: RawEnvelope) -> None:
            consume(self, envelope)

        method = "on_" + event_cls.TYPE.replace(".", "_")
        on_event.__name__ = method
        attrs[method] = event_handler(event_cls.PRODUCER, event_cls.TYPE,
                                      requeue_on_error=True)(on_event)
    return type(f"{core.name.title()}Service", (), attrs)
