"""Sign-in codes by e-mail (services/identity/adapters/smtp_sender.py) against a real
SMTP server the tests start on loopback (aiosmtpd): plain SMTP to a local relay,
STARTTLS with a login, TLS from the first byte; and the refusals: a server whose
certificate is not trusted, one that does not offer STARTTLS, one that is away, a
recipient the server refuses."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.processes import free_port
from tests.support.smtp import Mailbox
from tests.support.tls import self_signed
from urne.platform.errors import Busy, Invalid
from urne.services.identity.adapters.smtp_sender import SmtpSender, SmtpServer

pytestmark = pytest.mark.integration

LOGIN, PASSWORD = "urne", "s3cret/with:odd@chars"
SENDER = "codes@vote.example.org"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                  data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        LOGIN.encode(), PASSWORD.encode())
    return AuthResult(success=ok)


@dataclass
class Server:
    port: int
    mailbox: Mailbox
    cafile: Path


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


def serve(mode: str, certificate: tuple[Path, ssl.SSLContext]) -> Iterator[Server]:
    cert, context = certificate
    mailbox, port = Mailbox(), free_port()
    kwargs: dict[str, Any] = {}
    if mode == "starttls":
        kwargs = {"tls_context": context, "require_starttls": True,
                  "authenticator": authenticator, "auth_required": True}
    elif mode == "implicit":
        kwargs = {"ssl_context": context}
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield Server(port, mailbox, cert)
    finally:
        controller.stop()


@pytest.fixture
def relay(certificate: tuple[Path, ssl.SSLContext]) -> Iterator[Server]:
    yield from serve("plain", certificate)


@pytest.fixture
def submission(certificate: tuple[Path, ssl.SSLContext]) -> Iterator[Server]:
    yield from serve("starttls", certificate)


@pytest.fixture
def smtps(certificate: tuple[Path, ssl.SSLContext]) -> Iterator[Server]:
    yield from serve("implicit", certificate)


def delivered(server: Server, to: str = "ada@example.org") -> Message:
    [(mail_from, rcpt, message)] = server.mailbox.messages
    assert (mail_from, rcpt) == (SENDER, [to])
    return message


def test_a_code_goes_to_a_local_relay(relay: Server) -> None:
    SmtpSender(f"smtp://127.0.0.1:{relay.port}?tls=off", SENDER).send(
        "ada@example.org", "123456", 600)
    message = delivered(relay)
    assert (message["From"], message["To"]) == (SENDER, "ada@example.org")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@vote.example.org>") and message["Date"]
    body = message.get_payload(decode=True).decode()
    assert "123456" in body and "10 minutes" in body


def test_a_code_goes_over_starttls_with_a_login(submission: Server) -> None:
    password = PASSWORD.replace("/", "%2F").replace(":", "%3A").replace("@", "%40")
    url = f"smtp://{LOGIN}:{password}@localhost:{submission.port}?cafile={submission.cafile}"
    SmtpSender(url, SENDER).send("ada@example.org", "654321", 600)
    assert "654321" in delivered(submission).get_payload(decode=True).decode()


def test_a_code_goes_over_tls_from_the_first_byte(smtps: Server) -> None:
    SmtpSender(f"smtps://127.0.0.1:{smtps.port}?cafile={smtps.cafile}", SENDER).send(
        "ada@example.org", "111222", 600)
    assert "111222" in delivered(smtps).get_payload(decode=True).decode()


def test_a_server_not_vouched_for_gets_no_code(submission: Server) -> None:
    # The system's authorities do not know the test's certificate: no STARTTLS, no code.
    sender = SmtpSender(f"smtp://{LOGIN}:x@localhost:{submission.port}", SENDER)
    with pytest.raises(Busy) as refused:
        sender.send("ada@example.org", "123456", 600)
    assert (refused.value.status, refused.value.code) == (503, "code_not_sent")
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
    assert submission.mailbox.messages == []


def test_no_code_in_clear_when_the_server_does_not_offer_starttls(relay: Server) -> None:
    with pytest.raises(Busy, match="could not be sent"):
        SmtpSender(f"smtp://127.0.0.1:{relay.port}", SENDER).send(
            "ada@example.org", "123456", 600)
    assert relay.mailbox.messages == []


def test_a_wrong_login_gets_no_code(submission: Server) -> None:
    url = f"smtp://{LOGIN}:wrong@localhost:{submission.port}?cafile={submission.cafile}"
    with pytest.raises(Busy):
        SmtpSender(url, SENDER).send("ada@example.org", "123456", 600)
    assert submission.mailbox.messages == []


def test_a_server_that_is_away_is_not_now() -> None:
    with pytest.raises(Busy) as refused:
        SmtpSender(f"smtp://127.0.0.1:{free_port()}?tls=off", SENDER).send(
            "ada@example.org", "123456", 600)
    assert refused.value.code == "code_not_sent"


def test_a_refused_recipient_is_a_bad_address_not_an_outage(relay: Server) -> None:
    with pytest.raises(Invalid) as refused:
        SmtpSender(f"smtp://127.0.0.1:{relay.port}?tls=off", SENDER).send(
            "nobody@example.org", "123456", 600)
    assert (refused.value.status, refused.value.code) == (422, "email_refused")


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://mail.example.org", ("mail.example.org", 587, "starttls", None, None)),
    ("smtps://u:p%40ss@mail.example.org", ("mail.example.org", 465, "implicit", "u", "p@ss")),
    ("smtp://localhost:25?tls=off", ("localhost", 25, "off", None, None)),
])
def test_the_smtp_url(url: str, expected: tuple[object, ...]) -> None:
    server = SmtpServer.from_url(url)
    assert (server.host, server.port, server.tls, server.username, server.password) == expected


@pytest.mark.parametrize("url", ["http://mail.example.org", "smtps://h?tls=off", "smtp://",
                                 "smtp://mail.example.org?tls=no",
                                 "smtp://u:p@mail.example.org:25?tls=off",
                                 "smtp://u@127.0.0.1:25?tls=off"])
def test_a_wrong_smtp_url_stops_the_start(url: str) -> None:
    with pytest.raises(ValueError, match="URNE_SMTP_URL"):
        SmtpSender(url, SENDER)


@pytest.mark.parametrize(("host", "warned"), [
    ("127.0.0.1", False), ("::1", False), ("localhost", False),
    ("10.0.0.5", True), ("relay.example.org", True)])
def test_a_plain_relay_off_this_machine_is_named_at_start(
        host: str, warned: bool, caplog: pytest.LogCaptureFixture) -> None:
    url = f"smtp://[{host}]:25?tls=off" if ":" in host else f"smtp://{host}:25?tls=off"
    with caplog.at_level(logging.WARNING):
        SmtpSender(url, SENDER)
    said = [r for r in caplog.records if "in clear" in r.getMessage()]
    assert bool(said) is warned


def test_a_sender_address_is_required() -> None:
    with pytest.raises(ValueError, match="URNE_MAIL_FROM"):
        SmtpSender("smtp://mail.example.org", "")
