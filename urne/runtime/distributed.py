"""The distributed profile: ``urne service NAME`` and ``urne gateway``."""

from __future__ import annotations

import importlib
import logging


def run_service(name: str) -> None:
    # eventlet patched the standard library in urne/__main__.py, before any import.
    import eventlet

    if not eventlet.patcher.is_monkey_patched("thread"):
        raise RuntimeError("run services through the `urne` command (python -m urne)")
    from nameko.cli.run import run

    from urne.runtime.nameko_service import service_class
    from urne.shared.logging import configure_logging
    from urne.shared.metrics import serve_metrics
    from urne.shared.settings import ServiceSettings

    settings = ServiceSettings()
    configure_logging(f"urne-{name}", settings.log_level)
    core = importlib.import_module(f"services.{name}.bootstrap").distributed(settings)
    serve_metrics(settings.metrics_port, settings.metrics_host)
    config = {"AMQP_URI": settings.amqp_url, "max_workers": settings.max_workers,
              "serializer": "json"}
    logging.getLogger(__name__).info("service starting", extra={"fields": {"service": name}})
    run([service_class(core)], config)


def run_gateway(host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from gateway.app import create_app
    from gateway.clients import AmqpClient
    from urne.shared.logging import configure_logging
    from urne.shared.settings import GatewaySettings

    settings = GatewaySettings()
    configure_logging("urne-gateway", settings.log_level)
    client = AmqpClient(settings.amqp_url)
    app = create_app(client, settings.keys_dir, settings.rpc_timeout_seconds)
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, loop="uvloop",
                http="httptools", log_config=None, access_log=False)
