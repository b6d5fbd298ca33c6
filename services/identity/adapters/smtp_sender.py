"""Sends sign-in codes by e-mail over SMTP: ``URNE_SMTP_URL`` and ``URNE_MAIL_FROM``.

``smtp://user:password@host:587`` speaks STARTTLS and refuses to go on without it;
``smtps://host:465`` is TLS from the first byte; ``smtp://host:25?tls=off`` is plain
SMTP, for a relay on the same machine or network: it takes no user or password (they
would cross the network in clear), and a relay not on this machine is named in a
warning at start, since its codes cross the network readable. The server's certificate is checked
(chain and host name) against the system's authorities, or the file named by
``?cafile=``. The standard library does the work (``smtplib``, ``email``): one
connection per code, which a town's sign-ins do not outrun.
"""

from __future__ import annotations

import ipaddress
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from urne.platform.errors import Busy, Invalid
from urne.platform.logging import log_fields

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
SUBJECT = "Votre code de connexion urne / Your urne sign-in code"
BODY = """Bonjour,

Votre code de connexion urne : {code}
Il est valable {minutes} minutes. Si vous ne l'avez pas demandé, ignorez ce message.

Hello,

Your urne sign-in code: {code}
It is valid for {minutes} minutes. If you did not ask for it, ignore this message.
"""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: str  # "implicit" (smtps), "starttls" or "off"
    username: str | None
    password: str | None
    cafile: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"URNE_SMTP_URL must be smtp://host[:port] or smtps://host[:port], "
                             f"not {parts.scheme or '?'}://{parts.hostname or '?'}")
        asked = query.get("tls", [""])[0]
        if asked not in ("", "off"):
            # A typo ("tls=no", "tls=false") must not quietly mean the opposite.
            raise ValueError(f"URNE_SMTP_URL: tls= takes only 'off', not {asked!r}")
        off = asked == "off"
        if parts.scheme == "smtps" and off:
            raise ValueError("URNE_SMTP_URL: smtps:// is TLS; tls=off goes with smtp://")
        if off and (parts.username or parts.password):
            raise ValueError("URNE_SMTP_URL: tls=off takes no user or password: "
                             "they would be sent in clear")
        tls = "implicit" if parts.scheme == "smtps" else "off" if off else "starttls"
        return cls(host=parts.hostname, port=parts.port or (465 if tls == "implicit" else 587),
                   tls=tls, username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   cafile=query.get("cafile", [None])[0])


class SmtpSender:
    def __init__(self, url: str, sender: str):
        if not sender:
            raise ValueError("URNE_MAIL_FROM must name the sender of sign-in codes")
        self.server = SmtpServer.from_url(url)
        self.sender = sender
        if self.server.tls == "off" and not _loopback(self.server.host):
            log.warning("sign-in codes go to the mail relay in clear (tls=off)",
                        extra=log_fields(smtp_host=self.server.host))

    def message(self, email: str, code: str, expires_in: int) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, email, SUBJECT
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
        msg.set_content(BODY.format(code=code, minutes=max(1, expires_in // 60)))
        return msg

    def send(self, to: str, code: str, expires_in: int) -> None:
        try:
            with self._connect() as smtp:
                smtp.send_message(self.message(to, code, expires_in))
        except smtplib.SMTPRecipientsRefused as exc:
            # The mail server will not take this address: retrying will not help.
            raise Invalid("the mail server refused this address", code="email_refused"
                          ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("sign-in code not sent", extra=log_fields(
                smtp_host=self.server.host, error=type(exc).__name__, detail=str(exc)[:300]))
            raise Busy("the sign-in code could not be sent; try again in a moment",
                       code="code_not_sent") from exc

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        context = ssl.create_default_context(cafile=server.cafile)
        smtp: smtplib.SMTP
        if server.tls == "implicit":
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT_SECONDS,
                                    context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS)
        try:
            if server.tls == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    # Never send a password or a code in clear because a server said so.
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
                smtp.starttls(context=context)
            if server.username:
                smtp.login(server.username, server.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: only its resolver knows where it leads
        return False
