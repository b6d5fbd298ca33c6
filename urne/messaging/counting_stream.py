"""The counting streams of the distributed profile (ARCHITECTURE.md D7).

Topology, declared by every vote and tally worker and the vote service (idempotent):

- ``urne.counting``: a direct exchange; a ``ballots.recorded`` event for counting shard
  ``k`` is published with routing key ``NNN`` (``shard_key(k)``).
- ``urne.counting.shard-NNN``: RabbitMQ *streams* (append-only logs), one per shard. A
  ballot's counting shard is a modulus of its voter key (``counting_shard``), so every
  ballot of one voter, first sent or sent again, is in one stream, and one shard alone
  decides which of a voter's ballots counts. A stream gives each message a fixed
  offset: the tally checkpoints "applied up to here" and a restarted worker resumes
  exactly there, which a queue (messages gone once acked) cannot offer.
- Streams come in *generations* (``urne.counting.shard-NNN.gK`` after the first): the
  tally workers bind a new generation every ``URNE_COUNTING_ROTATE_SECONDS`` and delete
  an old one once every shard's checkpoint has left it, so ballots leave the broker
  (``counting_rotation.py``). A checkpoint is a *position*: the generation times
  ``GENERATION_SPAN`` plus the offset in that generation's stream, so positions keep
  growing across generations.
- ``urne.tally-workers``: a fanout exchange on which tally workers announce themselves
  every second, so each knows which shards are its own (rendezvous hashing, as the vote
  workers do).

A ``CountingWorker`` consumes the streams of the shards it owns, from each shard's
checkpoint, and hands what arrived to a ``Counter`` (the tally's ``ShardCounter``s),
which counts and moves the checkpoint by compare-and-set: two workers briefly on one
shard (a worker joining, one thought dead) compute the same thing, and the one whose
compare-and-set fails lets the shard go. Acks only give the stream consumer credit: the
checkpoint, not the broker, says what was applied.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pika
from pika.adapters.blocking_connection import BlockingChannel

from urne.messaging.amqp_tls import pika_parameters
from urne.messaging.channels import close_without_cancel, wait_before
from urne.messaging.kernel import RawEnvelope
from urne.messaging.membership import HEARTBEAT_SECONDS, Membership
from urne.messaging.signatures import UNKNOWN_KEY
from urne.platform import jsonbytes
from urne.platform.logging import log_fields
from urne.platform.metrics import COUNTING_SHARDS_OWNED

log = logging.getLogger(__name__)

COUNTING_EXCHANGE = "urne.counting"
DEAD_LETTERS = "urne.dead-letters"  # the same fanout exchange and queue as nameko's side
TALLY_WORKERS_EXCHANGE = "urne.tally-workers"
RECORDED_TYPE = "ballots.recorded.v1"
# A generation's streams are deleted once counted (counting_rotation.py); this only
# bounds one left uncounted, every tally worker down for a month (whole segments go,
# and the vote service sends a sealed poll's ballots again on ballots.missing).
STREAM_MAX_AGE = "30D"
STREAM_SEGMENT_BYTES = 64 * 1024 * 1024
# Positions: generation * GENERATION_SPAN + offset (a stream holds fewer messages).
GENERATION_SPAN = 10**12
ROTATED_TYPE = "counting.rotated.v1"
# Declared once the first generation's streams are bound: producers that find it leave
# the streams to the tally workers, who rotate them (a vote worker starting later must
# not bind the first generation again, or recreate it once deleted).
BOOTSTRAPPED = "urne.counting.generations"


def counting_shard(voter_key: str, shards: int) -> int:
    """The counting shard of a voter: the first 32 bits of the (hex) voter key, modulo
    the shard count. ``shards`` is a power of two, so a shard's ballots are whole
    bucket partitions of the tally's copy (its buckets are the same bits modulo 128)."""
    return int(voter_key[:8], 16) % shards


