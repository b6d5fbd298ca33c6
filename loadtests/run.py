"""``urne loadtest``: an open-loop ballot load against either profile, measured as a user
and an operator would measure it, printed as JSON.

    urne loadtest --profile distributed --participants 20000 --rate 400 --duration 30
    urne loadtest --profile embedded --participants 20000 --rate 600 --duration 30 --json out.json
    urne loadtest --url http://127.0.0.1:8000 --outbox urne-data/outbox/email.jsonl ...

It starts the system itself (in a temporary folder; its own RabbitMQ virtual host and
Cassandra keyspaces) unless ``--url`` names a running one on this machine. Steps:

1. participants sign in through the real path (e-mail code, access token, voting token;
   its CPU is reported apart), beyond ``--real-signins`` through the bulk path that
   development and test deployments offer for made-up voters;
2. ballots are sent on an open-loop schedule (``loadtests/schedule.py``): latency is
   measured from each request's *scheduled* time, so a backlog shows;
3. the poll is closed and the signed result awaited;
4. accepted = stored = counted is checked by id: the distinct ballot ids of every 201
   against the ballots the vote service stored (the result's ``ballots_received``), and
   the trackers of each voter's last accepted ballot against the published record.

CPU: the user and system time of every server process (urne's, RabbitMQ's, Cassandra's)
from ``/proc``, from the first ballot until the result is published, divided by the
ballots accepted; the load generator's own CPU is reported apart, and so are the
machine's counters while the ballots flowed (``machine_during_ballots``: busy, stolen by
another guest, and spent by neither), to read a run's latencies beside.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp

from loadtests import cpu, lag
from loadtests.lean_http import Pool
from loadtests.schedule import Mix, Send, arrival_times, plan
from loadtests.system import System, start_distributed, start_embedded
from urne.platform import heap
from urne.record import log

ORGANISER = "organiser@urne.example"
SIGN_IN_CONCURRENCY = 16

RETRIES_503 = 5  # for setup requests; each waits Retry-After (1 s)
# A read whose pooled connection the server closed as it went out is sent again.
DISCONNECT_RETRIES = 2
# Pooled connections are dropped by the client after this long idle: before uvicorn's
# keep-alive timeout (5 s) closes them under a request (aiohttp's default is 15 s).
KEEPALIVE_S = 3.0
BALLOT_TIMEOUT_S = 60.0


class Outbox:
    """Sign-in codes from the development outbox (JSON lines), read incrementally."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0
        self.codes: dict[str, str] = {}

    async def code(self, email: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while email not in self.codes:
            if self.path.exists():
                with self.path.open("rb") as fh:
                    fh.seek(self.offset)
                    for line in fh.readlines():
                        if line.endswith(b"\n"):
                            message = json.loads(line)
                            self.codes[message["to"]] = str(message["code"])
                            self.offset += len(line)
            if email in self.codes:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no sign-in code for {email} in {self.path}")
            await asyncio.sleep(0.01)
        return self.codes.pop(email)


@dataclass
class Result:
    status: int
    body: dict[str, Any]
    latency: float  # from the scheduled time
    late: float = 0.0  # how late the generator itself started the request


@dataclass
class Run:
    base: str
    outbox: Outbox
    session: aiohttp.ClientSession
    connections: int = 256  # at most, for the ballots (``lean_http.Pool``)
    poll_id: str = ""
    organiser: dict[str, str] = field(default_factory=dict)

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None,
                   ) -> tuple[int, dict[str, Any]]:
        """Setup requests (sign-in, the poll), sent again after a 503 as the API asks
        (``Retry-After``), a few times: a store or service coming back is not a failure
        of the setup. Ballots have their own path."""
        for attempt in range(RETRIES_503 + 1):
            async with self.session.post(self.base + path, json=body, headers=headers) as r:
                status, answer = r.status, await r.json(content_type=None)
                wait = float(r.headers.get("Retry-After", "1"))
            if status != 503 or attempt == RETRIES_503:
                return status, answer
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        """A read, sent again if the server closed the pooled connection it went out on:
        an idle keep-alive connection the server times out (uvicorn: after 5 s) as the
        client reuses it gives ServerDisconnectedError, or ECONNRESET (ClientOSError),
        and a GET may simply be repeated (both seen after the ballots, polling for the
        result). The pool's own keep-alive (``KEEPALIVE_S``) makes the race rare."""
        for attempt in range(DISCONNECT_RETRIES + 1):
            try:
                async with self.session.get(self.base + path) as r:
                    return r.status, await r.json(content_type=None)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt == DISCONNECT_RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def record(self) -> tuple[int, dict[str, Any]]:
        """The whole published record, from its NDJSON download: ``size``, ``root`` (from
        its headers) and ``entries`` (or the problem, if it is refused)."""
        path = f"/v1/audit/polls/{self.poll_id}/record.ndjson"
        async with self.session.get(self.base + path) as r:
            if r.status != 200:
                return r.status, await r.json(content_type=None)
            entries = [json.loads(line) for line in (await r.read()).splitlines()]
            return r.status, {"size": int(r.headers["Urne-Record-Size"]),
                              "root": r.headers["Urne-Record-Root"], "entries": entries}

    async def sign_in(self, email: str) -> dict[str, str]:
        status, body = await self.post("/v1/auth/codes", {"email": email})
        if status != 202:
            raise RuntimeError(f"code for {email}: {status} {body}")
        code = await self.outbox.code(email)
        status, body = await self.post("/v1/auth/tokens", {"email": email, "code": code})
        if status != 200:
            raise RuntimeError(f"token for {email}: {status} {body}")
        return {"Authorization": f"Bearer {body['access_token']}"}

    async def setup(self, organiser: dict[str, str] | None = None) -> None:
        """A consultation with an open poll; ``organiser``: headers of a signed-in one."""
        self.organiser = organiser or await self.sign_in(ORGANISER)
        _, c = await self.post("/v1/consultations", {"title": "load test"}, self.organiser)
        status, body = await self.post(f"/v1/consultations/{c['id']}/publish", {},
                                       self.organiser)
        if status != 200:  # a poll opens only in a published consultation
            raise RuntimeError(f"publish: {status} {body}")
        _, p = await self.post(f"/v1/consultations/{c['id']}/polls", {
            "rules": {"method": "yes_no_abstain", "question": "Load?"}}, self.organiser)
        self.poll_id = p["id"]
        status, body = await self.post(f"/v1/polls/{self.poll_id}/open", {}, self.organiser)
        if status != 200:
            raise RuntimeError(f"open: {status} {body}")

    async def synthetic_tokens(self, count: int) -> list[str]:
        """Voting tokens of made-up voters (the development-only bulk path)."""
        tokens: list[str] = []
        while len(tokens) < count:
            n = min(1000, count - len(tokens))
            status, body = await self.post(f"/v1/testing/polls/{self.poll_id}/voting-tokens",
                                           {"count": n}, self.organiser)
            if status != 201:
                raise RuntimeError(f"synthetic voting tokens: {status} {body}")
            tokens += body["voting_tokens"]
        return tokens

    async def voting_tokens(self, participants: int, progress: Progress) -> list[str]:
        """Each participant signs in for real: e-mail code, access token, voting token."""
        run = uuid.uuid4().hex[:8]
        gate = asyncio.Semaphore(SIGN_IN_CONCURRENCY)
        tokens: list[str] = [""] * participants

        async def one(i: int) -> None:
            async with gate:
                user = await self.sign_in(f"load-{run}-{i}@example.org")
                status, body = await self.post(f"/v1/polls/{self.poll_id}/voting-token", {},
                                               user)
                if status != 201:
                    raise RuntimeError(f"voting token: {status} {body}")
                tokens[i] = body["voting_token"]
                progress.step()

        await asyncio.gather(*(one(i) for i in range(participants)))
        return tokens

    async def ballots(self, sends: list[Send], tokens: list[str], progress: Progress
                      ) -> list[Result]:
        results: list[Result | None] = [None] * len(sends)
        path = f"/v1/polls/{self.poll_id}/ballots"
        pool = Pool(self.base, self.connections, KEEPALIVE_S)
        start = time.perf_counter() + 0.2

        async def fire(i: int, send: Send) -> None:
            scheduled = start + send.at
            late = time.perf_counter() - scheduled
            headers = {"Authorization": f"Bearer {tokens[send.voter]}",
                       "Idempotency-Key": send.key}
            try:
                choice = {"method": "yes_no_abstain", "answer": send.answer}
                async with asyncio.timeout(BALLOT_TIMEOUT_S):
                    status, raw = await pool.post(path, json.dumps({"choice": choice}).encode(),
                                                  headers)
                body = json.loads(raw) if raw else {}
            except (OSError, ValueError, TimeoutError) as exc:  # ConnectionError is an OSError
                status, body = 0, {"code": f"client_{type(exc).__name__}"}
            results[i] = Result(status, body, time.perf_counter() - scheduled, late)
            progress.step()

        tasks = []
        frozen_at = time.perf_counter()
        for i, send in enumerate(sends):
            delay = start + send.at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(i, send)))
            if time.perf_counter() - frozen_at > 1.0:
                # What the requests left alive (their tasks, the results) out of the
                # collector's full passes too (see ``measure``); undone after the run.
                gc.freeze()
                frozen_at = time.perf_counter()
        await asyncio.gather(*tasks)
        pool.close()
        return [r for r in results if r is not None]

    async def close_and_publish(self, timeout: float = 600) -> dict[str, Any]:
        status, body = await self.post(f"/v1/polls/{self.poll_id}/close", {}, self.organiser)
        if status != 200:
            raise RuntimeError(f"close: {status} {body}")
        deadline = time.monotonic() + timeout
        while True:
            status, body = await self.get(f"/v1/audit/polls/{self.poll_id}/result")
            if status == 200:
                return body
            if time.monotonic() > deadline:
                raise RuntimeError(f"no result after {timeout}s: {status} {body}")
            await asyncio.sleep(0.1)


class Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.tty = sys.stderr.isatty()
        self._shown = -1

    def step(self) -> None:
        self.done += 1
        percent = self.done * 100 // max(self.total, 1)
        if self.tty and percent != self._shown:
            self._shown = percent
            bar = "#" * (percent // 4)
            print(f"\r{self.label:<12} [{bar:<25}] {self.done}/{self.total}", end="",
                  file=sys.stderr, flush=True)
            if self.done >= self.total:
                print(file=sys.stderr)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


async def broker_confirm_rate(amqp_url: str, messages: int = 5000) -> float:
    """Persistent messages per second one Python client publishes with pipelined
    confirms (aio-pika, 256 in flight): the raw building block of the ballot path."""
    import aio_pika

    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"urne.bench-{uuid.uuid4().hex[:8]}", durable=True)
        body = b"x" * 600  # about the size of a ballot message
        gate = asyncio.Semaphore(256)

        async def publish() -> None:
            async with gate:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name)

        started = time.perf_counter()
        await asyncio.gather(*(publish() for _ in range(messages)))
        rate = messages / (time.perf_counter() - started)
        await queue.delete(if_unused=False, if_empty=False)
        return rate
    finally:
        await connection.close()


def reconcile(sends: list[Send], results: list[Result], result_doc: dict[str, Any],
              record: dict[str, Any]) -> dict[str, Any]:
    """accepted = stored = counted, by id: the trackers of the 201s (a replayed request's
    receipt names the same ballot) are those of the record's entries, which are every
    ballot stored (``ballots_received`` of them), and its counted entries are each
    voter's last accepted ballot."""
    accepted_ids: set[str] = set()
    accepted_trackers: set[str] = set()
    last: dict[int, tuple[int, str]] = {}  # voter -> (sequence, tracker) of the last 201
    for send, r in zip(sends, results, strict=True):
        if r.status == 201:
            accepted_ids.add(r.body["ballot_id"])
            seq, tracker = r.body["sequence"], r.body["tracker"]
            accepted_trackers.add(tracker)
            if seq >= last.get(send.voter, (0, ""))[0]:
                last[send.voter] = (seq, tracker)
    stored = int(result_doc["result"]["ballots_received"])
    stored_trackers = [e["tracker"] for e in record["entries"]]
    counted = {e["tracker"] for e in log.counted(record["entries"])}
    expected = {tracker for _, tracker in last.values()}
    return {"accepted": len(accepted_ids), "stored": stored, "counted": len(counted),
            "voters": len(last),
            "accepted_equals_stored": len(accepted_ids) == len(accepted_trackers) == stored
            == len(stored_trackers) and set(stored_trackers) == accepted_trackers,
            "counted_trackers_equal_last_accepted": counted == expected}


