"""The nameko services of the distributed profile, tested with nameko's own tools:
``worker_factory`` for the service bodies, ``container_factory`` with
``entrypoint_hook`` / ``entrypoint_waiter`` against a real RabbitMQ and Cassandra."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock, call

import eventlet
import pika
import pytest
from kombu.exceptions import OperationalError
from nameko.events import EventHandler
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_hook, entrypoint_waiter, worker_factory

from tests.support.servers import (
    cassandra_address,
    drop_keyspaces,
    require_cassandra,
    require_rabbitmq,
)
from urne.contracts import wrap
from urne.contracts.commands import CheckHealth, GetResult
from urne.contracts.events import (
    BallotBoxClosed,
    BallotBoxSealedV2,
    BallotsRecorded,
    PollClosed,
    PollOpened,
    RecordedBallot,
)
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import generate_keys
from urne.messaging.ballot_stream import shard_queue
from urne.messaging.counting_stream import counting_shard
from urne.messaging.nameko_adapter import (
    MAX_BACKOFF_SECONDS,
    MAX_EVENT_ATTEMPTS,
    CoreProvider,
    Envelopes,
    Parking,
)
from urne.messaging.signatures import REPLY_TYPE, Signer, load_signer, load_verifier
from urne.platform.metrics import MESSAGES_REPEATED
from urne.platform.settings import EmbeddedSettings, ServiceSettings
from urne.record.canonical import ballot_set_digest
from urne.runtime.distributed import nameko_config, open_store
from urne.runtime.embedded import embedded
from urne.runtime.nameko_services import NAMEKO_SERVICES, TallyService, VoteService
from urne.runtime.registry import SERVICES, TALLY
from urne.services.tally.shards import ShardCounters
from urne.storage.cassandra import StoreUnavailable

pytestmark = pytest.mark.integration

RULES = YesNoAbstainRules(method="yes_no_abstain", question="Open the library on Sundays?")


def opened(poll_id: str) -> PollOpened:
    return PollOpened(poll_id=poll_id, consultation_id="c1", rules=RULES,
                      rules_hash=rules_hash(RULES), opened_at="2026-06-01T08:00:00Z")


def event_handlers(service_cls: type) -> dict[str, tuple[str, str]]:
    """method name -> (source service, event type) of the class's nameko event handlers."""
    found = {}
    for name in dir(service_cls):
        for entrypoint in getattr(getattr(service_cls, name), "nameko_entrypoints", ()):
            if isinstance(entrypoint, EventHandler):
                found[name] = (entrypoint.source_service, entrypoint.event_type)
    return found


# --- the classes, read as a reader would -------------------------------------------

def test_one_class_per_registered_service() -> None:
    assert set(NAMEKO_SERVICES) == set(SERVICES)
    for name, cls in NAMEKO_SERVICES.items():
        assert cls.name == name
        assert isinstance(cls.__dict__["core"], CoreProvider)


def test_each_class_listens_to_exactly_what_its_core_subscribes_to(tmp_path: Path) -> None:
    system = embedded(EmbeddedSettings(data_dir=tmp_path, environment="test"))
    for name, cls in NAMEKO_SERVICES.items():
        core = system.bus.members[name].core
        subscribed = {(e.PRODUCER, e.TYPE) for e in core.event_types}
        if name == "tally":
            # The one difference: in the distributed profile, the tally workers count the
            # recorded ballots from the counting streams, not the tally's event handler.
            assert (BallotsRecorded.PRODUCER, BallotsRecorded.TYPE) in subscribed
            subscribed.discard((BallotsRecorded.PRODUCER, BallotsRecorded.TYPE))
        handlers = event_handlers(cls)
        assert set(handlers.values()) == subscribed, name
        # Named for what they handle, so a reader finds them.
        for method, (_, event_type) in handlers.items():
            assert method == "on_" + event_type.removesuffix(".v1").replace(".", "_"), method
    system.close()


# --- the service bodies, with worker_factory ----------------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys")
    generate_keys(path)
    return path


def signer(keys: Path, role: str) -> Signer:
    return load_signer(keys, role)


def trust(keys: Path, service: str) -> Envelopes:
    return Envelopes(load_signer(keys, service), load_verifier(keys, service))


