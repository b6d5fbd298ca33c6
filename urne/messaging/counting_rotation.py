"""Rotating the counting streams, so that ballots leave the broker (issue 9, privacy).

A RabbitMQ stream forgets by age only a whole segment at a time, never its last one
(rabbitmq/osiris#107), and a declared stream's arguments cannot change: a quiet
deployment's streams would keep every ballot they carried. So the streams come in
generations, and the old ones are deleted, not aged:

1. **open**: every ``URNE_COUNTING_ROTATE_SECONDS`` a tally worker records the next
   generation in the tally's store (a compare-and-set: one worker wins);
2. **bind**: it declares that generation's streams and binds them beside the current
   ones, so for a moment each recorded ballot goes to both;
3. **mark**: ``SETTLE_SECONDS`` later (a ballot routed before the binding has reached
   the old stream by then), it puts a signed ``counting.rotated.v1`` marker on every
   shard through the exchange (it lands in both generations, after the binding),
   confirmed, then unbinds the old streams: a worker reading the marker in the old
   stream moves its checkpoint to the new one's start, and every ballot after the
   marker in the old stream is in the new one too (counted once: ``ShardCount.add``
   ignores a ballot seen before);
4. **delete**: once every shard's checkpoint is past the old generation (all its
   markers counted), its streams are deleted and its record forgotten. The next
   generation opens only then: two at most are ever on the broker, however slow a shard.

Each step is idempotent and the store says which step is next, so a worker that dies
midway leaves the rest to the next call, by itself or another worker. A ballot that
still missed both streams (a message delayed in the broker beyond the settle time) is
what the seal's reconciliation heals: the tally asks the vote service for the poll's
ballots again (``ballots.missing``).

The decision is ``plan`` (pure); ``StreamRotation`` carries it out on the broker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import pika

from urne.contracts import wrap
from urne.contracts.events import CountingRotated
from urne.messaging.counting_stream import (
    BOOTSTRAPPED,
    COUNTING_EXCHANGE,
    declare_generation,
    generation_of,
    shard_key,
    stream_name,
)
from urne.platform.logging import log_fields
from urne.platform.metrics import COUNTING_GENERATIONS, COUNTING_OLDEST_GENERATION

log = logging.getLogger(__name__)

SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class Generation:
    generation: int
    opened_at: datetime
    bound: bool  # its streams bound and the previous generation's marked and unbound


class GenerationStore(Protocol):
    """The tally's store, as the rotation uses it (``services/tally/ports.py``)."""

    def generations(self, stream: str) -> list[Generation]:
        """The generations whose streams may still exist, oldest first."""
        ...

    def open_generation(self, stream: str, generation: int, at: datetime) -> bool:
        """Record a generation unless it is already (compare-and-set)."""
        ...

    def generation_bound(self, stream: str, generation: int) -> None: ...

    def forget_generation(self, stream: str, generation: int) -> None: ...

    def positions(self, stream: str, shards: int) -> list[int]:
        """Every shard's checkpoint position (0 for a shard never checkpointed)."""
        ...


@dataclass(frozen=True)
class Step:
    kind: Literal["open", "bind", "mark", "delete"]
    generation: int


def plan(generations: list[Generation], positions: list[int], now: datetime,
         every: timedelta, bound_since: float | None, settle: float) -> Step | None:
    """The next step, if any. ``bound_since``: how long ago (seconds) this process bound
    the current generation's streams, None if it has not (after a restart it binds
    again, which is harmless, and waits again)."""
    if not generations:
        return Step("open", 0)
    current = generations[-1]
    if not current.bound:
        if current.generation == 0 or (bound_since is not None and bound_since >= settle):
            return Step("mark", current.generation)
        return Step("bind", current.generation) if bound_since is None else None
    reached = min(map(generation_of, positions), default=current.generation)
    for old in generations[:-1]:
        if old.generation < reached:
            return Step("delete", old.generation)
    if len(generations) > 1:
        # Not before the last one is counted past and deleted: a shard slower than the
        # rotation (a worker down, a store away) would otherwise leave generation after
        # generation on the broker, each stream holding files open. Two at most.
        return None
    if now - current.opened_at >= every:
        return Step("open", current.generation + 1)
    return None


