"""Least privilege on a real RabbitMQ: each role's user does what its process does (the
same declarations, through the same code) and is refused what it must not do, above
all publishing another service's events (issue 10). The nameko services' own
declarations run under these users in the distributed end-to-end suite."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from pika.exceptions import ChannelClosedByBroker
from typer.testing import CliRunner

from tests.integration.conftest import GUEST, MANAGEMENT
from tests.support.servers import require_rabbitmq
from urne.messaging.amqp_rpc import AmqpRpcClient
from urne.messaging.ballot_stream import (
    DEAD_LETTERS,
    WORKERS_EXCHANGE,
    declare_topology,
)
from urne.messaging.counting_rotation import StreamRotation
from urne.messaging.counting_stream import (
    COUNTING_EXCHANGE,
    TALLY_WORKERS_EXCHANGE,
    declare_counting,
    position_of,
)
from urne.messaging.membership import Membership
from urne.messaging.permissions import ROLES, Role, grant
from urne.messaging.signatures import Verifier
from urne.runtime.cli import app
from urne.runtime.registry import SERVICES
from urne.storage.sqlite import SqliteDb

pytestmark = pytest.mark.integration

EVENTS = ("identity.events", "proposal.events", "vote.events", "tally.events")


@pytest.fixture(scope="module")
def users() -> Iterator[dict[Role, str]]:
    """A virtual host with one user per role; the AMQP URL of each."""
    require_rabbitmq()
    run = uuid.uuid4().hex[:8]
    vhost = f"urne-perm-{run}"
    httpx.put(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST).raise_for_status()
    urls: dict[Role, str] = {}
    for role in ROLES:
        user, password = f"urne-{run}-{role}", secrets.token_urlsafe(16)
        grant(MANAGEMENT.removesuffix("/api"), vhost, role, user, password, GUEST)
        urls[role] = f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}"
    # The exchanges a publish goes to exist (as the services would have declared them).
    admin = f"{MANAGEMENT}/exchanges/{vhost}"
    httpx.put(f"{MANAGEMENT}/permissions/{vhost}/guest", auth=GUEST,
              json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    for name, kind in [*((e, "topic") for e in EVENTS), ("nameko-rpc", "topic"),
                       (COUNTING_EXCHANGE, "direct"), (DEAD_LETTERS, "fanout")]:
        httpx.put(f"{admin}/{name}", auth=GUEST,
                  json={"type": kind, "durable": True}).raise_for_status()
    yield urls
    for role in ROLES:
        httpx.delete(f"{MANAGEMENT}/users/urne-{run}-{role}", auth=GUEST)
    httpx.delete(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST)


def may_publish(url: str, exchange: str, routing_key: str = "x") -> bool:
    """Whether the broker takes a publish with confirms to ``exchange`` from this user."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            channel.basic_publish(exchange, routing_key, b"{}", mandatory=False)
        except ChannelClosedByBroker as exc:
            assert exc.reply_code == 403, exc  # ACCESS_REFUSED, nothing else
            return False
        return True
    finally:
        connection.close()