def test_handle_returns_the_reply_and_dispatches_the_events_signed_in_order(keys: Path) -> None:
    service = worker_factory(VoteService, trust=trust(keys, "vote"))
    events = [{"type": "ballot_box.closed.v1", "id": "e1", "producer": "vote"},
              {"type": "ballot_box.closed.v1", "id": "e2", "producer": "vote"}]
    service.core.handle.return_value = ({"ok": True, "data": {"x": 1}}, events)
    service.core.name = "vote"
    command = signer(keys, "gateway").sign({"type": "poll.close.v1", "producer": "gateway",
                                             "id": "c1"})
    # Signed by the service, naming the request it answers (the gateway checks both).
    reply = load_verifier(keys, "gateway").answer(service.handle(command), "vote", REPLY_TYPE)
    assert (reply["reply"], reply["in_reply_to"]) == ({"ok": True, "data": {"x": 1}}, "c1")
    service.core.handle.assert_called_once_with(command)
    vote = signer(keys, "vote")
    assert service.dispatch.call_args_list == [
        call("ballot_box.closed.v1", vote.sign(e)) for e in events]


def test_events_not_published_after_a_command_are_a_signed_503(keys: Path) -> None:
    """The command's writes are done, its events not confirmed (the broker went away
    meanwhile): the gateway gets a signed "not now", never an unsigned error."""
    service = worker_factory(VoteService, trust=trust(keys, "vote"))
    service.core.name = "vote"
    service.core.handle.return_value = ({"ok": True, "data": {}}, [
        {"type": "ballot_box.closed.v1", "id": "e1", "producer": "vote"}])
    service.dispatch.side_effect = ConnectionError("broker away")
    command = signer(keys, "gateway").sign({"type": "poll.close.v1", "producer": "gateway",
                                             "id": "c2"})
    reply = load_verifier(keys, "gateway").answer(service.handle(command), "vote", REPLY_TYPE)
    assert reply["in_reply_to"] == "c2"
    error = reply["reply"]["error"]
    assert (reply["reply"]["ok"], error["code"], error["status"]) == (
        False, "service_unavailable", 503)


def test_a_refused_command_dispatches_nothing(keys: Path) -> None:
    service = worker_factory(VoteService, trust=trust(keys, "vote"))
    service.core.handle.return_value = ({"ok": False, "error": {"code": "poll_closed"}}, [])
    command = signer(keys, "gateway").sign({"type": "poll.close.v1", "producer": "gateway"})
    assert service.handle(command)["reply"]["ok"] is False
    service.dispatch.assert_not_called()


@pytest.mark.parametrize(("sender", "reason"), [(None, "unsigned"), ("vote", "not_allowed")])
def test_a_command_not_signed_by_the_gateway_is_parked_and_never_run(
        keys: Path, sender: str | None, reason: str) -> None:
    publish = Mock()
    service = worker_factory(VoteService, trust=trust(keys, "vote"),
                             dead_letters=Parking("vote", Counter(), publish))
    command = {"type": "poll.close.v1", "producer": sender or "gateway", "id": "c1"}
    if sender:
        command = signer(keys, sender).sign(command)
    # The refusal is a signed reply too.
    reply = load_verifier(keys, "gateway").answer(service.handle(command), "vote",
                                                  REPLY_TYPE)["reply"]
    assert (reply["ok"], reply["error"]["code"], reply["error"]["status"]) == (
        False, "message_refused", 403)
    service.core.handle.assert_not_called()
    [(parked,), _] = publish.call_args
    assert (parked["reason"], parked["envelope"], parked["attempts"]) == (reason, command, 1)


def test_an_event_handler_publishes_what_the_core_emitted(keys: Path) -> None:
    service = worker_factory(VoteService, trust=trust(keys, "vote"))
    seal = {"type": "ballot_box.sealed.v1", "id": "s1", "producer": "vote"}
    service.core.on_event.return_value = [seal]
    service.core.name = "vote"
    envelope = signer(keys, "proposal").sign(
        wrap(PollClosed(poll_id="p1", closed_at="2026-06-02T08:00:00Z"), "proposal"))
    service.on_poll_closed(envelope)
    service.core.on_event.assert_called_once_with(envelope)
    service.dispatch.assert_called_once_with("ballot_box.sealed.v1",
                                             signer(keys, "vote").sign(seal))


