"""The gateway's asyncio AMQP client: nameko RPC for commands, the ballot stream for ballots.

nameko's own client is eventlet-bound; the gateway runs on asyncio (uvloop), so it
publishes ``{"args": [envelope], "kwargs": {}}`` to the ``nameko-rpc`` topic
exchange with routing key ``<service>.handle`` and a ``reply_to`` routing key bound
to its own exclusive reply queue, exactly as nameko's proxies do.

Ballots skip RPC: ``cast`` publishes the envelope to the ballot exchange (consistent
hash on the voter key, see ``urne.messaging.ballot_stream``) with the same
``reply_to``; the vote worker of that shard replies once the ballot is stored.

Every reply is signed (``urne.messaging.signatures``): an answer is taken only from the
service asked (a vote worker's from the vote service's key), and an RPC reply only for
the request it names. Anything else on the reply queue is dropped and counted
(``urne_messages_refused_total{consumer="gateway"}``); the request then waits on for
its true answer, or times out as a 503. That includes nameko's own error replies, which
are not signed: a service answers every failure of its own with a signed reply
(``nameko_adapter.serve_rpc``), so an unsigned error is nameko's (a request it could
not read) or a forgery.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage

from urne.messaging.ballot_stream import (
    BALLOTS_EXCHANGE,
    BALLOTS_EXCHANGE_TYPE,
    PRODUCER,
    REPLIES_TYPE,
)
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.messaging.signatures import BATCH_REPLY_TYPE, REPLY_TYPE, Refused, Verifier
from urne.platform import jsonbytes
from urne.platform.metrics import MESSAGES_REFUSED

log = logging.getLogger(__name__)

RPC_EXCHANGE = "nameko-rpc"


class RpcUnavailable(Exception):
    pass


# What "the broker is not answering now" looks like from aio-pika: while the robust
# connection is reconnecting, a publish on its channel raises ChannelInvalidStateError
# (a RuntimeError, not an AMQPError). All of these are a 503, never a 500.
BROKER_DOWN: tuple[type[BaseException], ...] = (
    TimeoutError, ConnectionError, aio_pika.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError)


@dataclass
class _Asked:
    """A request waiting for its answer, and who may give it."""

    future: asyncio.Future[dict[str, Any]]
    answerer: str  # the service asked (a ballot: the vote service)
    request_id: str | None = None  # an RPC's envelope id, which its reply names


class AmqpRpcClient:
    def __init__(self, amqp_url: str, replies: Verifier,
                 sign: Callable[[RawEnvelope], RawEnvelope] = lambda envelope: envelope):
        """``replies``: checks who signed each reply. ``sign``: the gateway's envelope
        signature, put on every command and ballot."""
        self.amqp_url, self.replies, self.sign = amqp_url, replies, sign
        self.reply_key = uuid.uuid4().hex
        self._pending: dict[str, _Asked] = {}
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._ballots: aio_pika.abc.AbstractExchange | None = None
        self._ballot_channel: aio_pika.abc.AbstractChannel | None = None

    @property
    def broker_connected(self) -> bool:
        """Whether the connection to the broker is up now (False while it reconnects)."""
        return self._connection is not None and self._connection.connected.is_set()

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_url,
                                                         client_properties={"connection_name":
                                                                            "urne-gateway"})
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await channel.declare_exchange(RPC_EXCHANGE, aio_pika.ExchangeType.TOPIC,
                                                        durable=True)
        # Ballots on a channel of their own, without publisher confirms: a ballot's 201
        # comes from the worker after its commit, so a confirm would prove nothing more
        # and cost a round trip per ballot. One lost on the way is answered 503 when the
        # wait runs out (the vote service declares the shard queues when it starts).
        self._ballot_channel = await self._connection.channel(publisher_confirms=False)
        self._ballots = await self._ballot_channel.declare_exchange(
            BALLOTS_EXCHANGE, BALLOTS_EXCHANGE_TYPE, durable=True)
        queue = await channel.declare_queue(f"rpc.reply-gateway-{self.reply_key}",
                                            exclusive=True, auto_delete=True)
        await queue.bind(self._exchange, routing_key=self.reply_key)
        await queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        try:
            body = jsonbytes.loads(message.body)
        except ValueError:
            log.error("unreadable reply dropped", extra={"fields": {"body": message.body[:200]}})
            return
        try:
            if message.type == REPLIES_TYPE:  # a vote worker's batch of receipts
                batch = self.replies.answer(body, PRODUCER, BATCH_REPLY_TYPE)
                for correlation_id, reply in batch["replies"]:
                    self._resolve(str(correlation_id), PRODUCER, reply, ballot=True)
                return
            asked = self._pending.get(message.correlation_id or "")
            if asked is None:
                return  # the caller gave up already
            signed = self.replies.answer(body.get("result") if isinstance(body, dict) else None,
                                         asked.answerer, REPLY_TYPE)
            if signed.get("in_reply_to") != asked.request_id:
                MESSAGES_REFUSED.labels(self.replies.consumer, "wrong_request").inc()
                raise Refused("wrong_request", "a reply to another request")
            self._resolve(message.correlation_id or "", asked.answerer,
                          {"result": signed["reply"]})
        except Refused as exc:
            error = body.get("error") if isinstance(body, dict) else None
            log.error("reply refused", extra={"fields": {
                "reason": str(exc)[:300], "error": str(error)[:300] if error else None}})

    def _resolve(self, correlation_id: str, answerer: str, reply: dict[str, Any],
                 ballot: bool = False) -> None:
        asked = self._pending.get(correlation_id)
        if asked is None or asked.answerer != answerer or ballot != (asked.request_id is None):
            return  # the caller gave up already; or this is not an answer to what it asked
        del self._pending[correlation_id]
        if not asked.future.done():
            asked.future.set_result(reply)

    async def call(self, service: str, envelope: RawEnvelope, timeout: float) -> RawReply:
        if self._exchange is None:
            raise RpcUnavailable("not connected to the broker")
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = _Asked(future, service, str(envelope["id"]))
        message = aio_pika.Message(
            body=jsonbytes.dumps({"args": [self.sign(envelope)], "kwargs": {}}),
            content_type="application/json", correlation_id=correlation_id,
            reply_to=self.reply_key,
            # A request nobody took in time is dropped by the broker, so a command the
            # gateway answered 503 for is not executed later behind its back.
            expiration=timeout,
            headers={"nameko.call_id_stack": [f"gateway.{correlation_id}"],
                     "urne.trace_id": str(envelope.get("trace_id", ""))},
        )
        try:
            # mandatory: with no queue bound for the service the broker returns the
            # message at once, so a service that never started is a fast 503.
            await self._exchange.publish(message, routing_key=f"{service}.handle",
                                         mandatory=True, timeout=timeout)
            body = await asyncio.wait_for(future, timeout)
        except BROKER_DOWN as exc:
            raise RpcUnavailable(f"{service}: {type(exc).__name__}") from exc
        finally:
            self._pending.pop(correlation_id, None)
        return body["result"]

    async def cast(self, envelope: RawEnvelope, voter_key: str, timeout: float) -> RawReply:
        """Send a ballot to its shard; the reply is the intake's, sent after its commit."""
        if self._ballot_channel is None:
            raise RpcUnavailable("not connected to the broker")
        # The envelope's own id (random, drawn when the gateway wraps the ballot) is the
        # correlation id and the message id: no more random bytes drawn per ballot, and
        # aiormq draws none for a message id. An envelope sent again (``poll_opening``)
        # goes only after its first send was answered, so one cast at a time waits on an
        # id; a late duplicate answer describes the same ballot. No headers: the trace
        # id is in the envelope, and a header table costs every hop one to write and read.
        correlation_id = str(envelope["id"])
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = _Asked(future, PRODUCER)
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json", correlation_id=correlation_id,
            message_id=correlation_id, reply_to=self.reply_key,
            # Transient: a 201 comes from the worker after its commit, not from the
            # broker, so a ballot lost in a broker restart was never answered 201 (the
            # client retries with its Idempotency-Key). No expiration: the worker may
            # have stored and answered it and still hold it unacked (its events not yet
            # confirmed); requeued after that worker's loss, it must reach the next one,
            # which finds it stored and sends its events again. A message that expired
            # there would take them along.
            delivery_mode=1,
        )
        try:
            # Straight on aio-pika's channel (the one it restores after a reconnection):
            # its Message and Exchange wrappers cost more than the publish itself.
            channel = await self._ballot_channel.get_underlay_channel()
            await channel.basic_publish(jsonbytes.dumps(self.sign(envelope)),
                                        exchange=BALLOTS_EXCHANGE, routing_key=voter_key,
                                        properties=properties, timeout=timeout)
            return await asyncio.wait_for(future, timeout)
        except BROKER_DOWN as exc:
            raise RpcUnavailable(f"ballot intake: {type(exc).__name__}") from exc
        finally:
            self._pending.pop(correlation_id, None)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
