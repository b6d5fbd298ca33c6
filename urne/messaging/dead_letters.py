"""The operator's side of the dead-letter queue (``urne dlq list|replay``).

What lands in ``urne.dead-letters`` is a message no handler could ever process, parked
with its reason: an event that failed ``MAX_EVENT_ATTEMPTS`` times in a nameko service
(``nameko_adapter.Parking``), or a ballot message a vote worker could not record
(``ballot_stream.ShardWorker._park``; its client was answered 500 at once). Each parked
record is ``{service, error_type, error, attempts, envelope}``.

Listing takes the records without acking them and closes the channel, so the broker
puts them all back, in order. Replaying an event publishes its envelope, unchanged
(same id: its consumers are idempotent), to the exchange it first went to,
``<producer>.events`` with its type as routing key, with a publisher confirm, and only
then acks its record. A ballot is not replayed: its voter was told it failed, and may
vote again; such records stay, to be read. Nor is a counted ballot a tally worker refused
from its counting stream (the record names the stream): it never went to its producer's
exchange, and the tally asks the vote service for a missing ballot itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from urne.messaging.amqp_tls import pika_parameters
from urne.messaging.ballot_stream import DEAD_LETTERS


@dataclass(frozen=True)
class Parked:
    """One record of the dead-letter queue, as an operator reads it."""

    service: str
    error_type: str
    error: str
    envelope: Any
    # The counting stream a tally worker refused it from, if it came from one: such a
    # ballots.recorded went to urne.counting by shard, not to its producer's exchange,
    # and the tally heals a missing ballot itself (ballots.missing): never replayed.
    stream: str | None = None

    @property
    def event_id(self) -> str | None:
        env = self.envelope
        return str(env["id"]) if isinstance(env, dict) and "id" in env else None

    @property
    def destination(self) -> tuple[str, str] | None:
        """(exchange, routing key) an event is published to again; None for what is
        not an event of a service (a ballot, a message that is no envelope)."""
        env = self.envelope
        if not isinstance(env, dict) or not isinstance(env.get("type"), str) \
                or not isinstance(env.get("producer"), str):
            return None
        if env["producer"] == "gateway":  # a ballot: never replayed (see the module doc)
            return None
        if self.stream is not None:  # a counted ballot event: never replayed (above)
            return None
        return f"{env['producer']}.events", env["type"]

    def summary(self) -> dict[str, Any]:
        env = self.envelope if isinstance(self.envelope, dict) else {}
        return {"service": self.service, "error_type": self.error_type,
                "error": self.error[:300], "type": env.get("type"), "id": self.event_id,
                "replayable": self.destination is not None}


def _parse(body: bytes) -> Parked:
    try:
        record = json.loads(body)
    except ValueError:
        return Parked("?", "unreadable", body[:300].decode(errors="replace"), None)
    if not isinstance(record, dict):
        return Parked("?", "unreadable", str(record)[:300], None)
    stream = record.get("stream")
    return Parked(str(record.get("service", "?")), str(record.get("error_type", "?")),
                  str(record.get("error", "")), record.get("envelope"),
                  str(stream) if stream is not None else None)


def _each(channel: BlockingChannel, limit: int) -> list[tuple[int, Parked]]:
    """Up to ``limit`` records, unacked: (delivery tag, record)."""
    taken = []
    for _ in range(limit):
        method, _props, body = channel.basic_get(DEAD_LETTERS, auto_ack=False)
        if method is None:
            break
        taken.append((method.delivery_tag, _parse(body)))
    return taken


def list_parked(amqp_url: str, limit: int = 1000) -> list[Parked]:
    """The first ``limit`` records, left in the queue, in order."""
    connection = pika.BlockingConnection(pika_parameters(amqp_url))
    try:
        channel = connection.channel()
        return [parked for _, parked in _each(channel, limit)]
    finally:
        connection.close()  # unacked: the broker puts every record back


def replay(amqp_url: str, wanted: Callable[[Parked], bool] = lambda p: True,
           limit: int = 1000) -> tuple[list[Parked], list[Parked]]:
    """Publish again the events among the first ``limit`` records that ``wanted``
    accepts; returns (replayed, left in the queue)."""
    connection = pika.BlockingConnection(pika_parameters(amqp_url))
    replayed, left = [], []
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for tag, parked in _each(channel, limit):
            destination = parked.destination
            if destination is None or not wanted(parked):
                left.append(parked)
                continue
            exchange, routing_key = destination
            channel.basic_publish(exchange, routing_key, json.dumps(parked.envelope).encode(),
                                  pika.BasicProperties(content_type="application/json",
                                                       delivery_mode=2),
                                  mandatory=True)  # confirmed, and routed somewhere
            channel.basic_ack(tag)
            replayed.append(parked)
    finally:
        connection.close()  # what was not acked goes back to the queue, in order
    return replayed, left