class StreamRotation:
    """Carries out ``plan`` on the broker, one step per call of ``tick``."""

    def __init__(self, store: GenerationStore, stream: str, shards: int, every: float,
                 sign: Callable[[dict[str, Any]], dict[str, Any]],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 settle: float = SETTLE_SECONDS):
        self.store, self.stream, self.shards = store, stream, shards
        self.rotate_every = timedelta(seconds=every)
        # How often a worker looks: often enough that a generation is not much older
        # than ``every``, rarely enough to cost nothing (a few reads of the store).
        self.every = min(10.0, max(every / 10, 0.5))
        self.sign, self.clock, self.settle = sign, clock, settle
        self._bound: dict[int, float] = {}  # generation -> when this process bound it

    def tick(self, connection: pika.BlockingConnection) -> None:
        """Take the next steps, until one must wait."""
        for _ in range(8):  # a handful per call: the worker has ballots to count
            generations = self.store.generations(self.stream)
            COUNTING_GENERATIONS.set(len(generations))
            if generations:
                COUNTING_OLDEST_GENERATION.set(
                    (self.clock() - generations[0].opened_at).total_seconds())
            positions = (self.store.positions(self.stream, self.shards)
                         if len(generations) > 1 else [])
            current = generations[-1].generation if generations else 0
            bound = self._bound.get(current)
            step = plan(generations, positions, self.clock(), self.rotate_every,
                        None if bound is None else time.monotonic() - bound, self.settle)
            if step is None:
                return
            self._take(connection, step, generations)

    def _take(self, connection: pika.BlockingConnection, step: Step,
              generations: list[Generation]) -> None:
        g = step.generation
        if step.kind == "open":
            if self.store.open_generation(self.stream, g, self.clock()):
                log.info("counting streams: generation opened", extra=log_fields(
                    generation=g))
        elif step.kind == "bind":
            declare_generation(connection.channel(), self.shards, g)
            self._bound[g] = time.monotonic()
        elif step.kind == "mark":
            channel = connection.channel()
            declare_generation(channel, self.shards, g)
            if g > 0:
                channel.confirm_delivery()
                for shard in range(self.shards):
                    marker = self.sign(wrap(CountingRotated(shard=shard, generation=g),
                                            "tally"))
                    # Confirmed and routed, or this raises and the next tick marks again.
                    channel.basic_publish(COUNTING_EXCHANGE, shard_key(shard),
                                          json.dumps(marker).encode(),
                                          pika.BasicProperties(
                                              content_type="application/json",
                                              delivery_mode=2), mandatory=True)
                for old in generations[:-1]:
                    for shard in range(self.shards):
                        _unbind(connection, stream_name(shard, old.generation), shard)
            channel.exchange_declare(BOOTSTRAPPED, "fanout", durable=True)
            channel.close()
            self.store.generation_bound(self.stream, g)
            self._bound.pop(g, None)
            log.info("counting streams: generation bound", extra=log_fields(generation=g))
        else:
            channel = connection.channel()
            for shard in range(self.shards):
                channel.queue_delete(stream_name(shard, g))
            channel.close()
            self.store.forget_generation(self.stream, g)
            log.info("counting streams: generation deleted, its ballots with it",
                     extra=log_fields(generation=g))


def _unbind(connection: pika.BlockingConnection, stream: str, shard: int) -> None:
    """Unbind an old stream, if it is still there (a channel of its own: a 404 closes
    it)."""
    channel = connection.channel()
    try:
        channel.queue_unbind(stream, COUNTING_EXCHANGE, routing_key=shard_key(shard))
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:
            raise
        return
    channel.close()
