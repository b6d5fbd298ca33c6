"""Sends sign-in codes by SMS through a provider's HTTP API: ``URNE_SMS_URL``,
``URNE_SMS_TOKEN`` and ``URNE_SMS_FROM``.

The wire contract, for whoever writes the relay to their SMS provider:

- ``POST <URNE_SMS_URL>``, one request per code. ``https://`` only, the certificate
  checked (chain and host name) against the system's authorities; ``http://`` only to
  a loopback host (``127.0.0.1`` or the rest of 127/8, ``::1``, ``localhost``): a relay
  on the same machine.
- Headers: ``Content-Type: application/json``; ``Authorization: Bearer <URNE_SMS_TOKEN>``
  unless the token is empty (then no ``Authorization`` at all); ``Idempotency-Key: <32
  hex digits>``, new for each code: the same key twice is the same SMS, send it once.
- Body: ``{"to": "+33612345678", "from": "<URNE_SMS_FROM>", "text": "<message>"}`` --
  ``to`` as the identity service holds it (E.164), ``text`` at most 160 characters of
  the GSM 03.38 basic alphabet: one SMS segment.
- Any 2xx: sent (whatever the response body says). 400 or 422: the provider refuses this
  number; the person is told, and retrying will not help. Anything else (3xx included:
  redirects are not followed), no connection, or 10 seconds without progress (to
  connect, to send, or between bytes of the answer): not sent now; the person is asked
  to try again in a moment.

One request per code, no retry here: a town's sign-ins do not outrun that, and the
person asking again gets a new code anyway.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from urllib.parse import urlsplit

import httpx

from urne.platform.errors import Busy, Invalid
from urne.platform.logging import log_fields

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
# Pure GSM 03.38, and kept to plain ASCII letters to be sure ("é" is in the alphabet,
# "ê", "ç" and the typographic apostrophe are not): one character outside it and the
# whole SMS goes out as UCS-2, whose segments hold 70 characters, not 160 -- two billed
# SMS for one code.
TEXT = ("urne : votre code est {code} (valable {minutes} min). "
        "Your urne code is {code} (valid {minutes} min).")
REFUSED = (400, 422)
DETAIL_CHARS = 300
LONG_DIGITS = re.compile(r"\d{6,}")


def check_url(url: str) -> str:
    """The provider's URL if it is https://, or http:// to this machine; else ValueError."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:  # "http://[::1" and the like
        raise ValueError(f"URNE_SMS_URL is not a URL: {exc}") from None
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and is_loopback(host):
        return url
    raise ValueError(f"URNE_SMS_URL must be https://host/... (http:// only to 127.0.0.1, "
                     f"::1 or localhost), not {parts.scheme or '?'}://{host or '?'}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scrub(text: str, *secrets: str) -> str:
    """``text`` without the code, the number or the token, for a log line: some
    providers echo the request in their error bodies. Long runs of digits go too,
    whatever the format the provider wrote the number in."""
    # The secrets first, whole: a token with a run of digits in it must not be cut into
    # pieces the literal replacement would no longer find.
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return LONG_DIGITS.sub("***", text)[:DETAIL_CHARS]


class HttpSmsSender:
    def __init__(self, url: str, token: str, sender: str, *,
                 timeout: float = TIMEOUT_SECONDS):
        if not sender:
            raise ValueError("URNE_SMS_FROM must name the sender of sign-in codes "
                             "(a sender name or number the SMS provider accepts)")
        self.url = check_url(url)
        self.host = urlsplit(url).hostname or ""
        self.sender = sender
        self._token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # One client for the life of the service: its connections are kept and reused.
        # Synchronous on purpose: an eventlet process (monkey-patched sockets) runs it too.
        self.client = httpx.Client(headers=headers, timeout=timeout, follow_redirects=False)

    def text(self, code: str, expires_in: int) -> str:
        return TEXT.format(code=code, minutes=max(1, expires_in // 60))

    def send(self, to: str, code: str, expires_in: int) -> None:
        body = {"to": to, "from": self.sender, "text": self.text(code, expires_in)}
        # One key per code: a relay or proxy that replays the request after a timeout
        # does not make a provider that honours the key send the SMS twice.
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        try:
            response = self.client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:  # timeouts, refused connections, TLS failures
            self._not_sent(error=type(exc).__name__, detail=self._scrub(str(exc), to, code))
            raise self._busy() from exc
        if response.is_success:
            return
        if response.status_code in REFUSED:
            # The provider will not send to this number: retrying will not help.
            raise Invalid("the SMS provider refused this number", code="phone_refused")
        self._not_sent(status=response.status_code,
                       detail=self._scrub(response.text[:4 * DETAIL_CHARS], to, code))
        raise self._busy()

    def close(self) -> None:
        self.client.close()

    def _scrub(self, text: str, to: str, code: str) -> str:
        return scrub(text, to, to.lstrip("+"), code, self._token)

    def _not_sent(self, **fields: object) -> None:
        log.warning("sign-in code not sent", extra=log_fields(sms_host=self.host, **fields))

    @staticmethod
    def _busy() -> Busy:
        return Busy("the sign-in code could not be sent; try again in a moment",
                    code="code_not_sent")
