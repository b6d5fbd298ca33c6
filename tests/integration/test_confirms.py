"""Several messages confirmed together (urne/messaging/confirms.py), on a real broker:
``publish`` returns only once every message is confirmed, and raises when the broker
refuses one or closes the channel, so the caller acks nothing it stood for."""

from __future__ import annotations

import pika
import pytest

from urne.messaging.confirms import ConfirmedChannel, NotConfirmed

pytestmark = pytest.mark.integration

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def test_every_message_is_in_its_queue_when_publish_returns(vhost_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url))
    try:
        setup = connection.channel()
        setup.queue_declare("confirmed-a", durable=True)
        setup.queue_declare("confirmed-b", durable=True)
        confirmed = ConfirmedChannel(connection)
        confirmed.publish([("", "confirmed-a", f"a{i}".encode(), PERSISTENT)
                           for i in range(5)] + [("", "confirmed-b", b"b0", PERSISTENT)])
        confirmed.publish([])  # nothing to send: returns at once
        confirmed.publish([("", "confirmed-b", b"b1", PERSISTENT)])  # and the channel goes on
        counts = {q: setup.queue_declare(q, passive=True).method.message_count
                  for q in ("confirmed-a", "confirmed-b")}
        assert counts == {"confirmed-a": 5, "confirmed-b": 2}
        bodies = [setup.basic_get("confirmed-a", auto_ack=True)[2] for _ in range(5)]
        assert bodies == [f"a{i}".encode() for i in range(5)]  # in the order sent
    finally:
        connection.close()


def test_a_message_the_broker_refuses_raises(vhost_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url))
    try:
        # A full queue that refuses what comes next: the broker nacks that message.
        connection.channel().queue_declare("confirmed-full", durable=True, arguments={
            "x-max-length": 1, "x-overflow": "reject-publish"})
        confirmed = ConfirmedChannel(connection)
        with pytest.raises(NotConfirmed, match="refused 1 message"):
            confirmed.publish([("", "confirmed-full", b"first", PERSISTENT),
                               ("", "confirmed-full", b"second", PERSISTENT)])
    finally:
        connection.close()


def test_a_channel_the_broker_closes_raises(vhost_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url))
    try:
        confirmed = ConfirmedChannel(connection)
        # No such exchange: the broker closes the channel (404) instead of confirming.
        with pytest.raises(pika.exceptions.AMQPError):
            confirmed.publish([("no-such-exchange", "x", b"lost", PERSISTENT)])
        assert connection.is_open  # the channel went, not the connection
    finally:
        connection.close()
