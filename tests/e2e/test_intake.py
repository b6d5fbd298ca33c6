"""The distributed ballot intake under races and faults, with two gateways and two vote
workers on a real RabbitMQ and Cassandra. Every test ends the same way: the poll is
closed, the signed result published, and what got a 201 is compared, by id, with what
was stored and counted (loadtests.run.reconcile).

Clients behave as the API asks them to: a ballot answered 503 (or not answered) is sent
again with the same Idempotency-Key until it gets a final answer. The faults last
seconds; this module runs in series with the rest of the suite.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import pytest

from loadtests.run import Outbox, Result, Run, reconcile
from loadtests.schedule import Send
from loadtests.system import GUEST, MANAGEMENT, System, start_distributed
from tests.support.servers import require_cassandra, require_rabbitmq

pytestmark = [pytest.mark.e2e, pytest.mark.distributed]

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 4  # seconds a gateway waits for a ballot's reply (then 503)
ROTATE_SECONDS = 5


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    require_rabbitmq()
    require_cassandra()
    s = start_distributed(tmp_path_factory.mktemp("intake"), vote_workers=2, shards=8,
                          counting_shards=8, gateways=2,
                          env={"URNE_RPC_TIMEOUT_SECONDS": str(TIMEOUT),
                               "URNE_VOTE_WORKER_HEARTBEAT_SECONDS": "2",
                               "URNE_LOG_LEVEL": "INFO",  # kept logs tell more
                               # Every test here also runs across rotations of the
                               # counting streams (counting_rotation.py), a day apart
                               # in production.
                               "URNE_COUNTING_ROTATE_SECONDS": str(ROTATE_SECONDS),
                               # 50 racing ballots of one voter, all allowed
                               "URNE_MAX_BALLOTS_PER_VOTER": "60"})
    yield s
    s.stop()


@dataclass
class Poll:
    """An open poll with signed-in voters, reachable through every gateway."""

    system: System
    session: aiohttp.ClientSession
    run: Run
    tokens: list[str]
    sends: list[Send] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)

    @property
    def poll_id(self) -> str:
        return self.run.poll_id

    async def cast(self, voter: int, answer: str, key: str | None = None, gateway: int = 0,
                   retry_for: float = 60) -> Result:
        """One ballot, sent again with its key until a final answer; recorded."""
        key = key or uuid.uuid4().hex
        base = self.system.bases[gateway % len(self.system.bases)]
        started = time.perf_counter()
        while True:
            try:
                async with self.session.post(
                        f"{base}/v1/polls/{self.poll_id}/ballots",
                        json={"choice": {"method": "yes_no_abstain", "answer": answer}},
                        headers={"Authorization": f"Bearer {self.tokens[voter]}",
                                 "Idempotency-Key": key}) as r:
                    status, body = r.status, await r.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError):
                status, body = 0, {}
            if status not in (0, 502, 503) or time.perf_counter() - started > retry_for:
                break
            await asyncio.sleep(0.3)
        result = Result(status, body, time.perf_counter() - started)
        self.sends.append(Send(0.0, voter, "first", answer, key))
        self.results.append(result)
        return result

    async def record(self, timeout: float = 60) -> dict[str, Any]:
        """The published record, asked again after a 503, as the API says to."""
        deadline = time.monotonic() + timeout
        while True:
            status, record = await self.run.record()
            if status != 503 or time.monotonic() > deadline:
                assert status == 200, record
                return record
            await asyncio.sleep(0.5)

    async def close_and_reconcile(self) -> dict[str, Any]:
        published = await self.run.close_and_publish(timeout=120)
        record = await self.record()
        return {**reconcile(self.sends, self.results, published, record), "record": record,
                "published": published}


ORGANISER: dict[str, str] = {}  # signed in once: codes are rate limited per address


async def open_poll(system: System, voters: int) -> tuple[aiohttp.ClientSession, Poll]:
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT + 6))
    run = Run(system.base, Outbox(system.outbox), session)
    if not ORGANISER:
        ORGANISER.update(await run.sign_in("organiser@urne.example"))
    await run.setup(ORGANISER)

    class Quiet:
        def step(self) -> None:
            pass

    tokens = await run.voting_tokens(voters, Quiet())  # type: ignore[arg-type]
    return session, Poll(system, session, run, tokens)


def go(coro: Any) -> Any:
    return asyncio.run(coro)


def expect_all_counted(check: dict[str, Any]) -> None:
    assert check["accepted_equals_stored"], check
    assert check["counted_trackers_equal_last_accepted"], check


# --- races ---------------------------------------------------------------------------

def test_fifty_racing_ballots_of_one_voter_leave_one_counted(system: System) -> None:
    async def scenario() -> dict[str, Any]:
        session, poll = await open_poll(system, 1)
        async with session:
            results = await asyncio.gather(*(
                poll.cast(0, ("yes", "no", "abstain")[i % 3], gateway=i) for i in range(50)))
            assert [r.status for r in results] == [201] * 50, [r.body for r in results]
            sequences = sorted(r.body["sequence"] for r in results)
            assert sequences == list(range(1, 51))  # one voter, one history, no duplicate
            return await poll.close_and_reconcile()

    check = go(scenario())
    expect_all_counted(check)
    assert (check["accepted"], check["stored"], check["counted"]) == (50, 50, 1)


def test_a_thousand_replays_of_one_key_store_one_ballot(system: System) -> None:
    async def scenario() -> dict[str, Any]:
        session, poll = await open_poll(system, 1)
        async with session:
            first = await poll.cast(0, "yes", key="the-key")
            assert first.status == 201
            replays = await asyncio.gather(*(poll.cast(0, "yes", key="the-key", gateway=i)
                                             for i in range(1000)))
            assert {r.status for r in replays} == {201}
            assert all(r.body == first.body for r in replays)  # the very same receipt
            other = await poll.cast(0, "no", key="the-key")
            assert (other.status, other.body["code"]) == (422, "idempotency_key_reused")
            return await poll.close_and_reconcile()

    check = go(scenario())
    expect_all_counted(check)
    assert (check["accepted"], check["stored"], check["counted"]) == (1, 1, 1)


def test_two_hundred_ballots_racing_the_close(system: System) -> None:
    async def scenario() -> dict[str, Any]:
        session, poll = await open_poll(system, 200)
        async with session:
            closed = asyncio.Event()

            async def close_midway() -> None:
                await asyncio.sleep(0.1)
                status, _ = await poll.run.post(f"/v1/polls/{poll.poll_id}/close", {},
                                                poll.run.organiser)
                assert status == 200
                closed.set()

            async def voter(i: int) -> Result:
                # Half before the close and while it is under way, half once it has
                # answered: the close lands inside the flow however fast or slow the
                # system is (a fixed schedule raced nothing on a cold one).
                if i < 100:
                    await asyncio.sleep(i * 0.0015)
                else:
                    await closed.wait()
                    await asyncio.sleep((i - 100) * 0.0015)
                return await poll.cast(i, "yes", gateway=i)

            *results, _ = await asyncio.gather(*(voter(i) for i in range(200)),
                                               close_midway())
            statuses = {r.status for r in results}
            assert statuses <= {201, 409}, [r.body for r in results if r.status not in (201, 409)]
            assert {r.body["code"] for r in results if r.status == 409} <= {"poll_closed"}
            assert 0 < sum(r.status == 201 for r in results) < 200, "the close raced nothing"
            deadline = time.monotonic() + 120
            while True:  # the close was already sent: wait for the result
                status, published = await poll.run.get(
                    f"/v1/audit/polls/{poll.poll_id}/result")
                if status == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert status == 200, published
            record = await poll.record()
            return reconcile(poll.sends, poll.results, published, record)

    check = go(scenario())
    expect_all_counted(check)  # every 201 counted, nothing refused slipped in


# --- faults ----------------------------------------------------------------------------

async def stream(poll: Poll, ballots: int, rate: float) -> list[Result]:
    """Ballots at ``rate``/s from distinct voters, one revote in ten."""
    tasks = []
    for i in range(ballots):
        voter = i if i % 10 else max(0, i - 5)
        tasks.append(asyncio.create_task(poll.cast(voter, ("yes", "no")[i % 2], gateway=i)))
        await asyncio.sleep(1 / rate)
    return await asyncio.gather(*tasks)


UNINDEXED = "a ballot id in the index has no ballot row"  # the store's error at the seal


def unindexed(system: System) -> int:
    """How often the seal has found an indexed ballot id without its row (a row never
    written, or two decisions for one voter's sequence): docs/architecture.md."""
    return sum(log.read_text(errors="replace").count(UNINDEXED)
               for log in system.workdir.glob("vote*.log"))


def run_with_fault(system: System, fault: Any, ballots: int = 300,
                   rate: float = 60) -> dict[str, Any]:
    """Ballots flowing while ``fault`` strikes: every one answered 201, every 201
    counted, and the ballot store's index and rows agree."""
    before = unindexed(system)

    async def scenario() -> dict[str, Any]:
        session, poll = await open_poll(system, ballots)
        async with session:
            flowing = asyncio.create_task(stream(poll, ballots, rate))
            await fault()
            results = await flowing
            assert {r.status for r in results} == {201}, [r.body for r in results
                                                          if r.status != 201][:5]
            return await poll.close_and_reconcile()

    check = go(scenario())
    expect_all_counted(check)
    assert unindexed(system) == before
    return check


def counting_streams(system: System) -> list[str]:
    """The counting streams on the system's virtual host (the management API)."""
    r = httpx.get(f"{MANAGEMENT}/queues/{quote(system.vhost or '/', safe='')}",
                  params={"columns": "name"}, auth=GUEST, timeout=30)
    r.raise_for_status()
    return sorted(q["name"] for q in r.json() if q["name"].startswith("urne.counting."))


def test_the_counting_streams_rotate_under_traffic_and_counted_ones_go(
        system: System) -> None:
    """Ten seconds of ballots while a new generation of counting streams opens every
    five: every 201 is counted (the reconciliation), and the broker keeps only the
    generations the tally workers have not counted past (docs/privacy.md)."""
    async def nothing() -> None:
        pass

    def generation(name: str) -> int:
        return int(name.rsplit(".g", 1)[1]) if ".g" in name else 0

    first = {generation(n) for n in counting_streams(system)}
    run_with_fault(system, nothing, ballots=600)
    deadline = time.monotonic() + 30
    while True:  # the last generation deleted within a few ticks of its markers
        left = {generation(n) for n in counting_streams(system)}
        if len(left) <= 2 and min(left) > max(first):
            break
        assert time.monotonic() < deadline, (first, left)
        time.sleep(0.5)
    logs = "".join(p.read_text(errors="replace")
                   for p in system.workdir.glob("tally-worker-*.log"))
    assert "counting streams: generation deleted" in logs


def test_a_vote_worker_killed_mid_stream_loses_nothing(system: System) -> None:
    async def kill() -> None:
        await asyncio.sleep(1.5)
        system.processes["vote-worker-1"].send_signal(signal.SIGKILL)
        await asyncio.sleep(1.5)
        system.restart("vote-worker-1")

    run_with_fault(system, kill)


def test_a_paused_vote_worker_resuming_after_its_shards_moved(system: System) -> None:
    async def pause() -> None:
        await asyncio.sleep(1.0)
        worker = system.processes["vote-worker-1"]
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(6)  # the broker drops it after ~2 heartbeats: shards move
        finally:
            os.kill(worker.pid, signal.SIGCONT)

    log = system.workdir / "vote-worker-1.log"
    before = log.read_text(errors="replace").count("broker connection lost")
    run_with_fault(system, pause, ballots=500)
    # The broker did drop it while it was paused (so its shards went to the other
    # worker), and it came back by itself.
    deadline = time.monotonic() + 15
    while log.read_text(errors="replace").count("broker connection lost") == before:
        assert time.monotonic() < deadline, "the paused worker never lost its connection"
        time.sleep(0.2)
    assert system.processes["vote-worker-1"].poll() is None


def test_rabbitmq_restarted_mid_stream(system: System) -> None:
    async def restart_broker() -> None:
        await asyncio.sleep(1.5)
        await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "-q", "stop_app"], check=True)
        try:
            await asyncio.to_thread(not_ready_for_want_of, system, "broker")
        finally:
            await asyncio.to_thread(subprocess.run, ["rabbitmqctl", "-q", "start_app"],
                                    check=True)

    run_with_fault(system, restart_broker, ballots=400)
    assert httpx.get(f"{system.base}/readyz", timeout=10).status_code == 200


