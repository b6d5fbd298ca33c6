"""TLS to RabbitMQ by setting (urne/messaging/amqp_tls.py), against the local node's TLS
listener (infra/rabbitmq/start.sh: port 5671, a certificate of its own local authority):
each of urne's three AMQP clients connects with ``amqps://…?cafile=``, and refuses a
server its trusted authorities did not vouch for."""

from __future__ import annotations

import asyncio
import ssl

import aiormq
import kombu
import kombu.exceptions
import pika
import pytest

from tests.support.servers import _require
from urne.messaging.amqp_rpc import AmqpRpcClient
from urne.messaging.amqp_tls import kombu_settings, pika_parameters
from urne.messaging.ballot_stream import ensure_topology, shard_queue
from urne.messaging.signatures import Verifier

pytestmark = [pytest.mark.integration, pytest.mark.distributed]

CA = "/etc/rabbitmq/urne-tls/ca.pem"  # infra/rabbitmq/_common.sh: RMQ_TLS_DIR
UNTRUSTED = r"(?i)certificate verify failed"
NO_KEYS = Verifier({}, "test")  # these clients only connect: no reply to check


def tls(url: str, trusted: bool = True) -> str:
    _require("RabbitMQ's TLS listener", "127.0.0.1", 5671, "infra/rabbitmq/start.sh")
    secure = url.replace("amqp://", "amqps://", 1).replace(":5672/", ":5671/", 1)
    return f"{secure}?cafile={CA}" if trusted else secure


def test_the_workers_client_talks_over_tls(vhost_url: str) -> None:
    url = tls(vhost_url)
    ensure_topology(url, 2, 1)  # declares the ballot stream, as the vote service does
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        assert connection._impl.params.ssl_options is not None  # not plain AMQP
        channel = connection.channel()
        channel.basic_publish("", shard_queue(1), b"over tls")
        method, _, body = channel.basic_get(shard_queue(1), auto_ack=True)
        assert (method is not None, body) == (True, b"over tls")
    finally:
        connection.close()


def test_the_gateways_client_talks_over_tls(vhost_url: str) -> None:
    async def connect(url: str) -> None:
        client = AmqpRpcClient(url, NO_KEYS)
        await client.connect()
        await client.close()
    asyncio.run(connect(tls(vhost_url)))


def test_the_services_client_talks_over_tls(vhost_url: str) -> None:
    settings = kombu_settings(tls(vhost_url))
    assert settings["AMQP_SSL"]["ca_certs"] == CA and "cafile" not in settings["AMQP_URI"]
    # What nameko does with its AMQP_URI and AMQP_SSL.
    with kombu.Connection(settings["AMQP_URI"], ssl=settings["AMQP_SSL"]) as connection:
        connection.connect()
        assert connection.connected and connection.transport_cls == "amqps"


def test_a_server_not_vouched_for_is_refused(vhost_url: str) -> None:
    url = tls(vhost_url, trusted=False)  # the system's authorities: not the local one
    with pytest.raises((pika.exceptions.AMQPConnectionError, ssl.SSLError),
                       match=UNTRUSTED):
        pika.BlockingConnection(pika_parameters(url))
    settings = kombu_settings(url)
    with pytest.raises((ssl.SSLError, kombu.exceptions.OperationalError),
                       match=UNTRUSTED), kombu.Connection(
            settings["AMQP_URI"], ssl=settings["AMQP_SSL"], connect_timeout=5) as connection:
        connection.ensure_connection(max_retries=1)

    async def connect() -> None:
        client = AmqpRpcClient(url, NO_KEYS)
        try:
            await client.connect()
        finally:
            await client.close()
    with pytest.raises((ssl.SSLError, aiormq.exceptions.AMQPConnectionError), match=UNTRUSTED):
        asyncio.run(connect())
