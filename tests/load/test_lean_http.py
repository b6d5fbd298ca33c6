"""The load generator's ballot client (loadtests/lean_http.py) against a small HTTP/1.1
server on loopback: answers read whole, connections kept alive and limited, and a
connection the server drops is an error for its request only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from loadtests.lean_http import Disconnected, Pool


class Server:
    """Answers each POST with 201 and its body and headers as JSON, after ``delay``;
    ``drop`` closes the connection instead of answering the request with that body."""

    def __init__(self, delay: float = 0.0, drop: bytes | None = None):
        self.delay, self.drop = delay, drop
        self.connections = 0
        self.open = 0
        self.most_open = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                body = await reader.readexactly(int(headers["Content-Length"]))
                await asyncio.sleep(self.delay)
                if body == self.drop:
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{")
                    await writer.drain()
                    return
                answer = json.dumps({"body": body.decode(), "path": lines[0].split()[1],
                                     "key": headers.get("Idempotency-Key")}).encode()
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(answer)).encode() + b"\r\n\r\n"
                             + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await listener.wait_closed()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def test_answers_come_whole_on_one_kept_alive_connection() -> None:
    async def test() -> None:
        server = Server()
        async with serving(server) as base:
            pool = Pool(base, limit=8, keepalive=3.0)
            for n in range(3):
                status, raw = await pool.post(f"/v1/polls/p/ballots?n={n}", b'{"a": 1}',
                                              {"Idempotency-Key": f"key-{n}"})
                assert status == 201
                assert json.loads(raw) == {"body": '{"a": 1}', "path": f"/v1/polls/p/ballots?n={n}",
                                           "key": f"key-{n}"}
            pool.close()
        assert server.connections == 1

    run(test)


def test_no_more_connections_than_the_limit_and_every_request_answered() -> None:
    async def test() -> None:
        server = Server(delay=0.05)
        async with serving(server) as base:
            pool = Pool(base, limit=2, keepalive=3.0)
            answers = await asyncio.gather(*(pool.post("/x", str(n).encode(), {})
                                             for n in range(6)))
            pool.close()
        assert sorted(json.loads(raw)["body"] for _, raw in answers) == [str(n) for n in range(6)]
        assert server.most_open == 2

    run(test)


def test_a_dropped_connection_fails_its_request_only() -> None:
    async def test() -> None:
        server = Server(drop=b"drop me")
        async with serving(server) as base:
            pool = Pool(base, limit=1, keepalive=3.0)
            with pytest.raises(Disconnected):
                await pool.post("/x", b"drop me", {})
            # The limit is one: the dropped connection gave its place back.
            status, raw = await asyncio.wait_for(pool.post("/x", b"next", {}), 5)
            assert status == 201 and json.loads(raw)["body"] == "next"
            pool.close()
        assert server.connections == 2

    run(test)


def test_a_connection_idle_past_the_keepalive_is_not_reused() -> None:
    async def test() -> None:
        server = Server()
        async with serving(server) as base:
            pool = Pool(base, limit=4, keepalive=0.05)
            await pool.post("/x", b"1", {})
            await asyncio.sleep(0.1)  # the server might close it under the next request
            await pool.post("/x", b"2", {})
            pool.close()
        assert server.connections == 2

    run(test)