# --- counting by shard: tally workers come and go --------------------------------------


def test_tally_workers_scaled_one_to_four_to_two_count_as_one(system: System) -> None:
    """While ballots flow, three tally workers join the one running, then two of them
    stop: the shards move between them, each resuming from the shard's checkpoint, and
    the result is the one a single worker gives (the tally signs only if the merged
    shard counts equal its recount, and the record holds every 201's tracker)."""
    names = [f"tally-worker-{i}" for i in (2, 3, 4)]

    def logged(name: str, line: str) -> bool:
        log = system.workdir / f"{name}.log"
        return log.exists() and line in log.read_text(errors="replace")

    async def scale() -> None:
        await asyncio.sleep(1.0)
        for name in names:
            system.start_tally_worker(name)
        # All counting, and shards moved to newcomers (rendezvous hashing may leave one
        # newcomer without any: 4 workers, 8 shards).
        deadline = time.monotonic() + 30
        while not (all(logged(n, "tally worker counting") for n in names)
                   and any(logged(n, "counting shard taken") for n in names)):
            assert time.monotonic() < deadline, "the new tally workers took no shard"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        for name in names[1:]:
            system.processes[name].send_signal(signal.SIGTERM)

    run_with_fault(system, scale, ballots=900)


def test_a_tally_worker_killed_mid_stream_counts_from_its_checkpoints(system: System) -> None:
    """SIGKILL between a batch's copy writes and its checkpoint, or anywhere else: the
    worker started again counts from the checkpoints, and nothing is counted twice."""
    async def kill() -> None:
        await asyncio.sleep(1.5)
        system.processes["tally-worker-1"].send_signal(signal.SIGKILL)
        await asyncio.sleep(1.5)
        system.restart("tally-worker-1")

    run_with_fault(system, kill)


