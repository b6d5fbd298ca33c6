"""The distributed profile: ``urne service NAME`` (nameko over RabbitMQ, Cassandra
storage) and ``urne gateway`` (the HTTP API over RabbitMQ)."""

from __future__ import annotations

import logging
from typing import Any

from urne.messaging.nameko_adapter import SETTINGS_KEY, RunningCore
from urne.platform.logging import configure_logging
from urne.platform.settings import GatewaySettings, ServiceSettings
from urne.runtime.registry import SERVICES, ServiceSpec
from urne.storage.cassandra import connect, ensure_schema

log = logging.getLogger(__name__)


def running_core(spec: ServiceSpec[Any], settings: ServiceSettings) -> RunningCore:
    """The service's core on its Cassandra keyspace (migrated), and how to close it."""
    session = connect(settings)
    try:
        keyspace = ensure_schema(session, settings, spec.name, spec.migrations.cassandra)
        core = spec.core(spec.cassandra_store(session, keyspace), settings)
    except BaseException:
        session.cluster.shutdown()
        raise
    return RunningCore(core, session.cluster.shutdown)


def nameko_config(settings: ServiceSettings) -> dict[str, Any]:
    return {"AMQP_URI": settings.amqp_url, "max_workers": settings.max_workers,
            "serializer": "json", SETTINGS_KEY: settings}


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
    run([NAMEKO_SERVICES[name]], nameko_config(settings))


def run_gateway(host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from urne.gateway.app import create_app
    from urne.gateway.clients import AmqpClient

    settings = GatewaySettings()
    configure_logging("urne-gateway", settings.log_level)
    client = AmqpClient(settings.amqp_url, settings.rpc_timeout_seconds)
    app = create_app(client, settings.keys_dir, services=tuple(SERVICES))
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, loop="uvloop",
                http="httptools", log_config=None, access_log=False)
