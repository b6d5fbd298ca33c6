"""The counting streams rotate while ballots flow, on a real RabbitMQ: a tally worker
opens generation after generation, reads each shard's stream to its marker and goes on
in the next, and deletes the old streams once counted; every message published is
counted, none is skipped, and only the current generation is left on the broker.

The store is the tally's own (SQLite here: the generations and the checkpoints, as
``StreamRotation`` and the counter use them); the counter is the test's, keeping the
numbers it saw, moved by the same checkpoints and markers as ``ShardCounters`` (whose
counting is tested in test_tally_shards.py, and end to end in tests/e2e/test_intake.py,
which runs with rotations every few seconds)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pika
import pytest
from prometheus_client import REGISTRY

from urne.contracts import wrap
from urne.contracts.events import BallotsRecorded, CountingRotated, RecordedBallot
from urne.counting import YesNoAbstainRules, rules_hash
from urne.messaging.counting_rotation import Generation, StreamRotation
from urne.messaging.counting_stream import (
    BOOTSTRAPPED,
    COUNTING_EXCHANGE,
    CountingWorker,
    declare_counting,
    exists,
    generation_of,
    position_of,
    rotated_to,
    shard_key,
    stream_name,
)
from urne.runtime.registry import SERVICES
from urne.services.tally.adapters.sqlite_store import SqliteTallyStore
from urne.services.tally.domain import merge
from urne.services.tally.shards import ShardCounters
from urne.storage.sqlite import SqliteDb

pytestmark = [pytest.mark.integration, pytest.mark.distributed]

SHARDS = 2
STREAM = "rotation-test"
T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
RULES = YesNoAbstainRules(method="yes_no_abstain", question="A cycle lane on Main Street?")


class StoreAway(Exception):
    pass


class Counter:
    """Keeps the numbers each shard saw, once each, with the store's checkpoints; with
    ``flaky``, every other checkpoint read fails, as a store that is overloaded."""

    def __init__(self, store: SqliteTallyStore, flaky: bool = False):
        self.store, self.flaky, self.takes = store, flaky, 0
        self.seen: dict[int, list[int]] = {s: [] for s in range(SHARDS)}
        self.lock = threading.Lock()

    def take(self, shard: int) -> int:
        self.takes += 1
        if self.flaky and self.takes % 2 == 0:
            raise StoreAway("checkpoint unreadable")
        return self.store.checkpoint(STREAM, shard)[0]

    def apply(self, batches: dict[int, list[tuple[int, Any]]]) -> set[int]:
        with self.lock:
            moves = []
            for shard, items in batches.items():
                start = self.store.checkpoint(STREAM, shard)[0]
                end = start
                for position, envelope in items:
                    if position < start:
                        continue
                    end = position + 1
                    generation = rotated_to(envelope)
                    if generation is not None:
                        if generation > generation_of(position):
                            end = position_of(generation)
                            break
                        continue
                    if "n" not in envelope:  # refused or unreadable: passed over, as
                        continue             # ShardCounters does (with an error logged)
                    if envelope["n"] not in self.seen[shard]:  # seen before: nothing
                        self.seen[shard].append(envelope["n"])
                moves.append((shard, start, end, {}))
            kept = self.store.save_checkpoints(STREAM, moves)
            return {shard for (shard, *_), ok in zip(moves, kept, strict=True) if not ok}

    def drop(self, shard: int) -> None:
        pass


def streams_left(url: str, generations: range) -> list[str]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        left = []
        for g in generations:
            for shard in range(SHARDS):
                probe = connection.channel()
                try:
                    probe.queue_declare(stream_name(shard, g), passive=True)
                    left.append(stream_name(shard, g))
                    probe.close()
                except pika.exceptions.ChannelClosedByBroker as exc:
                    assert exc.reply_code == 404
        return left
    finally:
        connection.close()


@pytest.mark.parametrize("flaky", [False, True], ids=["store-up", "store-flaky"])
def test_streams_rotate_while_ballots_flow_and_nothing_is_missed(
        vhost_url: str, tmp_path: Path, flaky: bool) -> None:
    """With a flaky store, taking a shard in its next generation fails every other time
    (CI once saw two shards held forever on their old streams that way)."""
    store = SERVICES["tally"].sqlite_store(
        SqliteDb(tmp_path / "tally.db", SERVICES["tally"].migrations.sqlite))
    rotation = StreamRotation(store, STREAM, SHARDS, every=0.8, sign=lambda env: env,
                              settle=0.3)
    worker = CountingWorker(vhost_url, SHARDS, Counter(store, flaky),
                            transient=lambda e: isinstance(e, StoreAway), linger=0.02,
                            rotation=rotation)
    counter = worker.counter
    assert isinstance(counter, Counter)
    publisher = pika.BlockingConnection(pika.URLParameters(vhost_url))
    channel = publisher.channel()
    declare_counting(channel, SHARDS)  # as a vote worker does, before any tally worker
    assert exists(publisher, BOOTSTRAPPED)
    channel.confirm_delivery()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    published = 0
    try:
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:  # ~12 s of traffic: several rotations
            channel.basic_publish(COUNTING_EXCHANGE, shard_key(published % SHARDS),
                                  json.dumps({"n": published}).encode(), mandatory=True)
            published += 1
            time.sleep(0.005)
        # A producer started now must not bind the first generation again.
        declare_counting(publisher.channel(), SHARDS)
        rotation.rotate_every = timedelta(days=1)  # let the last rotation finish
        deadline = time.monotonic() + 30
        while True:
            generations = store.generations(STREAM)
            counted = sum(len(v) for v in counter.seen.values())
            if counted == published and len(generations) == 1 and generations[0].bound:
                break
            assert time.monotonic() < deadline, (counted, published, generations)
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=15)
        publisher.close()
    current = generations[0].generation
    assert REGISTRY.get_sample_value("urne_counting_generations") == 1  # what alerts read
    assert current >= 3, "a rotation every 0.8 s for 12 s"
    for shard in range(SHARDS):  # each exactly once, in the order sent
        assert counter.seen[shard] == list(range(shard, published, SHARDS))
        assert generation_of(store.checkpoint(STREAM, shard)[0]) == current
    # Every earlier generation deleted, with the ballots on it; the current one kept.
    assert streams_left(vhost_url, range(current + 1)) == \
        [stream_name(shard, current) for shard in range(SHARDS)]


def test_a_marker_signed_with_an_unknown_key_stops_its_shard_until_a_restart(
        vhost_url: str, tmp_path: Path) -> None:
    """The tally's envelope key rotated, the workers not yet restarted: the marker is
    refused as ``unknown_key``. Passed over, it left its shard on the old stream for
    good, the next generation's ballots never counted; now the shard stops before it,
    and a worker that knows the key reads on from there: every number once."""
    store = SERVICES["tally"].sqlite_store(
        SqliteDb(tmp_path / "tally.db", SERVICES["tally"].migrations.sqlite))
    trusted = threading.Event()

    def admit(envelope: Any) -> str | None:
        if rotated_to(envelope) is not None and not trusted.is_set():
            return "unknown_key: no key 'envelope-tally-2'"
        return None

    rotation = StreamRotation(store, STREAM, SHARDS, every=0.5, sign=lambda env: env,
                              settle=0.3)
    counter = Counter(store)

    def start() -> tuple[threading.Event, threading.Thread]:
        worker = CountingWorker(vhost_url, SHARDS, counter, transient=lambda e: False,
                                linger=0.02, rotation=rotation, admit=admit)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        return stop, thread

    publisher = pika.BlockingConnection(pika.URLParameters(vhost_url))
    channel = publisher.channel()
    declare_counting(channel, SHARDS)
    channel.confirm_delivery()
    published = 0

    def publish(n: int) -> None:
        nonlocal published
        for _ in range(n):
            channel.basic_publish(COUNTING_EXCHANGE, shard_key(published % SHARDS),
                                  json.dumps({"n": published}).encode(), mandatory=True)
            published += 1

    def wait(until: Callable[[], bool], what: str, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while not until():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    stop, thread = start()
    try:
        publish(10)
        wait(lambda: len(store.generations(STREAM)) == 2, "a rotation opens generation 1")
        rotation.rotate_every = timedelta(days=1)  # one rotation only
        # Its markers written and the old streams unbound:
        wait(lambda: store.generations(STREAM)[-1].bound, "generation 1 alone bound")
        publish(10)  # to generation 1 only
        time.sleep(2.0)
        for shard in range(SHARDS):  # stopped before the marker, checkpoint too
            assert generation_of(store.checkpoint(STREAM, shard)[0]) == 0
        assert sorted(n for seen in counter.seen.values() for n in seen) \
            != list(range(published)), "the next generation is not counted meanwhile"
    finally:
        stop.set()
        thread.join(timeout=15)
    trusted.set()  # restarted with the key
    stop, thread = start()
    try:
        wait(lambda: all(generation_of(store.checkpoint(STREAM, s)[0]) == 1
                         for s in range(SHARDS))
             and sum(len(v) for v in counter.seen.values()) == published,
             "read on from the marker once the key is known")
    finally:
        stop.set()
        thread.join(timeout=15)
        publisher.close()
    for shard in range(SHARDS):
        assert counter.seen[shard] == list(range(shard, published, SHARDS))


def test_a_producer_after_the_first_tally_worker_leaves_the_streams_alone(
        vhost_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url))
    try:
        channel = connection.channel()
        channel.exchange_declare(BOOTSTRAPPED, "fanout", durable=True)  # a rotation ran
        declare_counting(channel, SHARDS)
        assert streams_left(vhost_url, range(1)) == []
    finally:
        connection.close()



def test_the_generations_on_both_stores(backend: Callable[[str], Any]) -> None:
    """The rotation's record: opened once (compare-and-set), bound, forgotten; and every
    shard's checkpoint position, 0 before its first."""
    store = backend("tally")
    stream = f"test-{uuid.uuid4().hex}"
    assert store.generations(stream) == [] and store.positions(stream, 2) == [0, 0]
    assert store.open_generation(stream, 0, T0)
    assert not store.open_generation(stream, 0, T0 + timedelta(hours=1))  # one winner
    assert store.open_generation(stream, 1, T0 + timedelta(days=1))
    store.generation_bound(stream, 0)
    assert store.generations(stream) == [Generation(0, T0, True),
                                         Generation(1, T0 + timedelta(days=1), False)]
    assert store.save_checkpoints(stream, [(1, 0, position_of(1, 4), {})]) == [True]
    assert store.positions(stream, 2) == [0, position_of(1, 4)]
    store.forget_generation(stream, 0)
    assert [g.generation for g in store.generations(stream)] == [1]