def run_as(url: str, work: Callable[[Any], object]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        work(connection.channel())
    finally:
        connection.close()


def test_the_gateway_cannot_publish_any_service_event(users: dict[Role, str]) -> None:
    gateway = users["gateway"]
    for exchange in (*EVENTS, COUNTING_EXCHANGE, DEAD_LETTERS):
        assert not may_publish(gateway, exchange), exchange
    assert may_publish(gateway, "nameko-rpc", "vote.handle")


def test_each_service_publishes_its_own_events_only(users: dict[Role, str]) -> None:
    for service in ("identity", "proposal", "vote", "tally"):
        for exchange in EVENTS:
            assert may_publish(users[service], exchange) == (exchange == f"{service}.events"), \
                (service, exchange)
    # Recorded ballots go to the counting streams from the vote service's side, and the
    # markers that end a generation from the tally workers' (each checked by its reader
    # for its producer's signature: a tally worker's ballots.recorded is refused).
    assert may_publish(users["vote"], COUNTING_EXCHANGE, "000")
    assert may_publish(users["vote-worker"], COUNTING_EXCHANGE, "000")
    assert may_publish(users["tally-worker"], COUNTING_EXCHANGE, "000")
    for role in ("gateway", "identity", "proposal", "tally"):
        assert not may_publish(users[role], COUNTING_EXCHANGE, "000"), role


def test_the_workers_publish_what_their_service_does_and_nothing_else(
        users: dict[Role, str]) -> None:
    assert may_publish(users["vote-worker"], "vote.events")
    assert may_publish(users["vote-worker"], "nameko-rpc", "reply-key")  # ballot replies
    for exchange in ("identity.events", "proposal.events", "tally.events"):
        assert not may_publish(users["vote-worker"], exchange), exchange
    for exchange in (*EVENTS, "nameko-rpc"):
        assert not may_publish(users["tally-worker"], exchange), exchange
    # ...but it parks what it refuses (a message the vote service did not sign).
    assert may_publish(users["tally-worker"], DEAD_LETTERS)


def test_each_role_declares_and_consumes_what_its_process_does(
        users: dict[Role, str], tmp_path: Path) -> None:
    # The vote service and its workers: the ballot shard queues, the counting streams,
    # the dead letters; the workers' pools.
    run_as(users["vote"], lambda ch: declare_topology(ch, 4, 2))
    run_as(users["vote-worker"], lambda ch: declare_topology(ch, 4, 2))
    run_as(users["vote-worker"], lambda ch: Membership("w1").join(ch, WORKERS_EXCHANGE))
    run_as(users["vote-worker"],
           lambda ch: ch.basic_consume("urne.ballots.shard-003", lambda *a: None))
    run_as(users["tally-worker"], lambda ch: declare_counting(ch, 2))
    run_as(users["tally-worker"], lambda ch: Membership("t1").join(ch, TALLY_WORKERS_EXCHANGE))
    run_as(users["tally-worker"], lambda ch: (
        ch.basic_qos(prefetch_count=10),
        ch.basic_consume("urne.counting.shard-001", lambda *a: None,
                         arguments={"x-stream-offset": "first"})))
    # A whole rotation of the counting streams, as the tally worker owning shard 0 runs
    # it: the next generation declared and bound, its markers published, the old one
    # unbound, then deleted once counted past.
    store = SERVICES["tally"].sqlite_store(SqliteDb(tmp_path / "tally.db",
                                                    SERVICES["tally"].migrations.sqlite))
    rotation = StreamRotation(store, "perm", 2, every=1, sign=lambda env: env, settle=0)
    connection = pika.BlockingConnection(pika.URLParameters(users["tally-worker"]))
    try:
        rotation.tick(connection)  # the first generation recorded, and marked bound
        store.open_generation("perm", 1, datetime.now(UTC))
        rotation.tick(connection)  # bound, then (nothing to settle) marked and unbound
        assert store.generations("perm")[-1].bound
        store.save_checkpoints("perm", [(s, 0, position_of(1), {}) for s in range(2)])
        rotation.tick(connection)  # delete
        assert [g.generation for g in store.generations("perm")] == [1]
    finally:
        connection.close()
    # The gateway: its RPC exchange, the ballot exchange, its reply queue.
    async def gateway() -> None:
        client = AmqpRpcClient(users["gateway"], Verifier({}, "test"))
        await client.connect()
        await client.close()

    asyncio.run(gateway())


def test_only_the_workers_consume_the_ballots_and_the_counting_streams(
        users: dict[Role, str]) -> None:
    def consume(queue: str) -> Callable[[Any], None]:
        return lambda ch: ch.basic_consume(queue, lambda *a: None)

    run_as(users["vote"], lambda ch: declare_topology(ch, 4, 2))
    for role in ("gateway", "identity", "proposal", "vote", "tally", "tally-worker"):
        with pytest.raises(ChannelClosedByBroker) as refused:
            run_as(users[role], consume("urne.ballots.shard-000"))
        assert refused.value.reply_code == 403, role
    for role in ("gateway", "identity", "proposal", "vote", "tally", "vote-worker"):
        with pytest.raises(ChannelClosedByBroker) as refused:
            run_as(users[role], consume("urne.counting.shard-000"))
        assert refused.value.reply_code == 403, role
    with pytest.raises(ChannelClosedByBroker):  # what was set aside, and why
        run_as(users["gateway"], consume(DEAD_LETTERS))


def test_urne_broker_users_makes_a_user_per_role() -> None:
    """The operator's command: each role's user, its password from the environment or
    generated and printed, with its role's permissions."""
    require_rabbitmq()
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"urne-users-{run}", f"t{run}-"
    httpx.put(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST).raise_for_status()
    httpx.put(f"{MANAGEMENT}/exchanges/{vhost}/vote.events", auth=GUEST,
              json={"type": "topic", "durable": True}).raise_for_status()
    try:
        made = CliRunner().invoke(app, ["broker", "users", "http://guest:guest@127.0.0.1:15672",
                                        "--vhost", vhost, "--prefix", prefix],
                                  env={"URNE_BROKER_PASSWORD_GATEWAY": "gw-secret"})
        assert made.exit_code == 0, made.output
        urls = dict(line.split(": URNE_AMQP_URL=", 1) for line in made.output.splitlines())
        assert set(urls) == set(ROLES)
        # A password from the environment is not printed, only its variable.
        assert "gw-secret" not in made.output
        assert urls["gateway"] == (f"amqp://{prefix}gateway:${{URNE_BROKER_PASSWORD_GATEWAY}}"
                                   f"@127.0.0.1:5672/{vhost}")
        gateway = urls["gateway"].replace("${URNE_BROKER_PASSWORD_GATEWAY}", "gw-secret")
        assert not may_publish(gateway, "vote.events")
        assert may_publish(urls["vote"], "vote.events")
    finally:
        for role in ROLES:
            httpx.delete(f"{MANAGEMENT}/users/{prefix}{role}", auth=GUEST)
        httpx.delete(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST)
