"""The distributed profile: ``urne service NAME`` (nameko over RabbitMQ, Cassandra
storage), ``urne vote-worker`` (the ballot shards) and ``urne gateway`` (the HTTP API
over RabbitMQ)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from cassandra.cluster import Session

from urne.messaging.kernel import RawEnvelope, RunningCore
from urne.messaging.signatures import load_signer, load_verifier
from urne.platform import heap
from urne.platform.logging import configure_logging
from urne.platform.settings import GatewaySettings, ServiceSettings
from urne.runtime.registry import SERVICES, TALLY, VOTE, ServiceSpec
from urne.services.vote.intake import coalesce
from urne.storage.cassandra import StoreUnavailable, connect_patiently, ensure_schema

log = logging.getLogger(__name__)


def open_store(spec: ServiceSpec[Any], settings: ServiceSettings) -> tuple[Any, Session]:
    """The service's store on its Cassandra keyspace (migrated), and the session to close."""
    session = connect_patiently(settings)
    try:
        keyspace = ensure_schema(session, settings, spec.name, spec.migrations.cassandra)
        return spec.cassandra_store(session, keyspace), session
    except BaseException:
        session.cluster.shutdown()
        raise


def running_core(spec: ServiceSpec[Any], settings: ServiceSettings) -> RunningCore:
    """The service's core on its Cassandra keyspace, and how to close it."""
    store, session = open_store(spec, settings)
    try:
        return RunningCore(spec.core(store, settings), session.cluster.shutdown)
    except BaseException:
        session.cluster.shutdown()
        raise


def nameko_config(settings: ServiceSettings) -> dict[str, Any]:
    from urne.messaging.amqp_tls import kombu_settings
    from urne.messaging.nameko_adapter import SETTINGS_KEY

    return {**kombu_settings(settings.amqp_url), "max_workers": settings.max_workers,
            "serializer": "json", SETTINGS_KEY: settings}


RESTART_DELAY_SECONDS = 1.0  # before a service whose container died starts again


def run_service(name: str) -> None:
    # eventlet patched the standard library in urne/__main__.py, before any import.
    import eventlet

    if not eventlet.patcher.is_monkey_patched("thread"):
        raise RuntimeError("run services through the `urne` command (python -m urne)")
    from nameko.cli.run import run

    from urne.platform.metrics import serve_metrics
    from urne.runtime.nameko_services import NAMEKO_SERVICES

    settings = ServiceSettings()
    configure_logging(f"urne-{name}", settings.log_level)
    serve_metrics(settings.metrics_port, settings.metrics_host)
    log.info("service starting", extra={"fields": {"service": name}})
    heap.settle()
    try:
        run([NAMEKO_SERVICES[name]], nameko_config(settings))
        return  # stopped: SIGTERM
    except Exception:
        # nameko kills its container when a worker fails outside the handler, e.g.
        # acking over a connection the broker just reset (a RabbitMQ restart). Start the
        # service again as a supervisor would, in a fresh process image (same pid): kombu's
        # connection and producer pools are process-wide, and a container started again
        # in this process could take a dead connection from them. Seen in CI: a restarted
        # container dying on `connection.channel()` of None, over and over, then the
        # service silent for good.
        log.exception("service container died; starting the service again",
                      extra={"fields": {"service": name}})
        eventlet.sleep(RESTART_DELAY_SECONDS)
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def run_vote_worker() -> None:
    """Consume the ballot shards until SIGTERM or SIGINT: plain threads, no eventlet."""
    import signal
    import threading

    from urne.messaging.ballot_stream import Batch, ShardWorker
    from urne.platform.metrics import serve_metrics

    settings = ServiceSettings()
    configure_logging("urne-vote-worker", settings.log_level)
    serve_metrics(settings.metrics_port, settings.metrics_host)
    assert VOTE.intake is not None
    store, session = open_store(VOTE, settings)  # the vote service's keyspace
    intake = VOTE.intake(store, settings, settings.ballot_shards)

    def handle(items: list[RawEnvelope], shards: list[int], fence: Callable[[], None]
               ) -> Batch:
        outcome = intake.record(items, shards, fence)
        return Batch(outcome.replies, outcome.events)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    heap.settle()
    try:
        ShardWorker(settings.amqp_url, settings.ballot_shards, handle,
                    counting_shards=settings.counting_shards,
                    transient=lambda exc: isinstance(exc, StoreUnavailable),
                    admit=load_verifier(settings.keys_dir, "vote-worker").admit,
                    sign=load_signer(settings.keys_dir, "vote").sign,
                    prefetch=settings.vote_worker_prefetch,
                    max_batch=settings.vote_worker_batch,
                    linger=settings.vote_worker_linger_seconds,
                    events_every=settings.vote_worker_events_every_seconds,
                    coalesce=coalesce,
                    heartbeat=settings.vote_worker_heartbeat_seconds).run(stop)
    finally:
        session.cluster.shutdown()


def run_gateway(host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from urne.gateway.app import create_app
    from urne.gateway.clients import AmqpClient
    from urne.platform.metrics import serve_metrics

    settings = GatewaySettings()
    configure_logging("urne-gateway", settings.log_level)
    client = AmqpClient(settings.amqp_url, settings.rpc_timeout_seconds,
                        replies=load_verifier(settings.keys_dir, "gateway"),
                        sign=load_signer(settings.keys_dir, "gateway").sign)
    app = create_app(client, settings.keys_dir, services=tuple(SERVICES),
                     testing=settings.is_development, metrics=settings.api_metrics)
    serve_metrics(settings.metrics_port, settings.metrics_host)
    heap.settle()
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, loop="uvloop",
                http="httptools", log_config=None, access_log=False,
                proxy_headers=True, forwarded_allow_ips=settings.trusted_proxies)


def run_tally_worker() -> None:
    """Count the counting streams this worker owns until SIGTERM or SIGINT: plain
    threads, no eventlet."""
    import signal
    import threading

    from urne.messaging.counting_rotation import StreamRotation
    from urne.messaging.counting_stream import CountingWorker
    from urne.platform.metrics import serve_metrics
    from urne.services.tally.shards import RulesUnknown, ShardCounters

    settings = ServiceSettings()
    configure_logging("urne-tally-worker", settings.log_level)
    serve_metrics(settings.metrics_port, settings.metrics_host)
    store, session = open_store(TALLY, settings)  # the tally's keyspace
    counters = ShardCounters(store, settings.counting_stream, settings.counting_shards)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    heap.settle()
    try:
        CountingWorker(settings.amqp_url, settings.counting_shards, counters,
                       transient=lambda exc: isinstance(exc, StoreUnavailable | RulesUnknown),
                       admit=load_verifier(settings.keys_dir, "tally-worker").admit,
                       heartbeat=settings.vote_worker_heartbeat_seconds,
                       rotation=StreamRotation(
                           store, settings.counting_stream, settings.counting_shards,
                           settings.counting_rotate_seconds,
                           load_signer(settings.keys_dir, "tally").sign)).run(stop)
    finally:
        session.cluster.shutdown()