def test_a_shard_counts_across_a_rotation_once(backend: Callable[[str], Any]) -> None:
    """``ShardCounters``: ballots up to a generation's marker, the marker (the checkpoint
    goes to the next generation's start), ballots after it in the old stream passed over,
    and the next generation's stream from its start: the ballots routed to both while
    the two were bound are counted once, the rest once each."""
    store = backend("tally")
    stream = f"test-{uuid.uuid4().hex}"
    poll_id = uuid.uuid4().hex
    store.save_rules(poll_id, RULES, rules_hash(RULES), "live")
    counters = ShardCounters(store, stream, 1)

    def ballot(n: int, answer: str) -> dict[str, Any]:
        return wrap(BallotsRecorded(shard=0, ballots=[RecordedBallot(
            poll_id=poll_id, ballot_id=f"b{n}", tracker=f"t{n}", voter_key=f"{n:064x}",
            sequence=0, choice={"answer": answer}, channel="online",
            recorded_at=T0)]), "vote")

    marker = wrap(CountingRotated(shard=0, generation=1), "tally")
    old = [ballot(0, "yes"), ballot(1, "no"), ballot(2, "yes"), marker, ballot(3, "no")]
    new = [ballot(2, "yes"), marker, ballot(3, "no"), ballot(4, "yes")]
    assert counters.take(0) == 0
    assert counters.apply({0: list(enumerate(old))}) == set()
    assert store.positions(stream, 1) == [position_of(1)]
    counters.drop(0)
    assert counters.take(0) == position_of(1)
    assert counters.apply({0: [(position_of(1, i), env) for i, env in enumerate(new)]}) \
        == set()
    assert store.positions(stream, 1) == [position_of(1, len(new))]
    merged = merge(RULES, store.partials(stream, 1, poll_id).values())
    assert merged.received == 5
    assert merged.tally.result()["counts"] == {"yes": 3, "no": 2, "abstain": 0}
    assert sorted(b.ballot_id for b in store.ballots(poll_id)) == [f"b{n}" for n in range(5)]