# --- the store out of reach ------------------------------------------------------------


def cassandra_unreachable(seconds: float, meanwhile: Callable[[], None] | None = None) -> None:
    """Close Cassandra's client port for ``seconds`` (``nodetool disablebinary``): every
    process loses its connections and cannot open new ones, as when the store is down,
    without the minute a restart of the node takes on this machine. ``meanwhile`` runs
    once the port is closed, within the ``seconds``."""
    nodetool = str(ROOT / "infra" / "cassandra" / "nodetool.sh")
    subprocess.run([nodetool, "disablebinary"], check=True, capture_output=True, timeout=60)
    until = time.monotonic() + seconds
    try:
        if meanwhile is not None:
            meanwhile()
        time.sleep(max(until - time.monotonic(), 0.0))
    finally:
        subprocess.run([nodetool, "enablebinary"], check=True, capture_output=True,
                       timeout=60)


def test_cassandra_unreachable_for_ten_seconds_mid_stream(system: System) -> None:
    """Ballots keep coming while the store is out of reach: clients get 503 and send
    again with their key, never a 500; every 201 is counted and the poll publishes with
    no manual step."""
    async def outage() -> None:
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cassandra_unreachable, 10,
                                lambda: not_ready_for_want_of(system, "store"))

    run_with_fault(system, outage, ballots=400, rate=40)


