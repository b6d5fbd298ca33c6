"""Where a ballot's 201 could come from, measured on the broker alone: after the vote
worker's commit (a batched reply, as urne does) or after the broker's confirm (a
replicated quorum queue). Prints JSON.

    python -m loadtests.reply_modes [--rate 400] [--duration 20] [--rounds 2]

The intake issue asked to choose between the two by measurement. They differ only
between the gateway and the vote worker, so that is what this drives, on the local
RabbitMQ (``infra/rabbitmq/start.sh``), in a virtual host of its own removed at the
end, open loop (Poisson arrivals, latency from each message's *scheduled* time), with
a body the size of a real signed ballot (a real voting token inside):

- ``reply``: what urne does. Transient messages, no publisher confirm, through a
  consistent-hash exchange to 16 classic single-active-consumer shard queues; the
  consumer takes a batch (the vote worker's linger and prefetch), answers it with one
  message per reply queue (``urne.replies``) and acks it. The "201" is the reply.
- ``confirm_quorum``: the alternative. Persistent messages with pipelined publisher
  confirms into 16 *quorum* single-active-consumer queues (the replicated, durable
  queue a confirm-based 201 needs); the consumer takes batches and acks them and sends
  nothing back. The "201" is the confirm. On one node its quorum queues have one member:
  the cheapest a quorum queue gets (three replicas write and ship every message thrice).
- ``confirm_classic``: persistent and confirmed into classic durable queues, no reply:
  not a candidate (a confirm from one node's classic queue survives no node's loss),
  measured to split the quorum queue's price from the confirm's.

Neither the store nor the events are driven: both variants write the same rows and
publish the same events, but only ``reply`` makes the client wait for the write (a
batch's write took 14 ms at the median on Cassandra: docs/performance.md), and only
``confirm_*`` must answer before the worker has decided anything (its close marker, an
idempotency conflict, the ballot limit) and before the receipt's sequence is known.
Nor are the signatures: a reply batch's is measured in ``loadtests.envelopes``.
The modes run alternately, ``--rounds`` times each; CPU is RabbitMQ's (``beam.smp``),
the publisher's (this process, the gateway's part) and the consumer's (a process of its
own, the vote worker's part), from ``/proc``, per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiormq
import httpx
import pika

from loadtests import cpu
from loadtests.run import quantile
from loadtests.schedule import arrival_times
from loadtests.system import GUEST, MANAGEMENT, close_vhost, open_vhost
from urne.platform.settings import ServiceSettings

EXCHANGE = "bench.ballots"
MODES = ("reply", "confirm_quorum", "confirm_classic")


def _default(name: str) -> Any:
    return ServiceSettings.model_fields[name].default


# The vote worker's defaults, read from its settings so they cannot drift: the shards,
# how long a batch's first message waits for more, the most a batch holds, and its
# prefetch over all shards.
SHARDS = _default("ballot_shards")
LINGER = _default("vote_worker_linger_seconds")
MAX_BATCH = _default("vote_worker_batch")
PREFETCH = _default("vote_worker_prefetch")


def signed_ballot() -> bytes:
    """A ballot's message body as the gateway sends it: a signed ``CastBallot`` with a
    real voting token inside (the broker's work depends on the size, not the bytes)."""
    from urne.contracts import wrap
    from urne.contracts.commands import CastBallot
    from urne.contracts.ids import new_ballot_id, new_tracker
    from urne.crypto.keys import IDENTITY_TOKEN_KEY, generate_keys, load_signing_key
    from urne.crypto.tokens import TokenIssuer
    from urne.messaging.signatures import load_signer
    from urne.platform import jsonbytes

    with tempfile.TemporaryDirectory(prefix="urne-reply-modes-") as folder:
        keys = Path(folder)
        generate_keys(keys)
        token = TokenIssuer(load_signing_key(keys, IDENTITY_TOKEN_KEY)).voting_token(
            uuid.uuid4().hex * 2, uuid.uuid4().hex)[0]
        cast = CastBallot(poll_id=uuid.uuid4().hex, voting_token=token,
                          choice={"answer": "yes"}, ballot_id=new_ballot_id(),
                          tracker=new_tracker(), received_at=datetime.now(UTC),
                          idempotency_key=uuid.uuid4().hex)
        return jsonbytes.dumps(load_signer(keys, "gateway").sign(wrap(cast, "gateway")))


def declare(url: str, mode: str) -> str:
    """The mode's exchange and shard queues (its own names: modes never share one), and
    the queues' type as the broker reports it."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(f"{EXCHANGE}.{mode}", "x-consistent-hash", durable=True)
    arguments: dict[str, Any] = {"x-single-active-consumer": True}
    if mode == "confirm_quorum":
        arguments["x-queue-type"] = "quorum"
    names = [f"bench.{mode}.shard-{shard:03d}" for shard in range(SHARDS)]
    for name in names:
        channel.queue_declare(name, durable=True, arguments=arguments)
        channel.queue_bind(name, f"{EXCHANGE}.{mode}", routing_key="1")
    connection.close()
    vhost = pika.URLParameters(url).virtual_host
    return str(httpx.get(f"{MANAGEMENT}/queues/{quote(vhost, safe='')}/{names[0]}",
                         auth=GUEST, timeout=30).raise_for_status().json()["type"])


def consume(url: str, queues: list[str], reply: bool) -> None:
    """The vote worker's part, in a process of its own: a channel per shard, batches
    that linger, one reply message per reply queue and batch, then the acks."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    control = connection.channel()
    pending: list[tuple[pika.channel.Channel, int, str | None, str | None]] = []
    first = [0.0]

    def take(channel: Any, method: Any, props: Any, body: bytes) -> None:
        if not pending:
            first[0] = time.monotonic()
        pending.append((channel, method.delivery_tag, props.reply_to, props.correlation_id))

    for name in queues:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=max(32, PREFETCH // len(queues)))
        channel.basic_consume(name, take)
    print("ready", flush=True)
    while True:
        wait = LINGER if not pending else max(0.0, first[0] + LINGER - time.monotonic())
        connection.process_data_events(time_limit=wait)
        if not pending or (len(pending) < MAX_BATCH and
                           time.monotonic() < first[0] + LINGER):
            continue
        batch, pending[:] = list(pending), []
        if reply:
            answers: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            for _, _, reply_to, correlation_id in batch:
                if reply_to and correlation_id:
                    answers.setdefault(reply_to, []).append((correlation_id, {"ok": True}))
            for reply_to, answered in answers.items():
                control.basic_publish("", reply_to, json.dumps(answered).encode(),
                                      pika.BasicProperties(type="urne.replies"))
        last: dict[int, tuple[Any, int]] = {}
        for channel, tag, _, _ in batch:
            last[channel.channel_number] = (channel, tag)
        for channel, tag in last.values():
            channel.basic_ack(tag, multiple=True)


async def publish(url: str, mode: str, body: bytes, times: list[float]) -> dict[str, Any]:
    """The gateway's part: each message sent at its scheduled time, its "201" awaited
    (the reply, or the confirm); latencies from the scheduled time."""
    connection = await aiormq.connect(url)
    reply = mode == "reply"
    channel = await connection.channel(publisher_confirms=not reply)
    waiting: dict[str, asyncio.Future[None]] = {}
    reply_queue = ""
    if reply:
        declared = await channel.queue_declare("", exclusive=True, auto_delete=True)
        reply_queue = str(declared.queue)

        async def answered(message: aiormq.abc.DeliveredMessage) -> None:
            for correlation_id, _ in json.loads(message.body):
                future = waiting.pop(correlation_id, None)
                if future is not None and not future.done():
                    future.set_result(None)

        await channel.basic_consume(reply_queue, answered, no_ack=True)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failed = 0

    async def send(at: float) -> None:
        nonlocal failed
        key = uuid.uuid4().hex  # a voter key: spreads over the shards as voters do
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json", correlation_id=key, message_id=key,
            reply_to=reply_queue or None, delivery_mode=1 if reply else 2)
        try:
            if reply:
                future: asyncio.Future[None] = loop.create_future()
                waiting[key] = future
                await channel.basic_publish(body, exchange=f"{EXCHANGE}.{mode}",
                                            routing_key=key, properties=properties)
                await asyncio.wait_for(future, 30)
            else:
                confirm = await channel.basic_publish(body, exchange=f"{EXCHANGE}.{mode}",
                                                      routing_key=key, properties=properties)
                if not isinstance(confirm, aiormq.spec.Basic.Ack):
                    raise RuntimeError(f"not confirmed: {confirm!r}")
            latencies.append(loop.time() - at)
        except (TimeoutError, RuntimeError):
            failed += 1

    start = loop.time() + 0.2
    tasks = []
    for offset in times:
        delay = start + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(start + offset)))
    await asyncio.gather(*tasks)
    seconds = loop.time() - start
    await connection.close()
    return {"latencies": latencies, "failed": failed, "seconds": seconds}