def shard_key(shard: int) -> str:
    return f"{shard:03d}"


def stream_name(shard: int, generation: int = 0) -> str:
    base = f"urne.counting.shard-{shard_key(shard)}"
    return base if generation == 0 else f"{base}.g{generation}"


def generation_of(position: int) -> int:
    return position // GENERATION_SPAN


def position_of(generation: int, offset: int = 0) -> int:
    return generation * GENERATION_SPAN + offset


def rotated_to(envelope: Any) -> int | None:
    """The generation a ``counting.rotated`` marker moves its shard to, or None if
    ``envelope`` is not one (checked for its signature first, as every message)."""
    if not isinstance(envelope, dict) or envelope.get("type") != ROTATED_TYPE:
        return None
    generation = envelope.get("payload", {}).get("generation")
    return generation if isinstance(generation, int) and generation >= 1 else None


def event_route(env: RawEnvelope, events_exchange: str) -> tuple[str, str]:
    """Where an event goes: a shard's ballots to its counting stream, anything else to
    ``events_exchange`` (its producer's ``<service>.events``) by type."""
    if env.get("type") == RECORDED_TYPE:
        shard = env.get("payload", {}).get("shard")
        if shard is not None:
            return COUNTING_EXCHANGE, shard_key(int(shard))
    return events_exchange, env["type"]


def declare_generation(channel: BlockingChannel, shards: int, generation: int) -> None:
    """A generation's streams, bound to the counting exchange (idempotent)."""
    channel.exchange_declare(COUNTING_EXCHANGE, "direct", durable=True)
    for shard in range(shards):
        name = stream_name(shard, generation)
        channel.queue_declare(name, durable=True, arguments={
            "x-queue-type": "stream", "x-max-age": STREAM_MAX_AGE,
            "x-stream-max-segment-size-bytes": STREAM_SEGMENT_BYTES})
        channel.queue_bind(name, COUNTING_EXCHANGE, routing_key=shard_key(shard))


