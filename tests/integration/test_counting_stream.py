"""The tally workers' transport (urne.messaging.counting_stream.CountingWorker) on a real
RabbitMQ, with a counter of the test's own: a store that is away, when a shard is taken
or when a batch is counted, pauses counting and never ends the worker (issue 8:
transient is not poison). The counting itself is tested in test_tally_shards.py and end
to end in tests/e2e/test_intake.py."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pika
import pytest

from urne.messaging.counting_stream import (
    COUNTING_EXCHANGE,
    CountingWorker,
    declare_counting,
    shard_key,
)

pytestmark = [pytest.mark.integration, pytest.mark.distributed]

SHARDS = 2


class StoreAway(Exception):
    pass


class FlakyCounter:
    """Counts what it is given; its store is away for the first ``takes`` checkpoint
    reads and the first ``applies`` batches."""

    def __init__(self, takes: int, applies: int):
        self.takes, self.applies = takes, applies
        self.counted: dict[int, list[int]] = {s: [] for s in range(SHARDS)}
        self.next: dict[int, int] = {}
        self.lock = threading.Lock()

    def take(self, shard: int) -> int:
        with self.lock:
            if self.takes > 0:
                self.takes -= 1
                raise StoreAway("checkpoint unreadable")
            return self.next.get(shard, 0)

    def apply(self, batches: dict[int, list[tuple[int, Any]]]) -> set[int]:
        with self.lock:
            if self.applies > 0:
                self.applies -= 1
                raise StoreAway("counting failed")
            for shard, messages in batches.items():
                for offset, envelope in messages:
                    if offset >= self.next.get(shard, 0):  # a checkpoint: each once
                        self.counted[shard].append(envelope["n"])
                        self.next[shard] = offset + 1
            return set()

    def drop(self, shard: int) -> None:
        pass


def test_a_store_away_pauses_counting_and_never_ends_the_worker(vhost_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url))
    channel = connection.channel()
    declare_counting(channel, SHARDS)
    for n in range(40):
        channel.basic_publish(COUNTING_EXCHANGE, shard_key(n % SHARDS),
                              json.dumps({"n": n}).encode())
    counter = FlakyCounter(takes=3, applies=4)
    worker = CountingWorker(vhost_url, SHARDS, counter,
                            transient=lambda exc: isinstance(exc, StoreAway), linger=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while sum(map(len, counter.counted.values())) < 40 and time.monotonic() < deadline:
            assert thread.is_alive(), "the worker ended on a passing store fault"
            time.sleep(0.1)
        # Every message counted once, in order, after the store came back.
        assert counter.counted == {s: list(range(s, 40, SHARDS)) for s in range(SHARDS)}
        assert (counter.takes, counter.applies) == (0, 0)
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(15)
        connection.close()
