"""TLS to RabbitMQ, by setting (issue 10): ``URNE_AMQP_URL=amqps://user:pw@host:5671/vhost``.

The server's certificate is always verified (host name included), against the system's
trusted authorities, or against the one named by the URL's ``cafile`` parameter
(``amqps://…/vhost?cafile=/etc/urne/amqp-ca.pem``, aiormq's own convention, which the
gateway's client reads as is). The three AMQP clients of urne take the same URL:
pika (vote and tally workers, tools) through ``pika_parameters``, kombu (nameko's
services) through ``kombu_settings``, aio-pika (the gateway) directly.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pika

CAFILE = "cafile"


def _split(url: str) -> tuple[str, str | None]:
    """The URL without ``cafile``, and ``cafile``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    cafile = query.pop(CAFILE, [None])[0]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), cafile


def context(cafile: str | None) -> ssl.SSLContext:
    # Verifies the chain and the host name (create_default_context's defaults).
    return ssl.create_default_context(cafile=cafile)


def pika_parameters(url: str) -> pika.URLParameters:
    clean, cafile = _split(url)
    params = pika.URLParameters(clean)
    if urlsplit(clean).scheme == "amqps":
        params.ssl_options = pika.SSLOptions(context(cafile), urlsplit(clean).hostname)
    return params


def kombu_settings(url: str) -> dict[str, Any]:
    """nameko's ``AMQP_URI`` and, for ``amqps``, its ``AMQP_SSL`` (kombu's ssl options)."""
    clean, cafile = _split(url)
    if urlsplit(clean).scheme != "amqps":
        return {"AMQP_URI": clean}
    return {"AMQP_URI": clean, "AMQP_SSL": {"ca_certs": cafile, "cert_reqs": ssl.CERT_REQUIRED,
                                            "server_hostname": urlsplit(clean).hostname}}
