"""TLS to Cassandra, by setting (issue 10): ``URNE_CASSANDRA_TLS_CAFILE=/etc/urne/ca.pem``.

Set, every connection of the process is TLS: the node's certificate must chain to an
authority of that file and name the address the driver connects to (the contact point
as written, or the address a node gives for itself: give the nodes' certificates their
IP addresses too). Both checks are the standard library's (``create_default_context``).

The services run the driver on eventlet, whose reactor does TLS through pyOpenSSL only,
and then compares the certificate's common name with the address, ignoring its
alternative names. ``green_connection_class`` is that reactor with the standard
library's TLS instead (eventlet's green ``ssl``), so one ``ssl.SSLContext`` serves both
reactors, the threads' (vote and tally workers, tools) and eventlet's (services), with
the same checks, and no second TLS library is needed.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

from urne.platform.settings import StoreSettings

# The driver's error for a refused certificate is a plain OSError carrying the message.
UNTRUSTED = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")


def tls_context(settings: StoreSettings) -> ssl.SSLContext | None:
    """The context for ``Cluster(ssl_context=...)``; None for plain CQL."""
    if not settings.cassandra_tls_cafile:
        return None
    # Verifies the chain and the host name; TLS 1.2 at least (the defaults).
    return ssl.create_default_context(cafile=settings.cassandra_tls_cafile)


def untrusted(errors: dict[Any, Any]) -> bool:
    """Whether every node refused was refused for its certificate (a setting to fix)."""
    return bool(errors) and all(any(mark in str(e) for mark in UNTRUSTED)
                                for e in errors.values())


@functools.cache
def green_connection_class() -> type:
    """The driver's eventlet reactor, doing TLS with eventlet's green standard ``ssl``."""
    from cassandra.io.eventletreactor import EventletConnection
    from eventlet.green.ssl import GreenSSLContext

    class GreenConnection(EventletConnection):
        def _wrap_socket_from_context(self) -> Any:
            # A green TLS socket over the green socket, whatever class the context is.
            # server_hostname: SNI, and the name the certificate must carry.
            name = (self.ssl_options or {}).get("server_hostname") or self.endpoint.address
            return GreenSSLContext.wrap_socket(self.ssl_context, self._socket,
                                               server_hostname=name)

        def _initiate_connection(self, sockaddr: Any) -> None:
            # connect() makes the handshake (do_handshake_on_connect); the parent's
            # pyOpenSSL-only path would make it again.
            self._socket.connect(sockaddr)

    return GreenConnection