async def measure(args: argparse.Namespace, system: System | None) -> dict[str, Any]:
    base = args.url or (system.base if system else "")
    outbox = Outbox(args.outbox if args.url else system.outbox)  # type: ignore[union-attr]
    connector = aiohttp.TCPConnector(limit=args.connections, keepalive_timeout=KEEPALIVE_S)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        run = Run(base, outbox, session, args.connections)
        await run.setup()
        servers = cpu.servers()
        if system is not None:  # this run's urne processes, and the servers it uses
            shared = ("rabbitmq", "cassandra") if system.profile == "distributed" else ()
            servers = [p for p in servers if p.pid in system.pids or p.role in shared]
        me = os.getpid()

        real = min(args.participants, args.real_signins)
        before_signin = cpu.snapshot(servers)
        tokens = await run.voting_tokens(real, Progress("sign-in", real))
        signin_cpu = cpu.spent(before_signin, cpu.snapshot(servers))
        if args.participants > real:  # the rest through the development-only bulk path
            tokens += await run.synthetic_tokens(args.participants - real)

        confirm_rate = None
        if system is not None and system.profile == "distributed" and system.vhost:
            confirm_rate = await broker_confirm_rate(
                f"amqp://guest:guest@127.0.0.1:5672/{system.vhost}")

        times = arrival_times(args.rate, args.duration, args.surge_rate or 0.0,
                              args.surge_seconds, __import__("random").Random(args.seed))
        sends = plan(args.participants, times, Mix(args.revotes, args.invalid,
                                                   args.duplicates), args.seed)
        metrics_url = system.tally_metrics if system is not None else None
        lag_before = lag.buckets(metrics_url) if metrics_url else {}
        # The generator's own full garbage-collector passes walked everything the setup
        # left and the requests made: 160-320 ms each, every 5-6 s of the ballots, a
        # stall of every request in flight that the latencies then showed as the
        # system's. Frozen, a pass walks only what came since.
        heap.settle()
        before = cpu.snapshot(servers)
        client_before = cpu.cpu_seconds(me)
        machine_before = cpu.machine()
        started = time.perf_counter()
        try:
            results = await run.ballots(sends, tokens, Progress("ballots", len(sends)))
        finally:
            gc.unfreeze()
        sent_seconds = time.perf_counter() - started
        intake_cpu = cpu.spent(before, cpu.snapshot(servers))
        client_cpu = cpu.cpu_seconds(me) - client_before
        machine = cpu.meanwhile(machine_before, cpu.machine(),
                                sum(intake_cpu.values()) + client_cpu)
        result_doc = await run.close_and_publish()
        total_cpu = cpu.spent(before, cpu.snapshot(servers))
        lag_p99 = lag.quantile_bound(lag_before, lag.buckets(metrics_url), 0.99) \
            if metrics_url else None
        _, record = await run.record()

    accepted = [r for r in results if r.status == 201]
    latencies = [r.latency * 1000 for r in accepted]
    # Where in the run the slow answers were: p50/p99 per 5 s of the schedule (a tail
    # from the first seconds is warm-up, one spread over the run is load).
    windows: dict[int, list[float]] = {}
    for send, r in zip(sends, results, strict=True):
        if r.status == 201:
            windows.setdefault(int(send.at // 5) * 5, []).append(r.latency * 1000)
    check = reconcile(sends, results, result_doc, record)
    n = max(check["accepted"], 1)
    rejected = Counter(str(r.body.get("code", r.status)) for r in results if r.status != 201)
    return {
        "benchmark": "urne_loadtest",
        "profile": system.profile if system else "running",
        "participants": args.participants, "rate": args.rate, "duration_s": args.duration,
        "surge_rate": args.surge_rate, "surge_seconds": args.surge_seconds,
        **({"shards": args.shards, "counting_shards": args.counting_shards}
           if args.profile == "distributed" and not args.url else {}),
        "requests": len(sends), "kinds": dict(Counter(s.kind for s in sends)),
        **check,
        "rejected": dict(rejected),
        "ballots_per_s": round(len(accepted) / sent_seconds, 1),
        "p50_ms": round(quantile(latencies, 0.50), 1),
        "p95_ms": round(quantile(latencies, 0.95), 1),
        "p99_ms": round(quantile(latencies, 0.99), 1),
        # Part of each latency above: how late the generator itself, sharing the
        # machine's cores, started the request after its scheduled time.
        "client_start_late_p50_ms": round(quantile([r.late * 1000 for r in accepted], 0.50), 1),
        "client_start_late_p99_ms": round(quantile([r.late * 1000 for r in accepted], 0.99), 1),
        "latency_by_5s": {str(t): {"p50_ms": round(quantile(w, 0.50), 1),
                                   "p99_ms": round(quantile(w, 0.99), 1), "n": len(w)}
                          for t, w in sorted(windows.items())},
        # The upper bound of the tally's lag histogram bucket holding the 99th percentile.
        "tally_lag_p99_s": lag_p99,
        "cpu_ms_per_ballot": round(sum(total_cpu.values()) * 1000 / n, 3),
        "cpu_ms_per_ballot_intake": round(sum(intake_cpu.values()) * 1000 / n, 3),
        "cpu_ms_per_ballot_by_process": {k: round(v * 1000 / n, 3)
                                         for k, v in total_cpu.items()},
        "signins": real,
        "cpu_ms_per_signin": round(sum(signin_cpu.values()) * 1000 / max(real, 1), 3),
        "cpu_ms_per_signin_by_process": {k: round(v * 1000 / max(real, 1), 3)
                                         for k, v in signin_cpu.items()},
        "client_cpu_ms_per_request": round(client_cpu * 1000 / max(len(sends), 1), 3),
        # The intake's CPU a ballot counted in the generator's requests: the generator
        # does the same work for each request in every run, so its cost is the speed
        # of the machine's cores in this run, and these ratios are comparable from one
        # run to the next where the milliseconds drift with the host (docs/performance.md).
        "cpu_per_ballot_in_client_requests": in_requests(intake_cpu, n, client_cpu,
                                                         len(sends)),
        # The cores while the ballots flowed: how busy, how much stolen by another
        # guest, and how much CPU neither the servers nor the generator spent.
        "machine_during_ballots": machine,
        "broker_confirm_rate": round(confirm_rate, 1) if confirm_rate else None,
        "ratio": round(len(accepted) / sent_seconds / confirm_rate, 3) if confirm_rate else None,
    }


def in_requests(cpu_seconds: dict[str, float], ballots: int, client_seconds: float,
                requests: int) -> dict[str, float] | None:
    """Each process's CPU a ballot, and their sum (``intake``), over the generator's CPU
    a request; None if the generator spent none (nothing to measure by)."""
    if client_seconds <= 0 or ballots <= 0 or requests <= 0:
        return None
    unit = client_seconds / requests
    ratios = {k: round(v / ballots / unit, 2) for k, v in sorted(cpu_seconds.items())}
    return {"intake": round(sum(cpu_seconds.values()) / ballots / unit, 2), **ratios}


def default_vote_workers(cores: int | None = None) -> int:
    """One vote worker per two cores. On two cores shared with RabbitMQ and Cassandra a
    second worker bought no capacity and cost 0.2-0.5 CPU-ms a ballot: every batch pays
    its events, replies and acks, and two workers make twice the batches (measured,
    docs/performance.md)."""
    return max(1, (cores or os.cpu_count() or 1) // 2)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="urne loadtest", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("embedded", "distributed"), default="embedded")
    p.add_argument("--participants", type=int, default=1000)
    p.add_argument("--rate", type=float, default=100.0, help="ballots per second (Poisson)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    p.add_argument("--surge-rate", type=float, default=None,
                   help="rate during the last --surge-seconds (a deadline surge)")
    p.add_argument("--surge-seconds", type=float, default=0.0)
    p.add_argument("--deadline-surge", action="store_true",
                   help="half the ballots in the last tenth of the time")
    p.add_argument("--revotes", type=float, default=0.10)
    p.add_argument("--invalid", type=float, default=0.02)
    p.add_argument("--duplicates", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--connections", type=int, default=256, help="HTTP connections at most")
    p.add_argument("--real-signins", type=int, default=1000,
                   help="participants who sign in through the real path (measured); the "
                        "others get tokens from the development-only bulk path")
    p.add_argument("--vote-workers", type=int, default=default_vote_workers(),
                   help="distributed: vote workers (default: one per two cores, at least "
                        "one; docs/performance.md, \"One vote worker or two\")")
    p.add_argument("--shards", type=int, default=16, help="distributed: ballot shards")
    p.add_argument("--counting-shards", type=int, default=4,
                   help="distributed: counting shards (a power of two)")
    p.add_argument("--url", help="a running urne on this machine (else one is started)")
    p.add_argument("--outbox", type=Path, help="with --url: its development e-mail outbox")
    p.add_argument("--json", type=Path, help="also write the report to this file")
    args = p.parse_args(argv)
    if args.deadline_surge:
        args.surge_seconds = args.duration / 10
        args.surge_rate = args.rate * 9  # as many ballots in the last tenth as before it
    if args.url:
        if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            p.error("load is only sent to this machine (loopback)")
        if not args.outbox:
            p.error("--url needs --outbox (sign-in codes of the development mailer)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    system = None
    if not args.url:
        workdir = Path(tempfile.mkdtemp(prefix="urne-loadtest-"))
        system = (start_distributed(workdir, args.vote_workers, args.shards,
                                    counting_shards=args.counting_shards)
                  if args.profile == "distributed" else start_embedded(workdir))
    try:
        report = asyncio.run(measure(args, system))
    finally:
        if system:
            system.stop()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    ok = report["accepted_equals_stored"] and report["counted_trackers_equal_last_accepted"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
