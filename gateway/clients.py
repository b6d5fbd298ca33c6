"""How the gateway reaches the services: in-process (embedded) or over AMQP (distributed)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import anyio

from urne.messaging.embedded_bus import EmbeddedBus
from urne.messaging.group_commit import GroupCommit
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.messaging.signatures import Verifier


class ServiceUnavailable(Exception):
    """The service did not answer (broker down, timeout): the gateway answers 503."""


class ServiceClient(Protocol):
    async def call(self, service: str, envelope: RawEnvelope) -> RawReply:
        """A command or query to the service that owns it."""
        ...

    async def cast(self, envelope: RawEnvelope, voter_key: str) -> RawReply:
        """A ballot into the intake (the shard of ``voter_key``); the reply comes once
        the ballot is stored, or refused."""
        ...

    async def close(self) -> None: ...

    @property
    def broker_connected(self) -> bool | None:
        """Whether the gateway is connected to the broker now; None when there is no
        broker (embedded). /readyz tells a broker away from a service away by it."""
        ...


class EmbeddedClient:
    def __init__(self, bus: EmbeddedBus, ballots: GroupCommit[RawEnvelope, RawReply | None],
                 stop_first: Callable[[], None] = lambda: None):
        """``stop_first``: what else sends commands through the bus (the profile's
        ticker), stopped before the bus closes."""
        self.bus = bus
        self.ballots = ballots
        self.stop_first = stop_first

    @property
    def broker_connected(self) -> bool | None:
        return None  # one process: no broker

    async def call(self, service: str, envelope: RawEnvelope) -> RawReply:
        # SQLite calls block: run them off the event loop. No timeout: a command
        # cannot be taken back from its thread, so the caller waits for its outcome.
        return await anyio.to_thread.run_sync(self.bus.call, service, envelope)

    async def cast(self, envelope: RawEnvelope, voter_key: str) -> RawReply:
        try:
            reply = await asyncio.wrap_future(self.ballots.submit(envelope))
        except Exception as exc:  # the batch was rolled back: nothing of it is stored
            raise ServiceUnavailable(f"ballot batch failed: {type(exc).__name__}") from exc
        assert reply is not None  # only close markers get no reply
        return reply

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.stop_first)
        await anyio.to_thread.run_sync(self.ballots.close)
        await anyio.to_thread.run_sync(self.bus.close)


class AmqpClient:
    """Calls services over RabbitMQ; connects lazily so the gateway starts (and answers
    /healthz, and 503 elsewhere) while the broker is still coming up."""

    def __init__(self, amqp_url: str, timeout: float, replies: Verifier,
                 sign: Callable[[RawEnvelope], RawEnvelope] = lambda envelope: envelope):
        """``replies``: who may answer (signed replies); ``sign``: the gateway's key."""
        from urne.messaging.amqp_rpc import AmqpRpcClient

        self.rpc = AmqpRpcClient(amqp_url, replies, sign)
        self.timeout = timeout  # also the requests' TTL in the broker
        self._connected = False
        self._lock: anyio.Lock | None = None

    @property
    def broker_connected(self) -> bool | None:
        return self._connected and self.rpc.broker_connected

    async def _ensure(self) -> None:
        if self._connected:
            return
        self._lock = self._lock or anyio.Lock()
        async with self._lock:
            if not self._connected:
                try:
                    await self.rpc.connect()
                except Exception as exc:  # broker down or refusing: a 503, not a 500
                    raise ServiceUnavailable(f"broker unreachable: {exc!r}") from exc
                self._connected = True

    async def call(self, service: str, envelope: RawEnvelope) -> RawReply:
        from urne.messaging.amqp_rpc import RpcUnavailable

        await self._ensure()
        try:
            return await self.rpc.call(service, envelope, self.timeout)
        except RpcUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc

    async def cast(self, envelope: RawEnvelope, voter_key: str) -> RawReply:
        from urne.messaging.amqp_rpc import RpcUnavailable

        await self._ensure()
        try:
            return await self.rpc.cast(envelope, voter_key, self.timeout)
        except RpcUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self._connected:
            await self.rpc.close()
