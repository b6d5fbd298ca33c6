"""The vote workers' transport (urne.messaging.ballot_stream.ShardWorker) on a real
RabbitMQ: batches replied and acked, passing faults retried, a poison message parked
alone, and the shards shared between workers. The handler is the test's own: the
intake behind it is tested elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pytest

from urne.contracts import wrap
from urne.contracts.commands import GetPoll
from urne.contracts.events import BallotBoxSealed
from urne.crypto.keys import ENVELOPE_KEY_NAMES, generate_keys
from urne.messaging.amqp_rpc import AmqpRpcClient
from urne.messaging.ballot_stream import (
    BALLOTS_EXCHANGE,
    DEAD_LETTERS,
    EVENTS_EXCHANGE,
    MARKER_TYPE,
    REPLIES_TYPE,
    REPLY_EXCHANGE,
    WORKERS_EXCHANGE,
    Batch,
    Handler,
    ShardWorker,
    declare_topology,
    shard_queue,
)
from urne.messaging.membership import PEER_TIMEOUT_SECONDS
from urne.messaging.signatures import (
    BATCH_REPLY_TYPE,
    Verifier,
    batch_reply,
    load_signer,
    load_verifier,
    signed_reply,
)
from urne.platform import jsonbytes
from urne.platform.metrics import MESSAGES_REFUSED

pytestmark = [pytest.mark.integration, pytest.mark.distributed]

Fence = Callable[[], None]


def no_fence() -> None:
    pass


SHARDS = 4


class Transient(Exception):
    pass


@pytest.fixture
def amqp_url(vhost_url: str) -> str:
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url))
    declare_topology(connection.channel(), SHARDS)
    connection.close()
    return vhost_url


class Client:
    """Publishes into shard queues as a gateway would, and collects the replies and
    the events the workers publish."""

    def __init__(self, url: str):
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(REPLY_EXCHANGE, "topic", durable=True)
        self.reply_key = uuid.uuid4().hex
        self.replies_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.replies_queue, REPLY_EXCHANGE, self.reply_key)
        self.events_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.events_queue, EVENTS_EXCHANGE, "test.done.v1")
        self.batches: list[dict[str, Any]] = []  # the reply messages, as they came

    def send(self, shard: int, body: dict[str, Any]) -> str:
        correlation_id = uuid.uuid4().hex
        self.channel.basic_publish("", shard_queue(shard), json.dumps(body).encode(),
                                   pika.BasicProperties(reply_to=self.reply_key,
                                                        correlation_id=correlation_id))
        return correlation_id

    def drain(self, queue: str) -> list[Any]:
        got = []
        while True:
            method, _, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append(json.loads(body))

    def replies(self, want: int, timeout: float = 20) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(found) < want and time.monotonic() < deadline:
            for batch in self.drain(self.replies_queue):
                self.batches.append(batch)
                found.update({cid: reply for cid, reply in batch["replies"]})
            time.sleep(0.05)
        return found

    def depth(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count


def echo(seen: list[tuple[dict[str, Any], int]]) -> Handler:
    def handle(items: list[Any], shards: list[int], fence: Fence = no_fence) -> Batch:
        seen.extend(zip(items, shards, strict=True))
        return Batch([{"ok": True, "data": item} for item in items],
                     [{"type": "test.done.v1", "count": len(items)}])
    return handle


def refusals(consumer: str, *reasons: str) -> Callable[[], dict[str, float]]:
    """How many refusals of each reason ``consumer`` counted since this call."""
    counters = {why: MESSAGES_REFUSED.labels(consumer, why) for why in reasons}
    before = {why: counter._value.get() for why, counter in counters.items()}

    def since() -> dict[str, float]:
        return {why: c._value.get() - before[why] for why, c in counters.items()}
    return since


def asked(url: str, replies: Verifier, answer: Callable[[], None],
          ask: Callable[[AmqpRpcClient], Awaitable[Any]]) -> Any:
    """What a gateway's client gets for ``ask`` while ``answer`` (a thread: the other
    side of the broker) answers it."""
    async def run() -> Any:
        client = AmqpRpcClient(url, replies)
        await client.connect()
        try:
            return await ask(client)
        finally:
            await client.close()

    other_side = threading.Thread(target=answer)
    other_side.start()
    try:
        return asyncio.run(run())
    finally:
        other_side.join()


def running(worker: ShardWorker) -> Callable[[], None]:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(10)
    return halt


def test_a_batch_is_replied_its_events_published_and_acked(amqp_url: str) -> None:
    client, seen = Client(amqp_url), []
    sent = {client.send(i % SHARDS, {"n": i}): i for i in range(40)}
    halt = running(ShardWorker(amqp_url, SHARDS, echo(seen), transient=lambda e: False))
    try:
        replies = client.replies(40)
    finally:
        halt()
    assert {cid: r["data"]["n"] for cid, r in replies.items()} == sent
    assert sum(e["count"] for e in client.drain(client.events_queue)) >= 40
    assert all(shard == item["n"] % SHARDS for item, shard in seen)
    assert [client.depth(shard_queue(s)) for s in range(SHARDS)] == [0] * SHARDS  # acked


def test_events_held_back_go_together_and_the_acks_wait_for_them(amqp_url: str) -> None:
    """With ``events_every``, the answers go at once and the events of several batches
    wait, then go as the coalescing makes them; a message stays unacked until then, and
    a worker asked to stop sends what it holds before it goes."""
    client, seen = Client(amqp_url), []
    merged: list[int] = []

    def coalesce(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        merged.append(len(events))
        return [{"type": "test.done.v1", "count": sum(e["count"] for e in events)}]

    halt = running(ShardWorker(amqp_url, SHARDS, echo(seen), transient=lambda e: False,
                               events_every=60.0, coalesce=coalesce))
    try:
        first = {client.send(i % SHARDS, {"n": i}) for i in range(8)}
        assert set(client.replies(8)) == first  # answered
        second = {client.send(i % SHARDS, {"n": i}) for i in range(8, 16)}
        assert set(client.replies(8)) == second  # answered, in another batch
        assert client.drain(client.events_queue) == []  # nothing announced yet
        assert merged == []
    finally:
        halt()
    assert [e["count"] for e in client.drain(client.events_queue)] == [16]  # together
    assert merged and merged[0] >= 2  # the events of two batches at least, coalesced
    assert len(seen) == 16  # each handled once: acked before the worker left
    assert [client.depth(shard_queue(s)) for s in range(SHARDS)] == [0] * SHARDS


def test_a_worker_gone_before_its_held_events_went_out_leaves_them_to_be_redone(
        amqp_url: str) -> None:
    """Held events are lost with the worker, never its messages: unacked, they come back
    to the next worker, which handles them again (the intake finds them stored and sends
    their events again)."""
    client, seen_first, seen_next = Client(amqp_url), [], []
    worker = ShardWorker(amqp_url, SHARDS, echo(seen_first), transient=lambda e: False,
                         events_every=60.0)
    crash = threading.Event()
    original = worker._send_events

    def fail_to_send(*args: Any) -> None:
        if crash.is_set():
            raise pika.exceptions.ConnectionClosed(320, "the worker died")  # as on a kill
        original(*args)

    worker._send_events = fail_to_send  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=lambda: _run_once(worker, stop), daemon=True)
    thread.start()
    sent = {client.send(i % SHARDS, {"n": i}) for i in range(8)}
    assert set(client.replies(8)) == sent
    crash.set()
    stop.set()  # the worker tries to send what it holds on its way out, and dies
    thread.join(10)
    assert client.drain(client.events_queue) == []
    halt = running(ShardWorker(amqp_url, SHARDS, echo(seen_next), transient=lambda e: False))
    try:
        assert len(client.replies(8)) == 8  # handled again, answered again
    finally:
        halt()
    assert sorted(item["n"] for item, _ in seen_next) == list(range(8))
    assert sum(e["count"] for e in client.drain(client.events_queue)) == 8


def _run_once(worker: ShardWorker, stop: threading.Event) -> None:
    """One session of the worker, ended by whatever ends it (a test's crash)."""
    with contextlib.suppress(pika.exceptions.AMQPError):
        worker._session(stop)


def test_a_linger_takes_what_comes_within_it_as_one_batch(amqp_url: str) -> None:
    sizes: list[int] = []

    def handle(items: list[Any], shards: list[int], fence: Fence = no_fence) -> Batch:
        sizes.append(len(items))
        return Batch([{"ok": True, "data": item} for item in items], [])

    client = Client(amqp_url)
    halt = running(ShardWorker(amqp_url, SHARDS, handle, transient=lambda e: False,
                               linger=1.0))
    try:
        client.send(0, {"n": -1})
        assert len(client.replies(1)) == 1  # the worker is consuming
        sizes.clear()
        sent = []
        for i in range(12):  # over ~0.25 s, on every shard: well inside the linger
            sent.append(client.send(i % SHARDS, {"n": i}))
            time.sleep(0.02)
        replies = client.replies(12)
    finally:
        halt()
    assert sorted(replies) == sorted(sent)
    assert sizes == [12]


def test_a_passing_fault_is_retried_never_parked(amqp_url: str) -> None:
    client, seen, failures = Client(amqp_url), [], [2]

    def flaky(items: list[Any], shards: list[int], fence: Fence) -> Batch:
        if failures[0]:
            failures[0] -= 1
            raise Transient("store down")
        return echo(seen)(items, shards)

    sent = [client.send(0, {"n": i}) for i in range(5)]
    halt = running(ShardWorker(amqp_url, SHARDS, flaky,
                               transient=lambda e: isinstance(e, Transient)))
    try:
        replies = client.replies(5)
    finally:
        halt()
    assert set(replies) == set(sent) and all(r["ok"] for r in replies.values())
    assert client.drain(DEAD_LETTERS) == []


def test_a_worker_backing_off_keeps_announcing_itself(amqp_url: str) -> None:
    """While its store is away for longer than the others wait for a silent worker, a
    worker retrying its batch still announces itself every heartbeat: the others do not
    take its shards (and then find them held) for a passing fault."""
    client, seen = Client(amqp_url), []
    heard = client.channel.queue_declare("", exclusive=True).method.queue
    client.channel.exchange_declare(WORKERS_EXCHANGE, "fanout", durable=True)
    client.channel.queue_bind(heard, WORKERS_EXCHANGE)
    down_until = time.monotonic() + 2.5 * PEER_TIMEOUT_SECONDS

    def away(items: list[Any], shards: list[int], fence: Fence) -> Batch:
        if time.monotonic() < down_until:
            raise Transient("store down")
        return echo(seen)(items, shards)

    sent = client.send(0, {"n": 1})
    worker = ShardWorker(amqp_url, SHARDS, away, transient=lambda e: isinstance(e, Transient))
    halt = running(worker)
    announced: list[float] = []
    try:
        while time.monotonic() < down_until:
            announced += [time.monotonic() for m in client.drain(heard)
                          if m["worker"] == worker.membership.me]
            time.sleep(0.1)
        replies = client.replies(1)
    finally:
        halt()
    assert replies[sent]["ok"]  # the batch went through once the store was back
    gaps = [b - a for a, b in itertools.pairwise(announced)]
    assert len(announced) >= 6 and max(gaps) < PEER_TIMEOUT_SECONDS / 2, gaps


def test_a_worker_that_stalled_writes_nothing_it_held(amqp_url: str) -> None:
    """A batch held up longer than the broker's patience (as by a paused process) is not
    written: the fence refuses, the worker drops its session and reconnects, and the
    batch is handled again, once, from the queue."""
    client, seen, stalls, stale_writes = Client(amqp_url), [], [1], []

    def stalling(items: list[Any], shards: list[int], fence: Fence) -> Batch:
        stalled = bool(stalls[0])
        if stalled:
            stalls[0] -= 1
            time.sleep(1.6)  # past the stall limit: 0.75 of the 2 s heartbeat
        fence()  # right before the writes, as the intake does
        if stalled:
            stale_writes.append(items)  # what the fence must prevent
        return echo(seen)(items, shards)

    sent = [client.send(0, {"n": i}) for i in range(5)]
    halt = running(ShardWorker(amqp_url, SHARDS, stalling, transient=lambda e: False,
                               heartbeat=2))
    try:
        replies = client.replies(5)
    finally:
        halt()
    assert set(replies) == set(sent) and all(r["ok"] for r in replies.values())
    assert sorted(item["n"] for item, _ in seen) == list(range(5))  # each written once
    assert stale_writes == [] and stalls == [0]
    assert client.drain(DEAD_LETTERS) == []


def test_a_poison_message_is_parked_alone_and_answered(amqp_url: str) -> None:
    client, seen = Client(amqp_url), []

    def picky(items: list[Any], shards: list[int], fence: Fence) -> Batch:
        if any(item.get("poison") for item in items):
            raise ValueError("cannot ever handle this")
        return echo(seen)(items, shards)

    good = [client.send(1, {"n": i}) for i in range(3)]
    bad = client.send(1, {"poison": True})
    good += [client.send(1, {"n": i}) for i in range(3, 6)]
    halt = running(ShardWorker(amqp_url, SHARDS, picky, transient=lambda e: False))
    try:
        replies = client.replies(7)
    finally:
        halt()
    assert all(replies[cid]["ok"] for cid in good)
    assert replies[bad] == {"ok": False, "error": {"code": "internal_error", "status": 500,
                                                   "detail": "the vote service failed"}}
    [parked] = client.drain(DEAD_LETTERS)
    assert parked["envelope"] == {"poison": True} and parked["error_type"] == "ValueError"
    assert client.depth(shard_queue(1)) == 0


def test_workers_share_the_shards(amqp_url: str) -> None:
    """With single active consumers alone, the first worker would take every shard;
    the workers step back from the shards the other owns. Sixteen shards: with four,
    rendezvous hashing gives one of two workers every shard one time in eight."""
    client, shards = Client(amqp_url), 16
    seen: dict[int, list[tuple[dict[str, Any], int]]] = {1: [], 2: []}
    halts = [running(ShardWorker(amqp_url, shards, echo(seen[w]), transient=lambda e: False,
                                 heartbeat=5)) for w in (1, 2)]
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # keep every shard busy while they settle
            for shard in range(shards):
                client.send(shard, {"shard": shard, "at": time.monotonic()})
            time.sleep(0.05)
        time.sleep(1)
    finally:
        for halt in halts:
            halt()
    late = time.monotonic() - 5  # what each worker took in the last seconds
    took: dict[int, set[int]] = defaultdict(set)
    for worker, items in seen.items():
        for item, shard in items:
            if item["at"] > late:
                took[worker].add(shard)
    assert took[1] and took[2], dict(took)  # both work
    assert took[1].isdisjoint(took[2]), dict(took)  # one active consumer per shard
    assert took[1] | took[2] == set(range(shards))


def test_a_shard_that_moves_keeps_its_order(amqp_url: str) -> None:
    """One voter's ballots are sequenced by the order their shard hands them out: when a
    second worker joins and the first steps back, what the first had received but not
    yet handled must come to the second before anything sent later."""
    client, lock = Client(amqp_url), threading.Lock()
    handled: list[tuple[int, int]] = []  # (shard, n) in the order handled, both workers

    def slow(items: list[Any], shards: list[int], fence: Fence) -> Batch:
        time.sleep(0.02)  # so deliveries wait, received but not handled, at the move
        with lock:
            handled.extend((shard, item["n"]) for item, shard in zip(items, shards,
                                                                      strict=True))
        return Batch([{"ok": True}] * len(items), [])

    halts = [running(ShardWorker(amqp_url, SHARDS, slow, transient=lambda e: False,
                                 heartbeat=5))]
    sent = 0
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if len(halts) == 1 and time.monotonic() > deadline - 6:
                halts.append(running(ShardWorker(amqp_url, SHARDS, slow,
                                                 transient=lambda e: False, heartbeat=5)))
            for _ in range(20):
                client.send(sent % SHARDS, {"n": sent})
                sent += 1
            time.sleep(0.01)
        settle = time.monotonic() + 20
        while len({n for _, n in handled}) < sent and time.monotonic() < settle:
            time.sleep(0.1)
    finally:
        for halt in halts:
            halt()
    assert {n for _, n in handled} == set(range(sent))
    for shard in range(SHARDS):
        order = [n for s, n in handled if s == shard]
        overtaken = [(a, b) for a, b in itertools.pairwise(order) if b < a]
        assert not overtaken, f"shard {shard}: handled (later, earlier) {overtaken[:5]}"
        assert len(order) == len(set(order))  # and none twice


def test_a_close_marker_counts_only_from_vote_events(amqp_url: str) -> None:
    """The gateway may publish to urne.ballots: a close marker sent that way (a forgery
    that would close the poll early) never reaches the handler, and is parked with its
    reason; through vote.events, where only the vote service may publish, it reaches
    every shard as it is."""
    client, seen = Client(amqp_url), []
    marker = {"type": MARKER_TYPE, "payload": {"poll_id": "p1"}}
    client.channel.basic_publish(BALLOTS_EXCHANGE, "voter-key", json.dumps(marker).encode())
    client.channel.basic_publish("", shard_queue(1), json.dumps(marker).encode())
    client.channel.basic_publish(EVENTS_EXCHANGE, MARKER_TYPE, json.dumps(marker).encode())
    refused = refusals("vote-worker", "not_allowed")
    halt = running(ShardWorker(amqp_url, SHARDS, echo(seen), transient=lambda e: False))
    parked: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 20
        while (len(seen) < SHARDS or len(parked) < 2) and time.monotonic() < deadline:
            parked += client.drain(DEAD_LETTERS)
            time.sleep(0.05)
    finally:
        halt()
    items = [item for item, _ in seen]
    assert items == [marker] * SHARDS  # one per shard, from vote.events, and nothing else
    assert [(p["envelope"], p["reason"]) for p in parked] == [(marker, "not_allowed")] * 2
    assert refused() == {"not_allowed": 2}  # counted, as every refusal is


def test_a_refused_message_is_parked_answered_and_the_batch_goes_on(
        amqp_url: str, tmp_path: Path) -> None:
    """With signed envelopes: an unsigned or forged ballot never reaches the handler; it
    is parked with its reason and its sender answered 403 at once, while the signed
    ballots around it go through, and the events published are signed."""
    generate_keys(tmp_path, ENVELOPE_KEY_NAMES)
    gateway, verifier = load_signer(tmp_path, "gateway"), load_verifier(tmp_path, "vote")
    client, seen = Client(amqp_url), []
    client.channel.queue_bind(client.events_queue, EVENTS_EXCHANGE, "ballot_box.sealed.v1")

    def sealing(items: list[Any], shards: list[int], fence: Fence = no_fence) -> Batch:
        seen.extend(items)
        return Batch([{"ok": True, "data": item["id"]} for item in items],
                     [wrap(BallotBoxSealed(poll_id="p1", ballots_recorded=len(items),
                                           sealed_at=datetime.now(UTC)),
                           "vote")])

    def ballot(n: int) -> dict[str, Any]:
        return wrap(GetPoll(poll_id=f"p{n}"), "gateway")  # any command of the gateway's

    good = [gateway.sign(ballot(n)) for n in range(4)]
    forged = {**gateway.sign(ballot(9)), "trace_id": "x" * 32}
    sent = [client.send(1, good[0]), client.send(1, ballot(8)), client.send(1, good[1]),
            client.send(1, forged), client.send(1, good[2]), client.send(1, good[3])]
    halt = running(ShardWorker(amqp_url, SHARDS, sealing, transient=lambda e: False,
                               admit=verifier.admit, sign=load_signer(tmp_path, "vote").sign))
    try:
        replies = client.replies(6)
    finally:
        halt()
    assert seen == good  # in order, the refused ones left out
    assert [replies[cid]["ok"] for cid in sent] == [True, False, True, False, True, True]
    for cid, why in ((sent[1], "unsigned"), (sent[3], "bad_signature")):
        error = replies[cid]["error"]
        assert (error["code"], error["status"]) == ("message_refused", 403)
        assert why in error["detail"]
    parked = client.drain(DEAD_LETTERS)
    assert sorted(p["reason"] for p in parked) == ["bad_signature", "unsigned"]
    assert all(p["error_type"] == "Refused" for p in parked)
    events = client.drain(client.events_queue)
    assert events and all(verifier.admit(e) is None for e in events)
    # The replies too, the refusals' among them: signed with the vote service's key.
    assert client.batches and all(verifier.answer(b, "vote", BATCH_REPLY_TYPE)
                                  for b in client.batches)
    assert client.depth(shard_queue(1)) == 0


def test_the_gateways_ballot_reaches_its_shard_named_by_its_envelope(
        amqp_url: str, tmp_path: Path) -> None:
    """``AmqpRpcClient.cast`` as the gateway sends a ballot: to a shard queue, transient,
    correlated (and identified) by the envelope's own id, no header table; the batched
    reply a worker sends back, signed with the vote service's key, answers it. Replies
    sent to the gateway's queue before it (unsigned as before, signed by another
    service, altered) are not taken, and are counted."""
    generate_keys(tmp_path, ENVELOPE_KEY_NAMES)
    vote, proposal = load_signer(tmp_path, "vote"), load_signer(tmp_path, "proposal")
    envelope = wrap(GetPoll(poll_id="p1"), "gateway")  # any envelope: the path is the same
    seen: list[Any] = []
    refused = refusals("gateway-test", "not_a_reply", "wrong_producer", "bad_signature")

    def answer() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            for shard in range(SHARDS):
                method, props, body = channel.basic_get(shard_queue(shard), auto_ack=True)
                if method is None:
                    continue
                seen.append((props, json.loads(body)))
                closed = [(props.correlation_id, {"ok": False, "error": {"code": "poll_closed"}})]
                true = [(props.correlation_id, {"ok": True, "data": {"n": 1}})]
                for reply in (json.dumps(closed).encode(),
                              jsonbytes.dumps(proposal.sign(batch_reply("proposal", closed))),
                              jsonbytes.dumps({**vote.sign(batch_reply("vote", true)),
                                               "replies": closed}),
                              jsonbytes.dumps(vote.sign(batch_reply("vote", true)))):
                    channel.basic_publish(REPLY_EXCHANGE, props.reply_to, reply,
                                          pika.BasicProperties(type=REPLIES_TYPE))
            time.sleep(0.01)
        connection.close()

    reply = asked(amqp_url, load_verifier(tmp_path, "gateway-test"), answer,
                  lambda client: client.cast(envelope, "voter-1", timeout=10))
    assert reply == {"ok": True, "data": {"n": 1}}
    assert refused() == {"not_a_reply": 1, "wrong_producer": 1, "bad_signature": 1}
    [(props, body)] = seen
    assert body["id"] == envelope["id"]
    assert props.correlation_id == props.message_id == str(envelope["id"])
    assert props.headers is None and props.delivery_mode == 1


def test_an_rpc_answer_is_taken_only_from_the_service_asked_for_its_request(
        amqp_url: str, tmp_path: Path) -> None:
    """``AmqpRpcClient.call``: the reply must be signed by the service asked and name
    the request it answers. A reply signed by another service, naming another request,
    or an unsigned error as nameko writes one, sent first, is not taken (counted); the
    true one is."""
    generate_keys(tmp_path, ENVELOPE_KEY_NAMES)
    proposal, identity = load_signer(tmp_path, "proposal"), load_signer(tmp_path, "identity")
    setup = pika.BlockingConnection(pika.URLParameters(amqp_url))
    setup.channel().queue_declare("test-proposal-rpc", exclusive=False, auto_delete=True)
    setup.channel().exchange_declare(REPLY_EXCHANGE, "topic", durable=True)
    setup.channel().queue_bind("test-proposal-rpc", REPLY_EXCHANGE, "proposal.handle")
    setup.close()
    refused = refusals("gateway-test", "wrong_producer", "wrong_request", "not_a_reply")
    requests: list[dict[str, Any]] = []

    def serve() -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        deadline = time.monotonic() + 10
        while not requests and time.monotonic() < deadline:
            method, props, body = channel.basic_get("test-proposal-rpc", auto_ack=True)
            if method is None:
                time.sleep(0.01)
                continue
            [request] = json.loads(body)["args"]
            requests.append(request)
            answer = {"ok": True, "data": {"poll": "p1"}}
            nameko_error = {"result": None, "error": {"exc_type": "RuntimeError",
                                                      "value": "forged"}}
            for body in ({"result": signed_reply(identity, request["id"], {"ok": False}),
                          "error": None},
                         {"result": signed_reply(proposal, "another-request", {"ok": False}),
                          "error": None},
                         nameko_error,
                         {"result": signed_reply(proposal, request["id"], answer),
                          "error": None}):
                channel.basic_publish(REPLY_EXCHANGE, props.reply_to, jsonbytes.dumps(body),
                                      pika.BasicProperties(correlation_id=props.correlation_id))
        connection.close()

    reply = asked(amqp_url, load_verifier(tmp_path, "gateway-test"), serve,
                  lambda client: client.call("proposal", wrap(GetPoll(poll_id="p1"),
                                                              "gateway"), 10))
    assert reply == {"ok": True, "data": {"poll": "p1"}}
    assert refused() == {"wrong_producer": 1, "wrong_request": 1, "not_a_reply": 1}
