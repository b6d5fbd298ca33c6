"""The ballots' HTTP client: keep-alive HTTP/1.1 POSTs on plain asyncio connections.

The load generator shares the machine's two cores with the system it measures, so what
it spends per request is taken from the system, and its own late starts show up as the
system's latency. aiohttp's client took about 0.5 CPU-ms a ballot at 400/s
(``client_cpu_ms_per_request``): a fifth of a core. Ballots need much less than a
general client: one request at a time per connection, a known host, small JSON
answers with a ``Content-Length``. This sends the request's bytes as they are and reads
the answer with httptools (the parser uvicorn's server side uses), nothing else. The
setup (sign-ins, the poll, the result) keeps aiohttp.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from urllib.parse import urlparse

import httptools


class Disconnected(ConnectionError):
    """The server closed the connection before the whole answer came, or answered
    something that is not HTTP."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.reusable = False
        self.idle_since = time.monotonic()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Disconnected(f"an answer that is not HTTP: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(exc or Disconnected("the server closed the connection"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        if self.answer is not None and not self.answer.done():
            self.answer.set_result((self.parser.get_status_code(), b"".join(self.body)))

    def _fail(self, exc: BaseException) -> None:
        self.reusable = False
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.body = []
        self.reusable = False
        self.transport.write(request)
        try:
            return await self.answer
        finally:
            self.answer = None
            self.idle_since = time.monotonic()


class Pool:
    """At most ``limit`` connections to ``base``; one idle longer than ``keepalive``
    seconds is closed rather than reused (before the server times it out under a
    request)."""

    def __init__(self, base: str, limit: int, keepalive: float):
        url = urlparse(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self._host_header = url.netloc.encode()
        self.limit, self.keepalive = limit, keepalive
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        lines = [b"POST ", path.encode(), b" HTTP/1.1\r\nHost: ", self._host_header,
                 b"\r\nContent-Type: application/json\r\nContent-Length: ",
                 str(len(body)).encode(), b"\r\n"]
        for name, value in headers.items():
            lines += [name.encode(), b": ", value.encode(), b"\r\n"]
        lines += [b"\r\n", body]
        connection = await self._take()
        try:
            return await connection.send(b"".join(lines))
        finally:
            self._give_back(connection)

    async def _take(self) -> _Connection:
        while True:
            now = time.monotonic()
            while self._idle:
                connection = self._idle.pop()
                if connection.transport is not None and \
                        now - connection.idle_since < self.keepalive:
                    return connection
                self._close(connection)
            if self._open < self.limit:
                self._open += 1
                try:
                    _, protocol = await asyncio.get_running_loop().create_connection(
                        _Connection, self.host, self.port)
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
                return protocol
            # Every connection is busy: wait for one to come back, as aiohttp's
            # connector does past its limit (the wait counts in the latency).
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            await waiter

    def _give_back(self, connection: _Connection) -> None:
        if connection.reusable and connection.transport is not None:
            self._idle.append(connection)
        else:
            self._close(connection)
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close(self, connection: _Connection) -> None:
        self._open -= 1
        if connection.transport is not None:
            connection.transport.close()

    def close(self) -> None:
        while self._idle:
            self._close(self._idle.pop())