def test_an_event_handled_to_the_end_is_passed_over_when_it_comes_again(keys: Path) -> None:
    """A replayed (or redelivered) event this process handled already is refused by its
    consumer: its handler does not run again, nothing is published again; it is counted
    as repeated, and no alarm (not parked). An event whose first handling failed is not
    "handled": it runs again."""
    publish = Mock()
    service = worker_factory(VoteService, trust=trust(keys, "vote"),
                             dead_letters=Parking("vote", Counter(), publish))
    service.core.name = "vote"
    service.core.on_event.return_value = [{"type": "ballot_box.sealed.v1", "id": "s1",
                                           "producer": "vote"}]
    proposal = signer(keys, "proposal")
    closed, other = (proposal.sign(wrap(PollClosed(poll_id=poll, closed_at="2026-06-02T08:00:00Z"),
                                        "proposal")) for poll in ("p1", "p2"))
    repeats = MESSAGES_REPEATED.labels("vote", PollClosed.TYPE)
    before = repeats._value.get()
    service.on_poll_closed(closed)
    service.on_poll_closed(closed)  # the replay
    assert service.core.on_event.call_count == 1 and service.dispatch.call_count == 1
    assert repeats._value.get() == before + 1
    publish.assert_not_called()  # nothing parked
    # A first handling that failed leaves the event to be handled again.
    service.core.on_event.side_effect = [RuntimeError("store away"), []]
    with pytest.raises(RuntimeError):
        service.on_poll_closed(other)
    service.on_poll_closed(other)  # its redelivery
    assert service.core.on_event.call_count == 3


def test_an_event_its_producer_did_not_sign_is_parked_at_once(keys: Path) -> None:
    publish = Mock()
    service = worker_factory(VoteService, trust=trust(keys, "vote"),
                             dead_letters=Parking("vote", Counter(), publish))
    forged = signer(keys, "gateway").sign(
        wrap(PollClosed(poll_id="p1", closed_at="2026-06-02T08:00:00Z"), "gateway"))
    service.on_poll_closed(forged)  # returns: acked, never requeued
    service.core.on_event.assert_not_called()
    [(parked,), _] = publish.call_args
    assert (parked["reason"], parked["error_type"]) == ("not_allowed", "Refused")


def test_a_failing_event_is_requeued_then_parked_with_its_error() -> None:
    publish = Mock()
    service = worker_factory(TallyService, dead_letters=Parking("tally", Counter(), publish))
    service.core.on_event.side_effect = RuntimeError("store down")
    envelope = wrap(opened("p1"), "proposal")
    for _ in range(MAX_EVENT_ATTEMPTS - 1):
        with pytest.raises(RuntimeError):  # raising makes nameko requeue it
            service.on_poll_opened(envelope)
    publish.assert_not_called()
    service.on_poll_opened(envelope)  # the last attempt: parked, so acked
    [(parked,), _] = publish.call_args
    assert parked == {"service": "tally", "error_type": "RuntimeError", "error": "store down",
                      "attempts": MAX_EVENT_ATTEMPTS, "envelope": envelope}
    with pytest.raises(RuntimeError):  # a new delivery starts counting afresh
        service.on_poll_opened(envelope)


@pytest.mark.parametrize("away", [
    StoreUnavailable("the store did not answer"),
    # The handler's writes done, its events not published: the broker went away.
    OperationalError("[Errno 104] Connection reset by peer"),
], ids=["store", "broker"])
def test_a_store_or_broker_that_does_not_answer_delays_an_event_and_never_parks_it(
        away: Exception) -> None:
    publish, slept = Mock(), []
    service = worker_factory(TallyService, dead_letters=Parking(
        "tally", Counter(), publish, sleep=slept.append))
    service.core.on_event.side_effect = away
    envelope = wrap(opened("p1"), "proposal")
    for _ in range(3 * MAX_EVENT_ATTEMPTS):
        with pytest.raises(type(away)):  # requeued, every time
            service.on_poll_opened(envelope)
    publish.assert_not_called()
    assert slept[:4] == [0.25, 0.5, 1.0, 2.0] and max(slept) == MAX_BACKOFF_SECONDS
    service.core.on_event.side_effect = RuntimeError("a real failure")
    with pytest.raises(RuntimeError):  # counted from 1: the waits were not attempts
        service.on_poll_opened(envelope)
    publish.assert_not_called()


