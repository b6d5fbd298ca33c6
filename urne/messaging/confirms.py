"""Publisher confirms for several messages at once, on a pika blocking connection.

In confirm mode, pika's ``BlockingChannel.basic_publish`` waits for each message's
confirm before it returns. A vote worker's batch publishes an event per counting shard
it touched and one for identity's sign-in list, all confirmed before the batch is
acked: it waited for them one after another, up to five round trips to the broker
(14-16 ms a batch at 400 ballots/s, docs/performance.md), during which it took no new
ballots. Here the messages are all sent, then their confirms awaited together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
from pika.spec import Basic, BasicProperties

# exchange, routing key, body, properties
Message = tuple[str, str, bytes, BasicProperties]


class NotConfirmed(pika.exceptions.AMQPError):
    """The broker refused a message (a nack), or the channel closed before every message
    was confirmed: what the messages stood for must not be acked. An AMQP error, so a
    worker's loop takes it as a lost connection: it reconnects, and the broker delivers
    again what was not acked."""


class ConfirmedChannel:
    """A channel of its own in confirm mode; ``publish`` sends a list of messages and
    returns once the broker has confirmed every one."""

    def __init__(self, connection: pika.BlockingConnection) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self._sent = 0  # delivery tag of the last message sent (the broker counts the same)
        self._unconfirmed: set[int] = set()
        self._refused = 0
        selected: list[bool] = []
        # Confirm mode on the channel's implementation, not on the blocking wrapper
        # (whose confirm mode waits message by message); the wrapper still reads the
        # socket for it, in ``process_data_events``.
        self.channel._impl.confirm_delivery(ack_nack_callback=self._on_confirm,
                                            callback=lambda _frame: selected.append(True))
        self._wait(lambda: bool(selected))

    def publish(self, messages: list[Message]) -> None:
        for exchange, routing_key, body, properties in messages:
            self.channel._impl.basic_publish(exchange, routing_key, body, properties)
            self._sent += 1
            self._unconfirmed.add(self._sent)
        self._wait(lambda: not self._unconfirmed)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        done = ({t for t in self._unconfirmed if t <= tag} if method.multiple
                else {tag} & self._unconfirmed)
        self._unconfirmed -= done
        if isinstance(method, Basic.Nack):
            self._refused += len(done)

    def _wait(self, ready: Callable[[], bool]) -> None:
        # The wrapper's own wait (as its confirm mode uses): reads the socket until
        # ``ready`` or a refusal, and raises if the channel or the connection closes.
        # Deliveries for other channels that come meanwhile wait for the caller's next
        # ``process_data_events``.
        self.channel._flush_output(lambda: self._refused > 0 or ready())
        if self._refused:
            raise NotConfirmed(f"the broker refused {self._refused} message(s)")
        if not ready():
            raise NotConfirmed("the channel closed before its messages were confirmed")