def exists(connection: pika.BlockingConnection, exchange: str) -> bool:
    """Whether ``exchange`` is declared (a passive declare, on a channel of its own: a
    404 closes the channel that asked)."""
    probe = connection.channel()
    try:
        probe.exchange_declare(exchange, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:
            raise
        return False
    probe.close()
    return True


def declare_counting(channel: BlockingChannel, shards: int) -> None:
    """Where recorded ballots go, as their producers (and the first tally worker) see it:
    the counting exchange and, the first time ever, the first generation's streams.
    After that the tally workers own the streams and their bindings."""
    channel.exchange_declare(COUNTING_EXCHANGE, "direct", durable=True)
    if exists(channel.connection, BOOTSTRAPPED):
        return
    declare_generation(channel, shards, 0)
    channel.exchange_declare(BOOTSTRAPPED, "fanout", durable=True)  # last: all is bound


def ensure_counting(amqp_url: str, shards: int) -> None:
    """Declare the counting streams on a short connection of its own."""
    connection = pika.BlockingConnection(pika_parameters(amqp_url))
    try:
        declare_counting(connection.channel(), shards)
    finally:
        connection.close()


class Counter(Protocol):
    """What a counting worker drives, shard by shard (``services/tally/shards.py``)."""

    def take(self, shard: int) -> int:
        """Load the shard's checkpoint; the offset to consume from."""
        ...

    def apply(self, batches: dict[int, list[tuple[int, RawEnvelope]]]) -> set[int]:
        """Count each shard's messages (offset, envelope), in offset order, and move each
        shard's checkpoint past them; returns the shards another worker moved first
        (let them go). If it raises, nothing moved: the same messages are given again,
        and it counts them from the checkpoints."""
        ...

    def drop(self, shard: int) -> None:
        """Forget what was loaded for the shard."""
        ...


@dataclass
class _Delivery:
    shard: int
    channel: BlockingChannel
    tag: int
    offset: int
    body: Any


Admit = Callable[[Any], "str | None"]  # None: the message may be taken; else why not


class Rotation(Protocol):
    """What rotates the counting streams (``counting_rotation.StreamRotation``); the
    worker owning shard 0 drives it."""

    every: float  # seconds between two calls

    def tick(self, connection: pika.BlockingConnection) -> None: ...


class CountingWorker:
    def __init__(self, amqp_url: str, shards: int, counter: Counter, *,
                 transient: Callable[[Exception], bool], prefetch: int = 1000,
                 max_batch: int = 2000, heartbeat: int = 30, linger: float = 0.1,
                 admit: Admit = lambda envelope: None, rotation: Rotation | None = None):
        """``linger``: how long what arrived may wait for more before it is counted. A
        batch costs a compare-and-set (a Paxos round in Cassandra) per shard it touches,
        whatever its size: under live traffic, messages of a few ballots each come every
        few milliseconds, and counting each at once cost more than the counting."""
        self.amqp_url, self.shards, self.counter = amqp_url, shards, counter
        self.transient = transient
        self.prefetch, self.max_batch, self.heartbeat = prefetch, max_batch, heartbeat
        self.linger = linger
        # ``admit``: whether a message may be counted (signed envelopes). One refused
        # stays in its stream (a stream is never rewritten) but is passed over, as any
        # message that is not a readable ballots.recorded, and a copy is parked in the
        # dead letters with its reason.
        self.admit = admit
        self._control: BlockingChannel | None = None
        self._since = 0.0  # when the oldest pending delivery arrived
        self.membership = Membership(uuid.uuid4().hex[:12])
        self._pending: list[_Delivery] = []
        self._channels: dict[int, BlockingChannel] = {}  # the shards being consumed
        self._generations: dict[int, int] = {}  # the generation each shard is read in
        # Shards whose stream ended (a counting.rotated marker is pending): what follows
        # it is passed over, and once it is counted the shard is read in the next one.
        self._ending: set[int] = set()
        # Shards stopped at a rotation marker signed with a key not known here (see
        # ``received``): nothing more of them is counted until a restart.
        self._waiting_for_key: set[int] = set()
        self.rotation = rotation
        self._connection: pika.BlockingConnection | None = None

    def run(self, stop: threading.Event) -> None:
        """Count until ``stop`` is set; reconnects after a broker outage."""
        while not stop.is_set():
            try:
                self._session(stop)
            except pika.exceptions.AMQPError as exc:
                log.warning("broker connection lost; reconnecting",
                            extra=log_fields(error=repr(exc)))
                self._forget_all()
                stop.wait(1.0)

    def _forget_all(self) -> None:
        for shard in list(self._channels):
            self.counter.drop(shard)
        self._channels.clear()
        self._generations.clear()
        self._ending.clear()
        self._waiting_for_key.clear()
        self._pending.clear()
        COUNTING_SHARDS_OWNED.set(0)

    def _session(self, stop: threading.Event) -> None:
        params = pika_parameters(self.amqp_url)
        params.heartbeat = self.heartbeat
        params.client_properties = {
            "connection_name": f"urne-tally-worker-{self.membership.me}"}
        connection = pika.BlockingConnection(params)
        self._connection = connection
        try:
            control = self._control = connection.channel()
            declare_counting(control, self.shards)
            # Where refused messages go (the services declare the queue bound to it).
            control.exchange_declare(DEAD_LETTERS, "fanout", durable=True)
            self.membership.join(control, TALLY_WORKERS_EXCHANGE)
            # Hear the others before taking any shard: a newcomer that took every shard
            # at once would only have to give most of them back.
            settle = time.monotonic() + HEARTBEAT_SECONDS * 1.5
            next_beat = next_owners = retry_at = next_rotation = 0.0
            backoff = 0.0
            log.info("tally worker counting", extra=log_fields(
                worker=self.membership.me, shards=self.shards))
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self.membership.announce(control, TALLY_WORKERS_EXCHANGE, set(self._channels))
                    next_beat = now + HEARTBEAT_SECONDS
                if now >= settle and now >= next_owners:
                    try:
                        self._rebalance(connection, now)  # reads the checkpoints it takes
                    except pika.exceptions.AMQPError:
                        raise
                    except Exception as exc:
                        if not self.transient(exc):
                            raise
                        log.warning("taking a shard failed; trying again",
                                    extra=log_fields(error=repr(exc)[:300]))
                    next_owners = now + 0.5
                if self.rotation is not None and now >= next_rotation and 0 in self._channels:
                    next_rotation = now + self.rotation.every
                    try:
                        self.rotation.tick(connection)
                    except pika.exceptions.AMQPConnectionError:
                        raise
                    except Exception as exc:  # the next tick goes on from the store
                        log.log(logging.WARNING if self.transient(exc) else logging.ERROR,
                                "rotating the counting streams failed; trying again",
                                exc_info=not self.transient(exc),
                                extra=log_fields(error=repr(exc)[:300]))
                waiting = now < retry_at
                if not waiting and len(self._pending) >= self.max_batch:
                    waited = 0.0  # a full batch: count it once the socket is read
                else:
                    rotating = self.rotation is not None and 0 in self._channels
                    waited = wait_before(
                        now, next_beat, next_owners if now >= settle else settle,
                        next_rotation if rotating else None, retry_at if waiting else None,
                        self._since + self.linger if self._pending and not waiting else None)
                connection.process_data_events(time_limit=waited)
                if waiting or not self._pending or (
                        len(self._pending) < self.max_batch and
                        time.monotonic() - self._since < self.linger):
                    continue
                try:
                    self._flush(connection)
                    backoff = 0.0
                    self._since = time.monotonic() - self.linger  # a backlog: at once
                except pika.exceptions.AMQPError:
                    raise
                except Exception as exc:
                    # Nothing moved the checkpoint: what was held is counted again from
                    # it once the store answers (or the bug is fixed). Never skipped.
                    backoff = min(max(backoff * 2, 0.25), 10.0)
                    level = logging.WARNING if self.transient(exc) else logging.ERROR
                    log.log(level, "counting failed; retrying from the checkpoint",
                            exc_info=level == logging.ERROR, extra=log_fields(
                                error=repr(exc)[:300], retry_in_s=backoff))
                    # Not a sleep: the loop goes on announcing this worker, so the
                    # others do not take its shards while the store is away.
                    retry_at = time.monotonic() + backoff
        finally:
            if connection.is_open:
                # Stream channels first, without pika's reject of what they hold (see
                # _release), then the connection.
                for channel in list(self._channels.values()):
                    close_without_cancel(connection, channel)
                connection.close()
            self._forget_all()

    def _rebalance(self, connection: pika.BlockingConnection, now: float) -> None:
        """Consume exactly the shards this worker owns among the live ones."""
        mine = {s for s in range(self.shards)
                if self.membership.owner(s, self.shards, now) == self.membership.me}
        for shard in sorted(set(self._channels) - mine):
            self._release(shard)
        for shard in sorted(mine - set(self._channels)):
            self._acquire(connection, shard)
        COUNTING_SHARDS_OWNED.set(len(self._channels))

    def _acquire(self, connection: pika.BlockingConnection, shard: int) -> None:
        position = self.counter.take(shard)
        generation = generation_of(position)
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)  # streams need a window

        def received(ch: BlockingChannel, method: Any, props: Any, body: bytes) -> None:
            if not ch.is_open or shard in self._ending or shard in self._waiting_for_key:
                return  # after the end of its generation: in the next one as well
            offset = int(props.headers["x-stream-offset"])
            try:
                envelope = jsonbytes.loads(body)
            except ValueError:
                envelope = {"unreadable": body[:200].decode(errors="replace")}
            refused = self.admit(envelope)
            if refused is not None and rotated_to(envelope) is not None \
                    and refused.split(":")[0] == UNKNOWN_KEY:
                # A marker signed with a key this worker does not know yet (the tally's
                # key rotated, this worker not restarted): passed over, it would leave
                # the shard on a stream nothing is sent to any more. The shard stops
                # before it instead, its checkpoint too, and is read again from there
                # once the worker, restarted, knows the key (docs/operations.md).
                self._refuse(shard, generation, offset, envelope, refused)
                self._waiting_for_key.add(shard)
                log.error("counting shard waits for the key of its rotation marker",
                          extra=log_fields(shard=shard, offset=offset))
                return
            if refused is not None:
                envelope = self._refuse(shard, generation, offset, envelope, refused)
            elif (rotated_to(envelope) or 0) > generation:
                self._ending.add(shard)
            if not self._pending:
                self._since = time.monotonic()
            self._pending.append(_Delivery(shard, ch, method.delivery_tag,
                                           position_of(generation, offset), envelope))

        channel.basic_consume(stream_name(shard, generation), received,
                              arguments={"x-stream-offset": position - position_of(generation)})
        self._channels[shard] = channel
        self._generations[shard] = generation
        log.info("counting shard taken", extra=log_fields(
            shard=shard, generation=generation, position=position))

    def _refuse(self, shard: int, generation: int, offset: int, envelope: Any,
                reason: str) -> dict[str, str]:
        """What is counted in place of a refused message (nothing: it is passed over).
        A redelivery after a restart is parked again: a stream cannot forget it."""
        log.error("counting message refused and dead-lettered", extra=log_fields(
            shard=shard, offset=offset, reason=reason[:300]))
        if self._control is not None:
            self._control.basic_publish(DEAD_LETTERS, "", json.dumps({
                "service": "tally", "error_type": "Refused", "reason": reason.split(":")[0],
                "error": reason[:2000], "attempts": 1, "envelope": envelope,
                "stream": stream_name(shard, generation), "offset": offset}).encode(),
                pika.BasicProperties(content_type="application/json", delivery_mode=2))
        return {"refused": reason}

    def _release(self, shard: int) -> None:
        channel = self._channels.pop(shard)
        self._generations.pop(shard, None)
        self._ending.discard(shard)
        self._waiting_for_key.discard(shard)
        self._pending = [d for d in self._pending if d.shard != shard]
        self.counter.drop(shard)
        # pika's close() would first reject what the channel holds, which a stream
        # refuses by closing the whole connection (540 NOT_IMPLEMENTED).
        assert self._connection is not None
        close_without_cancel(self._connection, channel)
        log.info("counting shard let go", extra=log_fields(shard=shard))

    def _flush(self, connection: pika.BlockingConnection) -> None:
        batch = self._pending[:self.max_batch]
        by_shard: dict[int, list[_Delivery]] = {}
        for d in batch:
            by_shard.setdefault(d.shard, []).append(d)
        lost = self.counter.apply({shard: [(d.offset, d.body) for d in deliveries]
                                   for shard, deliveries in by_shard.items()})
        done = set(map(id, batch))
        self._pending = [d for d in self._pending if id(d) not in done]
        for shard, deliveries in by_shard.items():
            if shard in lost:
                log.warning("another worker moved this shard's checkpoint; letting it go",
                            extra=log_fields(shard=shard))
                self._release(shard)
                continue
            last = deliveries[-1]
            if last.channel.is_open:
                last.channel.basic_ack(last.tag, multiple=True)
            if shard in self._ending and not any(d.shard == shard for d in self._pending):
                # Its marker is counted: the checkpoint is at the next generation's start.
                # Let the shard go; the rebalance (every half second) takes it again from
                # there, retrying while the store is away. Taking it here could fail
                # midway through this loop and leave the other ending shards held on
                # their old streams, where nothing more would ever come.
                self._release(shard)
