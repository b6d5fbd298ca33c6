"""The ballot stream of the distributed profile (ARCHITECTURE.md D4, D7).

Topology, declared by every vote worker (idempotent):

- ``urne.ballots``: a consistent-hash exchange. The gateway publishes each ballot with
  the voter key as routing key, so all of one voter's ballots land in one shard.
- ``urne.ballots.shard-NNN`` (``ballot_shards`` of them): durable queues with a single
  active consumer, so one worker at a time takes a shard, in order. Each is also bound
  to ``vote.events`` for ``ballot_box.closed.v1``: the close marker lands in every
  shard, behind the ballots already there.
- ``urne.vote-workers``: a fanout exchange on which workers announce themselves every
  second, so each knows who is alive and which shards are its own (rendezvous hashing).

A ``ShardWorker`` consumes every shard queue (so a shard always has a waiting
consumer when its worker dies), takes what arrived as one batch, hands it to the
intake, publishes the replies and the events (events with publisher confirms), and
only then acks. When it finds itself active on a shard that another live worker owns,
it finishes its batch and steps back, so each worker actively consumes its share.
Each shard has a channel of its own, and stepping back closes it: the broker then
returns that shard's unprocessed deliveries to the head of the queue and hands the
queue to the next consumer in one step, so the next worker sees one voter's ballots
in the order they came (a cancel followed by nacks would let it start on later ones
first). A crash anywhere before the ack means redelivery, which the intake's
idempotent writes absorb.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from urne.messaging.amqp_tls import pika_parameters
from urne.messaging.channels import close_without_cancel, wait_before
from urne.messaging.confirms import ConfirmedChannel
from urne.messaging.counting_stream import DEAD_LETTERS, Admit, declare_counting, event_route
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.messaging.membership import HEARTBEAT_SECONDS, Membership
from urne.messaging.signatures import batch_reply
from urne.platform import jsonbytes
from urne.platform.logging import log_fields
from urne.platform.metrics import (
    BALLOT_BATCH_SIZE,
    EVENTS_PUBLISHED,
    MESSAGES_REFUSED,
    SHARDS_ACTIVE,
)

log = logging.getLogger(__name__)

BALLOTS_EXCHANGE = "urne.ballots"
BALLOTS_EXCHANGE_TYPE = "x-consistent-hash"  # the rabbitmq_consistent_hash_exchange plugin
EVENTS_EXCHANGE = "vote.events"  # nameko's <service>.events: where vote's events go
REPLY_EXCHANGE = "nameko-rpc"  # the gateway's reply queue is bound there
MARKER_TYPE = "ballot_box.closed.v1"
# The AMQP type of a message carrying several replies: a signed batch reply
# (``urne.messaging.signatures.batch_reply``: [[correlation id, reply], ...] inside).
REPLIES_TYPE = "urne.replies"
PRODUCER = "vote"  # whose key a vote worker signs its events and replies with
WORKERS_EXCHANGE = "urne.vote-workers"
EVENT_PROPERTIES = pika.BasicProperties(content_type="application/json", delivery_mode=2)


def shard_queue(shard: int) -> str:
    return f"urne.ballots.shard-{shard:03d}"


def declare_topology(channel: BlockingChannel, shards: int, counting_shards: int = 1) -> None:
    """Exchanges, shard queues and bindings, and the counting streams the vote workers
    publish to; every declaration is idempotent."""
    channel.exchange_declare(BALLOTS_EXCHANGE, BALLOTS_EXCHANGE_TYPE, durable=True)
    channel.exchange_declare(EVENTS_EXCHANGE, "topic", durable=True)
    for shard in range(shards):
        name = shard_queue(shard)
        channel.queue_declare(name, durable=True,
                              arguments={"x-single-active-consumer": True})
        channel.queue_bind(name, BALLOTS_EXCHANGE, routing_key="1")  # equal weights
        channel.queue_bind(name, EVENTS_EXCHANGE, routing_key=MARKER_TYPE)
    channel.exchange_declare(DEAD_LETTERS, "fanout", durable=True)
    channel.queue_declare(DEAD_LETTERS, durable=True)
    channel.queue_bind(DEAD_LETTERS, DEAD_LETTERS)
    declare_counting(channel, counting_shards)  # where the recorded ballots go


@dataclass
class Batch:
    """What the handler returns for a batch: a reply per item (None for a close marker)
    and the events to publish before the ack."""

    replies: list[RawReply | None]
    events: list[RawEnvelope]


# (items, the shard of each item, the fence): all the worker's shards in one batch, so a
# busy worker pays one round of store reads and writes per batch, not one per shard.
# The handler calls the fence right before it writes (see ``Stalled``).
Handler = Callable[[list[RawEnvelope], list[int], Callable[[], None]], Batch]


class Stalled(pika.exceptions.AMQPError):
    """This worker stopped for longer than the broker waits for a silent connection (a
    paused or starved process): the broker may have handed its shards, and the
    deliveries it holds, to another worker, which may be recording them right now. Its
    session is over: it writes nothing more of what it holds (whoever has the shard now
    records them), drops it, and reconnects as a newcomer. Without this, a worker
    resuming after such a pause wrote ballots decided on what it had read before, beside
    the other worker's decisions for the same voters (two ballot ids for one voter's
    sequence, so a seal counting one ballot more than the record)."""


@dataclass
class _Delivery:
    shard: int
    channel: BlockingChannel  # tags are per channel: acks go back on this one
    tag: int
    reply_to: str | None
    correlation_id: str | None
    body: Any
    refused: str | None = None  # why the message is not handed to the intake


Sign = Callable[[RawEnvelope], RawEnvelope]
Coalesce = Callable[[list[RawEnvelope]], list[RawEnvelope]]


class ShardWorker:
    def __init__(self, amqp_url: str, shards: int, handle: Handler, *,
                 transient: Callable[[Exception], bool], prefetch: int = 500,
                 max_batch: int = 500, heartbeat: int = 30, counting_shards: int = 1,
                 linger: float = 0.0, events_every: float = 0.0,
                 coalesce: Coalesce = lambda events: events,
                 admit: Admit = lambda envelope: None, sign: Sign = lambda env: env):
        """``transient(exc)``: whether a failure is a passing fault (a store that is
        down): such a batch is retried, with backoff, for as long as it takes; any
        other failure is looked for message by message, and the culprit parked.
        ``counting_shards``: the counting streams the handler's events go to.
        ``admit``: whether a message may reach the handler (signed envelopes); one
        refused is parked with its reason and its sender told. ``sign``: applied to
        every event published. ``linger``: how long what arrived may wait for more
        before it is taken as a batch (below). ``events_every``: how long a batch's
        events may wait for the next batches' before they go out, together
        (``coalesce`` makes few messages of them), and the batches' messages are acked
        (below)."""
        self.amqp_url, self.shards, self.handle = amqp_url, shards, handle
        self.admit, self.sign = admit, sign
        self.counting_shards = counting_shards
        self.transient = transient
        self.prefetch, self.max_batch, self.heartbeat = prefetch, max_batch, heartbeat
        # A batch costs about the same whatever its size (a read and a write in the
        # store, its events with their confirms, a reply per gateway, an ack per shard,
        # identity's and the tally's handling of its events), so taking whatever came
        # the moment it came made the batches smallest, and most frequent, when the
        # traffic was light: at 200 ballots/s the system spent as much CPU a second as
        # at 400 (docs/performance.md). Waiting ``linger`` for more bounds how many
        # batches a worker makes a second, and adds at most that to a ballot's answer.
        self.linger = linger
        self._since = 0.0  # when the oldest pending delivery arrived
        # A batch's replies go as soon as it is stored; its events, and the acks that
        # wait for their confirms, may wait ``events_every`` for the next batches', so a
        # fast cycle of small batches does not pay the broker, the tally and identity a
        # message per counting shard and batch. Nothing changes for a voter (the answer
        # is out) or for what is kept: a delivery stays unacked until its events are
        # confirmed, and one delivered again is answered and announced again.
        self.events_every, self.coalesce = events_every, coalesce
        self._unsent: list[RawEnvelope] = []  # events of the batches handled, not yet sent
        self._unacked: list[_Delivery] = []  # their deliveries
        self._unsent_since = 0.0
        self.membership = Membership(uuid.uuid4().hex[:12])
        # Past this, a stop of the process may have outlasted the broker's patience
        # (about ``heartbeat`` seconds of silence): see Stalled.
        self.stall_limit = heartbeat * 0.75
        self._pending: list[_Delivery] = []
        self._channels: dict[int, BlockingChannel] = {}  # shard -> its channel
        self._active: set[int] = set()
        # A worker's share of the prefetch window, per shard it may be active on.
        self._window = max(32, prefetch // shards)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; reconnects after a broker outage."""
        while not stop.is_set():
            try:
                self._session(stop)
            except pika.exceptions.AMQPError as exc:
                log.warning("broker connection lost; reconnecting",
                            extra=log_fields(error=repr(exc)))
                self._pending.clear()  # unacked: the broker redelivers them
                self._unacked.clear()  # and these, whose events are sent again then
                self._unsent.clear()
                self._channels.clear()
                self._active.clear()
                SHARDS_ACTIVE.set(0)
                stop.wait(1.0)

    # --- one connection ----------------------------------------------------------
    def _session(self, stop: threading.Event) -> None:
        params = pika_parameters(self.amqp_url)
        params.heartbeat = self.heartbeat
        params.client_properties = {"connection_name": f"urne-vote-worker-{self.membership.me}"}
        connection = pika.BlockingConnection(params)
        try:
            # Replies, heartbeats and parked messages go out on ``control``, events on
            # ``events`` (confirmed); each shard is consumed on a channel of its own.
            control = connection.channel()
            events = ConfirmedChannel(connection)
            declare_topology(control, self.shards, self.counting_shards)
            self.membership.join(control, WORKERS_EXCHANGE)
            for shard in range(self.shards):
                self._subscribe(connection, shard)
            log.info("vote worker consuming", extra=log_fields(
                worker=self.membership.me, shards=self.shards))
            next_beat, backoff, retry_at = 0.0, 0.0, 0.0
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self.membership.announce(control, WORKERS_EXCHANGE, self._active)
                    next_beat = now + HEARTBEAT_SECONDS
                waiting = now < retry_at
                due = self._batch_due(now)
                waited = wait_before(now, next_beat, retry_at if waiting else None,
                                     None if waiting or due is None else now + due,
                                     self._events_due())
                connection.process_data_events(time_limit=waited)
                if time.monotonic() - now - waited > self.stall_limit:
                    raise Stalled(f"stopped for {time.monotonic() - now:.1f} s")
                if (sent_by := self._events_due()) is not None and time.monotonic() >= sent_by:
                    self._send_events(connection, events)
                due = self._batch_due(time.monotonic())
                if waiting or due is None or due > 0:
                    continue
                size = len(self._pending[:self.max_batch])
                try:
                    self._flush(connection, control, events)
                    backoff = 0.0
                except pika.exceptions.AMQPError:
                    raise
                except Exception as exc:
                    if not self.transient(exc):
                        # Not a passing fault: take the batch one message at a time, so
                        # one bad message is parked and the others go through.
                        log.error("batch failed; isolating", extra=log_fields(
                            error=repr(exc)[:300], messages=size))
                        try:
                            self._isolate(connection, control, events, size)
                            continue
                        except pika.exceptions.AMQPError:
                            raise
                        except Exception as again:
                            exc = again  # transient after all: back off below
                    # The store is down, most likely: nothing was acked, so nothing is
                    # lost; wait (serving heartbeats) and try the same batch again,
                    # never dead-letter it for a passing fault.
                    backoff = min(max(backoff * 2, 0.25), 10.0)
                    log.warning("batch failed; retrying", extra=log_fields(
                        error=repr(exc)[:300], retry_in_s=backoff))
                    # Not a sleep: the loop goes on announcing this worker (and serving
                    # the broker), so the others do not take its shards meanwhile.
                    retry_at = time.monotonic() + backoff
            if self._unacked:  # asked to stop: what is answered is announced and acked
                self._send_events(connection, events)
        finally:
            if connection.is_open:
                # Shard channels first, without cancelling (see close_without_cancel): a worker that
                # stops hands its shards over in order, like one that steps back.
                for channel in list(self._channels.values()):
                    close_without_cancel(connection, channel)
                self._channels.clear()
                connection.close()

    def _events_due(self) -> float | None:
        """When the events held back must go (None: none held)."""
        return self._unsent_since + self.events_every if self._unacked else None

    def _batch_due(self, now: float) -> float | None:
        """Seconds before what is pending is taken as a batch (0: now); None if nothing
        is pending. A full batch goes at once, else it lingers from its first arrival."""
        if not self._pending:
            return None
        if len(self._pending) >= self.max_batch:
            return 0.0
        return max(0.0, self._since + self.linger - now)

    def _subscribe(self, connection: pika.BlockingConnection, shard: int) -> None:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self._window)

        def received(ch: BlockingChannel, method: Any, props: Any, body: bytes) -> None:
            if not ch.is_open:  # stepped back from: the broker has requeued it
                return
            try:
                envelope = jsonbytes.loads(body)
            except ValueError:
                envelope = {"unreadable": body[:200].decode(errors="replace")}
            refused = self.admit(envelope)
            if refused is None and method.exchange != EVENTS_EXCHANGE and \
                    isinstance(envelope, dict) and envelope.get("type") == MARKER_TYPE:
                # A close marker counts only from vote.events, where only the vote
                # service's users may publish; through urne.ballots (the gateway's) it
                # is a forgery that would close the poll early: refused, never applied.
                refused = "not_allowed: a close marker may come only from vote.events"
                MESSAGES_REFUSED.labels("vote-worker", "not_allowed").inc()
            if not self._pending:
                self._since = time.monotonic()
            self._pending.append(_Delivery(shard, ch, method.delivery_tag, props.reply_to,
                                           props.correlation_id, envelope, refused))

        channel.basic_consume(shard_queue(shard), received)
        self._channels[shard] = channel

    def _isolate(self, connection: pika.BlockingConnection, control: BlockingChannel,
                 events: ConfirmedChannel, count: int) -> None:
        """The next ``count`` messages one by one; a message that fails alone (and not for
        a passing fault) is parked in the dead-letter queue, with its error."""
        for _ in range(min(count, len(self._pending))):
            delivery = self._pending[0]
            try:
                self._flush(connection, control, events, size=1)
            except pika.exceptions.AMQPError:
                raise
            except Exception as exc:
                if self.transient(exc):
                    raise
                self._park(control, delivery, exc)

    def _park(self, channel: BlockingChannel, d: _Delivery, exc: Exception) -> None:
        log.error("ballot message dead-lettered", extra=log_fields(error=repr(exc)[:300]))
        self._dead_letter(channel, d, {"error_type": type(exc).__name__,
                                       "error": str(exc)[:2000]},
                          {"code": "internal_error", "status": 500,
                           "detail": "the vote service failed"})
        d.channel.basic_ack(d.tag)
        self._pending.remove(d)

    def _refuse(self, channel: BlockingChannel, d: _Delivery) -> None:
        """Park a message refused on arrival; acked with the rest of its batch."""
        reason = str(d.refused)
        log.error("ballot message refused and dead-lettered", extra=log_fields(
            reason=reason[:300], type=str(d.body.get("type") if isinstance(
                d.body, dict) else "?")[:100]))
        self._dead_letter(channel, d, {"error_type": "Refused", "reason": reason.split(":")[0],
                                       "error": reason[:2000]},
                          {"code": "message_refused", "status": 403,
                           "detail": f"message refused: {reason}"[:300]})

    def _dead_letter(self, channel: BlockingChannel, d: _Delivery, why: dict[str, Any],
                     failure: dict[str, Any]) -> None:
        channel.basic_publish(DEAD_LETTERS, "", json.dumps({
            "service": "vote", **why, "attempts": 1, "envelope": d.body}).encode(),
            pika.BasicProperties(content_type="application/json", delivery_mode=2))
        if d.reply_to and d.correlation_id:  # the client learns now, not by timing out
            self._reply(channel, d.reply_to, [(d.correlation_id,
                                               {"ok": False, "error": failure})])

    def _reply(self, channel: BlockingChannel, reply_to: str,
               answered: list[tuple[str, RawReply]]) -> None:
        """One signed message of replies to one gateway: the gateway takes receipts
        only from the vote service's key."""
        channel.basic_publish(REPLY_EXCHANGE, reply_to,
                              jsonbytes.dumps(self.sign(batch_reply(PRODUCER, answered))),
                              pika.BasicProperties(content_type="application/json",
                                                   delivery_mode=1, type=REPLIES_TYPE))

    def _flush(self, connection: pika.BlockingConnection, control: BlockingChannel,
               events: ConfirmedChannel, size: int | None = None) -> None:
        batch = self._pending[:size or self.max_batch]
        started = time.monotonic()

        def fence() -> None:
            if time.monotonic() - started > self.stall_limit:
                raise Stalled(f"a batch stopped for {time.monotonic() - started:.1f} s "
                              "before its writes")

        # If this raises, nothing was sent and nothing acked: the loop retries the batch.
        taken = [d for d in batch if d.refused is None]
        result = self.handle([d.body for d in taken], [d.shard for d in taken], fence)
        del self._pending[:len(batch)]
        BALLOT_BATCH_SIZE.observe(len(batch))
        # The replies first: the batch is stored, so every 201 in them is final, and a
        # voter's answer need not wait for the events' confirms (one round trip each).
        # One reply message per gateway per batch, not one per ballot: for the broker
        # and for both ends, a message costs far more than its size.
        for d in batch:
            if d.refused is not None:
                self._refuse(control, d)
        replies: dict[str, list[tuple[str, RawReply]]] = {}
        for d, reply in zip(taken, result.replies, strict=True):
            if reply is not None and d.reply_to and d.correlation_id:
                replies.setdefault(d.reply_to, []).append((d.correlation_id, reply))
        for reply_to, answered in replies.items():
            self._reply(control, reply_to, answered)
        if not self._unacked:
            self._unsent_since = time.monotonic()
        self._unsent += result.events
        self._unacked += batch
        # A close marker's batch goes at once (the seal waits for it), and so do shards
        # whose unacked messages would soon fill their prefetch window.
        held = Counter(d.shard for d in self._unacked).most_common(1)
        if self.events_every <= 0 or (held and held[0][1] * 2 >= self._window) or any(
                isinstance(d.body, dict) and d.body.get("type") == MARKER_TYPE for d in batch):
            self._send_events(connection, events)

    def _send_events(self, connection: pika.BlockingConnection,
                     events: ConfirmedChannel) -> None:
        """The events of the batches handled, confirmed, then their messages acked.

        The tally hears of every stored ballot before the ballots' messages are acked (a
        crash in between redelivers them, and the intake sends the events again for what
        it finds stored). Recorded ballots go to their counting streams, anything else to
        vote.events. All sent, then all confirmed: one round trip to the broker, not one
        per event."""
        sent = self.coalesce(self._unsent)
        events.publish([(*event_route(env, EVENTS_EXCHANGE), jsonbytes.dumps(self.sign(env)),
                         EVENT_PROPERTIES) for env in sent])
        for env in sent:
            EVENTS_PUBLISHED.labels("vote", env["type"]).inc()
        # Each shard's deliveries are taken in order, so its newest tag acks them all.
        last: dict[int, _Delivery] = {}
        for d in self._unacked:
            last[d.shard] = d
        for d in last.values():
            d.channel.basic_ack(d.tag, multiple=True)
        self._unsent, self._unacked = [], []
        self._step_back(connection, set(last))

    def _step_back(self, connection: pika.BlockingConnection, shards: set[int]) -> None:
        """Leave the shards another live worker owns (their batch is acked)."""
        now = time.monotonic()
        self._active |= shards
        for shard in sorted(shards):
            if self.membership.owner(shard, self.shards, now) == self.membership.me:
                continue
            # Closing the channel requeues its unprocessed deliveries, in order, and
            # removes the consumer at once: the next consumer starts where we stopped.
            closed = self._channels.pop(shard)
            close_without_cancel(connection, closed)
            self._pending = [d for d in self._pending if d.channel is not closed]
            self._active.discard(shard)
            self._subscribe(connection, shard)  # back at the end of the line: a spare
        SHARDS_ACTIVE.set(len(self._active))


def ensure_topology(amqp_url: str, shards: int, counting_shards: int) -> None:
    """Declare the ballot stream on its own short connection (the vote service does it at
    start, so a close marker finds its shard queues even before any worker ran)."""
    connection = pika.BlockingConnection(pika_parameters(amqp_url))
    try:
        declare_topology(connection.channel(), shards, counting_shards)
    finally:
        connection.close()