def test_a_success_forgets_earlier_failures() -> None:
    publish = Mock()
    service = worker_factory(TallyService, dead_letters=Parking("tally", Counter(), publish))
    envelope = wrap(opened("p1"), "proposal")
    service.core.on_event.side_effect = RuntimeError("blip")
    for _ in range(MAX_EVENT_ATTEMPTS - 1):
        with pytest.raises(RuntimeError):
            service.on_poll_opened(envelope)
    service.core.on_event.side_effect = None
    service.core.on_event.return_value = []
    service.on_poll_opened(envelope)
    service.core.on_event.side_effect = RuntimeError("another blip")
    with pytest.raises(RuntimeError):  # attempt 1 again, not attempt 5
        service.on_poll_opened(envelope)
    publish.assert_not_called()


# --- running containers, on a real RabbitMQ and Cassandra ---------------------------

@pytest.fixture(scope="module")
def keyspace_prefix() -> Iterator[str]:
    require_cassandra()
    prefix = f"nk_{uuid.uuid4().hex[:8]}_"
    yield prefix
    drop_keyspaces(prefix)


@pytest.fixture
def urne_config(rabbit_config: dict[str, Any], keyspace_prefix: str,
                tmp_path: Path) -> dict[str, Any]:
    """nameko's config for a test: its own RabbitMQ vhost (nameko's ``rabbit_config``),
    the run's Cassandra keyspaces, keys in a temporary folder."""
    require_rabbitmq()
    generate_keys(tmp_path / "keys")
    host, port = cassandra_address()
    # nameko's fixture names the scheme for kombu (pyamqp://); urne's URL is plain AMQP.
    amqp_url = "amqp://" + rabbit_config["AMQP_URI"].split("://", 1)[1]
    settings = ServiceSettings(
        environment="test", amqp_url=amqp_url, cassandra_hosts=host, cassandra_port=port,
        cassandra_keyspace_prefix=keyspace_prefix, keys_dir=tmp_path / "keys",
        outbox_dir=tmp_path / "outbox", ballot_shards=4, counting_shards=2)
    return nameko_config(settings)


@pytest.mark.distributed
def test_events_and_rpc_flow_through_real_containers(container_factory: Any,
                                                     urne_config: dict[str, Any]) -> None:
    vote = container_factory(VoteService, urne_config)
    tally = container_factory(TallyService, urne_config)
    vote.start()
    tally.start()
    poll_id = uuid.uuid4().hex
    keys = urne_config["URNE_SETTINGS"].keys_dir
    proposal, vote_key = signer(keys, "proposal"), signer(keys, "vote")
    standalone = event_dispatcher(urne_config)

    def dispatch(service: str, event_type: str, envelope: dict[str, Any]) -> None:
        standalone(service, event_type, {"proposal": proposal, "vote": vote_key}[service].sign(
            envelope))

    # poll.opened from the proposal service reaches both subscribers.
    with entrypoint_waiter(vote, "on_poll_opened"), entrypoint_waiter(tally, "on_poll_opened"):
        dispatch("proposal", PollOpened.TYPE, wrap(opened(poll_id), "proposal"))

    # A batch of recorded ballots, counted as a tally worker counts its shard's stream
    # (the stream itself is exercised end to end), then the seal, to the container.
    ballot = RecordedBallot(poll_id=poll_id, ballot_id="b" * 32, tracker="AAAA-BBBB-CCCC",
                            voter_key="ab" * 32, sequence=1, choice={"answer": "yes"},
                            channel="online", recorded_at="2026-06-01T09:00:00Z")
    settings: ServiceSettings = urne_config["URNE_SETTINGS"]
    store, session = open_store(TALLY, settings)
    try:
        counters = ShardCounters(store, settings.counting_stream, settings.counting_shards)
        shard = counting_shard(ballot.voter_key, settings.counting_shards)
        offset = counters.take(shard)
        recorded = wrap(BallotsRecorded(ballots=[ballot], shard=shard), "vote")
        assert counters.apply({shard: [(offset, recorded)]}) == set()
    finally:
        session.cluster.shutdown()
    seal = BallotBoxSealedV2(poll_id=poll_id, ballots_recorded=1,
                           ballots_digest=ballot_set_digest(["b" * 32]),
                           sealed_at="2026-06-01T10:00:00Z")
    with entrypoint_waiter(tally, "on_ballot_box_sealed_v2"):
        dispatch("vote", BallotBoxSealedV2.TYPE, wrap(seal, "vote"))
    # The proposal service's close: with the seal, what signing needs.
    with entrypoint_waiter(tally, "on_poll_closed"):
        dispatch("proposal", PollClosed.TYPE, wrap(
            PollClosed(poll_id=poll_id, closed_at="2026-06-01T10:00:00Z"), "proposal"))

    deadline = time.monotonic() + 30  # the seal's handler, or the check every second
    while True:
        with entrypoint_hook(tally, "handle") as handle:
            result = handle(signer(keys, "gateway").sign(wrap(GetResult(poll_id=poll_id),
                                                              "gateway")))["reply"]
        if result["ok"] or time.monotonic() > deadline:
            break
        eventlet.sleep(0.2)
    assert result["ok"] is True, result
    assert result["data"]["result"]["tally"]["counts"] == {"yes": 1, "no": 0, "abstain": 0}

    with entrypoint_hook(vote, "handle") as handle:
        health = handle(signer(keys, "gateway").sign(wrap(CheckHealth(), "gateway")))["reply"]
    assert health == {"ok": True, "data": {"service": "vote", "ready": True, "detail": ""}}