def not_ready_for_want_of(system: System, missing: str) -> None:
    """During an outage, ``/readyz`` answers 503 and names, for each service, what is
    missing: the ``store`` (the service answers through the broker, with its store
    driver's error) or the ``broker`` (the gateway has lost its connection)."""
    deadline = time.monotonic() + 6
    while True:
        answer = httpx.get(f"{system.base}/readyz", timeout=10)
        services = answer.json().get("services", {})
        if answer.status_code == 503 and services and all(
                s.get("missing") == missing and s["detail"] for s in services.values()):
            break
        assert answer.status_code in (200, 503), answer.text
        assert time.monotonic() < deadline, (f"/readyz did not name the {missing}", answer.text)
        time.sleep(0.3)
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "not_ready"


def drop_store_connections() -> int:
    """Reset every open client connection to Cassandra (``ss -K``), while the node stays
    up, as a network path or a load balancer dropping them would; how many."""
    listed = ["ss", "-tnH", "state", "established", "( dport = :9042 )"]
    before = subprocess.run(listed, check=True, capture_output=True, text=True).stdout
    subprocess.run(["ss", "-K", *listed[1:]], check=True, capture_output=True, timeout=30)
    return len(before.splitlines())


def test_store_connections_dropped_mid_stream(system: System) -> None:
    """Every process's store connections reset three times while ballots flow: the
    drivers reconnect within a second or two, what failed meanwhile is retried (vote
    batches, counting batches) or answered 503 and sent again, never a 500; every 201
    is counted and the poll publishes by itself."""
    async def drops() -> None:
        await asyncio.sleep(1.5)
        for _ in range(3):
            assert await asyncio.to_thread(drop_store_connections) > 0
            await asyncio.sleep(1.5)

    run_with_fault(system, drops, ballots=400)
    deadline = time.monotonic() + 15
    while httpx.get(f"{system.base}/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the connections dropped"
        time.sleep(0.5)


def test_store_connections_dropped_at_the_close(system: System) -> None:
    """The store connections reset as the organiser closes the poll, and again while
    the seal and the counting run: the poll publishes by itself."""
    def drops() -> None:
        for _ in range(3):
            drop_store_connections()
            time.sleep(0.4)

    close_through(system, drops, lead=0.1)


def close_through(system: System, outage: Callable[[], None], lead: float) -> None:
    """200 ballots, then ``outage`` (in a thread: down, and up again) starts and, ``lead``
    seconds later, the organiser closes the poll as the API asks: sent again after a 503
    until answered. The poll must publish by itself once the outage is over, with every
    201 in the record, and no request gets a 500."""
    async def scenario() -> dict[str, Any]:
        session, poll = await open_poll(system, 200)
        async with session:
            results = await stream(poll, 200, 80)
            assert {r.status for r in results} == {201}
            running = asyncio.create_task(asyncio.to_thread(outage))
            await asyncio.sleep(lead)
            statuses = []
            deadline = time.monotonic() + 120
            while True:
                status, body = await poll.run.post(f"/v1/polls/{poll.poll_id}/close", {},
                                                   poll.run.organiser)
                statuses.append(status)
                if status == 200:
                    break
                assert status == 503 and time.monotonic() < deadline, (status, body)
                await asyncio.sleep(1.0)
            await running
            while True:
                status, published = await poll.run.get(
                    f"/v1/audit/polls/{poll.poll_id}/result")
                statuses.append(status)
                if status == 200:
                    break
                assert status in (409, 503) and time.monotonic() < deadline, (status,
                                                                               published)
                await asyncio.sleep(0.5)
            assert 500 not in statuses, statuses
            record = await poll.record()
            return reconcile(poll.sends, poll.results, published, record)

    expect_all_counted(go(scenario()))


def test_cassandra_unreachable_for_ten_seconds_at_the_close(system: System) -> None:
    """The store goes out of reach as the organiser closes the poll: the close is
    answered 503 (sent again) or taken, the seal and the counting wait for the store,
    and the poll publishes by itself."""
    # nodetool starts a JVM: 2.5 s later the port is closed.
    close_through(system, lambda: cassandra_unreachable(10), lead=2.5)


def test_rabbitmq_restarted_at_the_close(system: System) -> None:
    """The broker restarts just as the organiser closes the poll: the markers, the seal
    and the last counting messages go through once it is back, and the poll publishes
    by itself."""
    def restart() -> None:
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)

    close_through(system, restart, lead=0.0)
    assert httpx.get(f"{system.base}/readyz", timeout=10).status_code == 200
