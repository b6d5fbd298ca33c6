"""What every nameko service class of urne is made of (``urne/runtime/nameko_services.py``).

A nameko service is a thin adapter around a transport-free ``ServiceCore``: its RPC
entrypoint ``handle`` runs a command, its event handlers feed ``core.on_event``,
and the events a handler produced are dispatched after it returned, i.e. after its
writes were committed. Importing this module needs eventlet patched (nameko runs
on green threads), which ``urne/__main__.py`` does first thing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amqp.exceptions import ConnectionError as AmqpConnectionError
from amqp.exceptions import RecoverableConnectionError
from kombu import Exchange, Queue
from kombu.exceptions import OperationalError
from nameko.extensions import DependencyProvider
from nameko.messaging import Publisher

from urne.messaging.ballot_stream import ensure_topology
from urne.messaging.counting_stream import COUNTING_EXCHANGE, event_route
from urne.messaging.kernel import RawEnvelope, RawReply, RunningCore, ServiceCore, failed
from urne.messaging.signatures import (
    RecentIds,
    Refused,
    Signer,
    Verifier,
    load_signer,
    load_verifier,
    signed_reply,
)
from urne.platform.errors import DomainError
from urne.platform.logging import log_fields
from urne.platform.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)

# The nameko config key under which the process's settings reach the providers.
SETTINGS_KEY = "URNE_SETTINGS"

DEAD_LETTER_EXCHANGE = Exchange("urne.dead-letters", type="fanout", durable=True)
DEAD_LETTER_QUEUE = Queue("urne.dead-letters", exchange=DEAD_LETTER_EXCHANGE, durable=True)
# A failing event is requeued up to this many times in one process, then parked in the
# dead-letter queue instead of looping forever. A passing fault (a store that does not
# answer: a 503 DomainError) is not counted: the event waits, with backoff, and is
# requeued for as long as it takes, never parked (issue 8: transient is not poison).
MAX_EVENT_ATTEMPTS = 5
MAX_BACKOFF_SECONDS = 10.0

Dispatch = Callable[[str, RawEnvelope], None]

# Recorded ballots sent again by the vote service go to their counting streams.
COUNTING = Exchange(COUNTING_EXCHANGE, type="direct", durable=True)


def counting_publisher() -> Publisher:
    return Publisher(exchange=COUNTING)  # confirmed, persistent: nameko's defaults


def routed(dispatch: Dispatch, counting: Callable[..., None]) -> Dispatch:
    """``dispatch`` (to ``<service>.events`` by type), but a shard's recorded ballots to
    their counting stream (``counting_stream.event_route``)."""
    def send(event_type: str, env: RawEnvelope) -> None:
        exchange, key = event_route(env, "")
        if exchange == COUNTING_EXCHANGE:
            counting(env, routing_key=key)
        else:
            dispatch(event_type, env)
    return send


class CoreProvider(DependencyProvider):
    """Builds the service's core when the container starts, from the settings in the
    nameko config, hands it to every worker, and closes its sessions at stop."""

    def __init__(self, build: Callable[[Any], RunningCore]):
        self.build = build
        self.running: RunningCore | None = None

    def setup(self) -> None:
        self.running = self.build(self.container.config[SETTINGS_KEY])

    def stop(self) -> None:
        if self.running is not None:
            self.running.close()
            self.running = None

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> ServiceCore:
        assert self.running is not None, "the core is built in setup()"
        return self.running.core


@dataclass(frozen=True)
class Envelopes:
    """The service's signer (what it publishes) and verifier (what it consumes), and
    the ids of the last events this process handled to the end."""

    signer: Signer
    verifier: Verifier
    handled: RecentIds = field(default_factory=RecentIds, compare=False)


class Trust(DependencyProvider):
    """Loads the service's envelope key and the producers' public keys at start."""

    def setup(self) -> None:
        keys_dir = self.container.config[SETTINGS_KEY].keys_dir
        name = self.container.service_name
        self.envelopes = Envelopes(load_signer(keys_dir, name), load_verifier(keys_dir, name))

    def get_dependency(self, worker_ctx: Any) -> Envelopes:
        return self.envelopes


class BallotTopology(DependencyProvider):
    """Declares the ballot stream's shard queues when the container starts, so the
    close markers this service emits always have somewhere to go."""

    def setup(self) -> None:
        settings = self.container.config[SETTINGS_KEY]
        ensure_topology(settings.amqp_url, settings.ballot_shards, settings.counting_shards)


# The broker, not the event: the handler's writes are done (they are idempotent), its
# events could not be published. Tried again after a wait, like a store that is away;
# never parked, or a close would lose its marker for a broker's restart.
BROKER_AWAY = (OperationalError, AmqpConnectionError, RecoverableConnectionError,
               ConnectionError)


def passing(exc: Exception) -> bool:
    """A fault that passes by itself: a store away (503) or the broker away."""
    return (isinstance(exc, DomainError) and exc.status == 503) or isinstance(exc, BROKER_AWAY)


@dataclass
class Parking:
    """Counts failed deliveries of each event; parks an event after the last attempt."""

    service: str
    failures: Counter[str]
    publish: Callable[..., None]
    waits: Counter[str] = field(default_factory=Counter)  # passing faults, for the backoff
    sleep: Callable[[float], None] = time.sleep  # green under nameko: other workers go on

    def failed(self, envelope: Any, exc: Exception) -> bool:
        """Record a failure; True when the event was parked (ack it), False to requeue."""
        event_id = str(envelope.get("id", "?")) if isinstance(envelope, dict) else "?"
        if passing(exc):
            self.waits[event_id] += 1
            delay = min(0.25 * 2 ** (self.waits[event_id] - 1), MAX_BACKOFF_SECONDS)
            log.warning("event waits for its store or the broker; requeued", extra=log_fields(
                event_id=event_id, retry_in_s=delay, error=repr(exc)[:300]))
            self.sleep(delay)  # holding the delivery: consumption slows down, nothing lost
            return False
        self.failures[event_id] += 1
        if self.failures[event_id] < MAX_EVENT_ATTEMPTS:
            log.warning("event failed; requeued", extra=log_fields(
                event_id=event_id, attempt=self.failures[event_id], error=repr(exc)))
            return False
        del self.failures[event_id]
        log.error("event dead-lettered", extra=log_fields(event_id=event_id, error=repr(exc)))
        self.publish({"service": self.service, "error_type": type(exc).__name__,
                      "error": str(exc), "attempts": MAX_EVENT_ATTEMPTS, "envelope": envelope})
        return True

    def refuse(self, envelope: Any, exc: Refused) -> None:
        """Park a message refused before handling (not signed by whom it names, or not
        theirs to send): once, with its reason, never retried."""
        log.error("message refused and dead-lettered", extra=log_fields(
            reason=exc.reason, detail=exc.detail, type=str(
                envelope.get("type") if isinstance(envelope, dict) else "?")[:100]))
        self.publish({"service": self.service, "error_type": "Refused", "reason": exc.reason,
                      "error": str(exc), "attempts": 1, "envelope": envelope})

    def succeeded(self, envelope: Any) -> None:
        if isinstance(envelope, dict):
            self.failures.pop(str(envelope.get("id", "?")), None)
            self.waits.pop(str(envelope.get("id", "?")), None)


class DeadLetters(Publisher):
    """The dead-letter queue, declared with the service, and the per-process count of
    failed deliveries that decides when an event goes there."""

    def __init__(self) -> None:
        super().__init__(exchange=DEAD_LETTER_EXCHANGE, declare=[DEAD_LETTER_QUEUE])
        self.failures: Counter[str] = Counter()
        self.waits: Counter[str] = Counter()

    def get_dependency(self, worker_ctx: Any) -> Parking:
        return Parking(self.container.service_name, self.failures,
                       super().get_dependency(worker_ctx), self.waits)


def publish(core: ServiceCore, dispatch: Dispatch, envelopes: Envelopes,
            events: list[RawEnvelope]) -> None:
    for env in events:
        dispatch(env["type"], envelopes.signer.sign(env))  # waits for the broker's confirm
        EVENTS_PUBLISHED.labels(core.name, env["type"]).inc()
    if events:
        try:
            core.published(events)
        except Exception as exc:  # the outbox keeps them: they go again, no harm
            log.warning("published events not cleared from the outbox", extra=log_fields(
                service=core.name, error=repr(exc)[:300]))


def serve_command(core: ServiceCore, dispatch: Dispatch, envelopes: Envelopes,
                  envelope: RawEnvelope) -> RawReply:
    """Run a command, then publish its events: the body of the ``handle`` RPC once the
    envelope passed (``serve_rpc``), and of the timers, which build their own."""
    reply, events = core.handle(envelope)
    publish(core, dispatch, envelopes, events)
    return reply


def serve_rpc(core: ServiceCore, dispatch: Dispatch, envelopes: Envelopes, parking: Parking,
              envelope: RawEnvelope) -> RawReply:
    """The body of every ``handle`` RPC: a command from the broker runs only if its
    sender signed it and may send it. The reply is signed, naming the request it
    answers (``urne.messaging.signatures.signed_reply``); so is a failure to publish the
    command's events (the core itself answers every error of its own), so the gateway
    need take no unsigned answer."""
    try:
        envelopes.verifier.check(envelope)
    except Refused as exc:
        parking.refuse(envelope, exc)
        reply = failed(DomainError(f"message refused: {exc}"[:300], code="message_refused",
                                   status=403))
    else:
        try:
            reply = serve_command(core, dispatch, envelopes, envelope)
        except Exception as exc:
            # Its writes are done, its events not confirmed: "not now". Sent again, a
            # command whose state is already reached sends its events again (open,
            # close and publication are idempotent re-emitters).
            log.warning("command done, its events not published", extra=log_fields(
                service=core.name, type=str(envelope.get("type"))[:100],
                error=repr(exc)[:300]))
            reply = failed(DomainError("the service could not publish what the command "
                                       "changed; send it again shortly",
                                       code="service_unavailable", status=503))
    request_id = envelope.get("id") if isinstance(envelope, dict) else None
    return signed_reply(envelopes.signer, request_id, reply)


def consume_event(core: ServiceCore, dispatch: Dispatch, envelopes: Envelopes,
                  parking: Parking, envelope: RawEnvelope) -> None:
    """The body of every event handler. An event not signed by its producer is parked
    at once. Raising requeues the event (the handlers are idempotent); after
    ``MAX_EVENT_ATTEMPTS`` failures it is parked instead.

    An event this process already handled to the end (its writes done, its own events
    confirmed), sent again (a replay, or a redelivery of a message whose ack was lost),
    is passed over: the verifier counted it as repeated; no alarm. One whose handling
    failed is not "handled", so its redelivery runs again. A replay this process no
    longer remembers (after a restart, or 16,384 events later) runs again, and the
    idempotent handlers make it change nothing."""
    try:
        envelopes.verifier.check(envelope)
    except Refused as exc:
        parking.refuse(envelope, exc)
        return
    event_id = envelope.get("id")
    if isinstance(event_id, str) and event_id in envelopes.handled:
        log.info("event handled already; passed over", extra=log_fields(
            service=core.name, type=str(envelope.get("type"))[:100], id=event_id[:64]))
        return
    try:
        publish(core, dispatch, envelopes, core.on_event(envelope))
    except Exception as exc:
        if not parking.failed(envelope, exc):
            raise
    else:
        parking.succeeded(envelope)
        if isinstance(event_id, str):
            envelopes.handled.add(event_id)