def one_run(url: str, mode: str, body: bytes, rate: float, duration: float,
            seed: int) -> dict[str, Any]:
    queue_type = declare(url, mode)
    worker = subprocess.Popen(
        [sys.executable, "-m", "loadtests.reply_modes", "--consume", url, "--mode", mode],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        broker = [p for p in cpu.servers() if p.role == "rabbitmq"]
        roles = [*broker, cpu.Process(worker.pid, "consumer")]
        times = arrival_times(rate, duration, 0.0, 0.0, random.Random(seed))
        before, me = cpu.snapshot(roles), cpu.cpu_seconds(os.getpid())
        sent = asyncio.run(publish(url, mode, body, times))
        time.sleep(2 * LINGER)  # the last batch's acks
        spent = cpu.spent(before, cpu.snapshot(roles))
        spent["publisher"] = round(cpu.cpu_seconds(os.getpid()) - me, 3)
    finally:
        worker.terminate()
        worker.wait(15)
    n = len(sent["latencies"])
    return {
        "mode": mode, "queue_type": queue_type, "messages": len(times), "answered": n,
        "failed": sent["failed"],
        "messages_per_s": round(n / sent["seconds"], 1),
        "p50_ms": round(1000 * quantile(sent["latencies"], 0.5), 1),
        "p99_ms": round(1000 * quantile(sent["latencies"], 0.99), 1),
        "cpu_ms_per_message": {role: round(1000 * s / max(n, 1), 3)
                               for role, s in spent.items()},
        "cpu_ms_per_message_total": round(1000 * sum(spent.values()) / max(n, 1), 3),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_mode: dict[str, Any] = {}
    for mode in MODES:
        mine = [r for r in runs if r["mode"] == mode]
        if mine:
            by_mode[mode] = {
                "cpu_ms_per_message_total": [r["cpu_ms_per_message_total"] for r in mine],
                "rabbitmq_cpu_ms": [r["cpu_ms_per_message"].get("rabbitmq") for r in mine],
                "p99_ms": [r["p99_ms"] for r in mine]}
    return by_mode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--consume", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:  # the consumer's own process
        consume(args.consume, [f"bench.{args.mode}.shard-{s:03d}" for s in range(SHARDS)],
                reply=args.mode == "reply")
        return

    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose among {', '.join(MODES)}")
    vhost = f"urne-bench-{uuid.uuid4().hex[:8]}"
    url = open_vhost(vhost)
    try:
        body = signed_ballot()
        runs = [one_run(url, mode, body, args.rate, args.duration, args.seed + i)
                for i in range(args.rounds) for mode in modes]
        print(json.dumps({"benchmark": "reply_modes", "rate": args.rate,
                          "duration_s": args.duration, "body_bytes": len(body),
                          "shards": SHARDS, "linger_s": LINGER, "runs": runs,
                          "by_mode": summary(runs)}, indent=2))
        if any(r["failed"] or r["answered"] != r["messages"] for r in runs):
            raise SystemExit("a message went unanswered")
    finally:
        close_vhost(vhost)


if __name__ == "__main__":
    main()