@pytest.mark.distributed
def test_a_closed_poll_sends_its_marker_into_every_ballot_shard(
        container_factory: Any, urne_config: dict[str, Any]) -> None:
    """The vote service declares the shard queues when it starts (no worker needed), so
    the close marker it emits lands in every one of them."""
    vote = container_factory(VoteService, urne_config)
    vote.start()
    poll_id = uuid.uuid4().hex
    with entrypoint_waiter(vote, "on_poll_closed"):
        event_dispatcher(urne_config)("proposal", PollClosed.TYPE, signer(
            urne_config["URNE_SETTINGS"].keys_dir, "proposal").sign(wrap(
                PollClosed(poll_id=poll_id, closed_at="2026-06-02T08:00:00Z"), "proposal")))
    settings: ServiceSettings = urne_config["URNE_SETTINGS"]
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        for shard in range(settings.ballot_shards):
            method, _, body = channel.basic_get(shard_queue(shard), auto_ack=True)
            assert method is not None, f"no marker in shard {shard}"
            marker = json.loads(body)
            assert (marker["type"], marker["payload"]["poll_id"]) == (BallotBoxClosed.TYPE,
                                                                      poll_id)
    finally:
        connection.close()


@pytest.mark.distributed
def test_stopping_a_container_closes_its_cassandra_session(container_factory: Any,
                                                          urne_config: dict[str, Any]) -> None:
    container = container_factory(VoteService, urne_config)
    container.start()
    [provider] = [d for d in container.dependencies if isinstance(d, CoreProvider)]
    assert provider.running is not None
    cluster = provider.running.close.__self__  # session.cluster.shutdown
    assert not cluster.is_shutdown
    container.stop()
    assert cluster.is_shutdown
    assert provider.running is None


def test_a_container_that_died_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """nameko kills a container when a worker fails outside its handler (an ack over a
    connection the broker just reset): the service starts again, in a fresh process
    image with the same command line (no pooled connection survives), instead of
    exiting; a container stopped by SIGTERM is not restarted."""
    import os
    import sys

    import nameko.cli.run

    from urne.runtime import distributed

    runs: list[list[type]] = []
    execs: list[tuple[str, list[str]]] = []

    def run(services: list[type], config: dict[str, Any]) -> None:
        runs.append(services)
        if len(runs) == 1:
            raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(nameko.cli.run, "run", run)
    monkeypatch.setattr(distributed, "RESTART_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(os, "execv", lambda path, args: execs.append((path, args)))
    monkeypatch.setattr(sys, "orig_argv", ["python3", "-m", "urne", "service", "tally"])
    distributed.run_service("tally")  # dies: the process image is replaced
    assert execs == [(sys.executable, [sys.executable, "-m", "urne", "service", "tally"])]
    distributed.run_service("tally")  # the fresh image runs it; SIGTERM stops it
    assert [s[0].name for s in runs] == ["tally", "tally"] and len(execs) == 1
