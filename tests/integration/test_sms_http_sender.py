"""Sign-in codes by SMS (services/identity/adapters/sms_http_sender.py) against a real
HTTP server the tests start on loopback (the standard library's ThreadingHTTPServer),
standing for the SMS provider or an operator's relay: what goes over the wire, and the
refusals: a number the provider refuses, a provider that fails, one that does not
answer, one that is away; and the settings that stop the start."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.processes import free_port
from urne.platform.errors import Busy, Invalid
from urne.platform.logging import JsonFormatter
from urne.services.identity.adapters.sms_http_sender import HttpSmsSender, scrub

pytestmark = pytest.mark.integration

TOKEN, SENDER = "t0ken-for-tests", "urne"
NUMBER, CODE = "+33612345678", "123456"
# GSM 03.38's basic alphabet (the escape to its extension table left out: those count
# twice): a text of these characters only fits 160 of them in one SMS segment.
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
           "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class Provider:
    """What the test server answers, and what it was sent."""

    url: str
    status: int = 200
    reply: bytes = b'{"id": "msg-1"}'
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def handler_for(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            provider.received.append(Received(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if provider.hang:
                provider.release.wait(10)  # until the test ends: the client gives up first
                return
            self.send_response(provider.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(provider.reply)))
            if 300 <= provider.status < 400:
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()
            self.wfile.write(provider.reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no request lines in the test output

    return Handler


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[Provider]:
    # An HTTP(S)_PROXY in the environment would take loopback requests elsewhere.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    state = Provider(url=f"http://127.0.0.1:{port}/v1/sms")
    server.RequestHandlerClass = handler_for(state)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sms-provider", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def senders() -> Iterator[list[HttpSmsSender]]:
    """Senders made by a test, closed after it."""
    made: list[HttpSmsSender] = []
    yield made
    for sender in made:
        sender.close()


@pytest.fixture
def sender(provider: Provider, senders: list[HttpSmsSender]) -> HttpSmsSender:
    senders.append(HttpSmsSender(provider.url, TOKEN, SENDER))
    return senders[-1]


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warning lines as the service would write them (JSON, with their fields)."""
    formatter = JsonFormatter("identity")
    return [formatter.format(record) for record in caplog.records
            if record.levelno == logging.WARNING]


def assert_no_secret(lines: list[str]) -> None:
    assert lines
    for line in lines:
        assert CODE not in line and NUMBER not in line and NUMBER[1:] not in line
        assert "612345678" not in line and TOKEN not in line


def test_a_code_goes_to_the_provider(provider: Provider, sender: HttpSmsSender) -> None:
    sender.send(NUMBER, CODE, 600)
    [request] = provider.received
    assert request.path == "/v1/sms"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = json.loads(request.body)
    assert list(body) == ["to", "from", "text"]
    assert (body["to"], body["from"]) == (NUMBER, SENDER)
    assert body["text"] == ("urne : votre code est 123456 (valable 10 min). "
                            "Your urne code is 123456 (valid 10 min).")


def test_the_text_fits_one_gsm7_segment(provider: Provider, sender: HttpSmsSender) -> None:
    sender.send(NUMBER, "987654", 24 * 3600)  # the longest a code could plausibly live
    text = json.loads(provider.received[0].body)["text"]
    assert "987654" in text and "1440 min" in text
    assert set(text) <= GSM7, set(text) - GSM7
    assert len(text) <= 160


def test_a_short_lived_code_says_one_minute(provider: Provider, sender: HttpSmsSender) -> None:
    sender.send(NUMBER, CODE, 30)
    assert "(valid 1 min)" in json.loads(provider.received[0].body)["text"]


def test_each_code_has_its_own_idempotency_key(provider: Provider,
                                               sender: HttpSmsSender) -> None:
    sender.send(NUMBER, CODE, 600)
    sender.send(NUMBER, "654321", 600)
    keys = [request.headers["idempotency-key"] for request in provider.received]
    assert len(keys) == 2 and keys[0] != keys[1]
    assert all(len(key) == 32 and int(key, 16) >= 0 for key in keys)


def test_no_authorization_without_a_token(provider: Provider,
                                          senders: list[HttpSmsSender]) -> None:
    senders.append(HttpSmsSender(provider.url, "", SENDER))
    senders[-1].send(NUMBER, CODE, 600)
    [request] = provider.received
    assert "authorization" not in request.headers
    assert json.loads(request.body)["to"] == NUMBER


@pytest.mark.parametrize("status", [400, 422])
def test_a_refused_number_is_a_bad_number_not_an_outage(
        provider: Provider, sender: HttpSmsSender, status: int) -> None:
    provider.status, provider.reply = status, b'{"error": "not a mobile number"}'
    with pytest.raises(Invalid) as refused:
        sender.send(NUMBER, CODE, 600)
    assert (refused.value.status, refused.value.code) == (422, "phone_refused")


@pytest.mark.parametrize("status", [500, 502, 401, 429, 302])
def test_a_provider_that_fails_is_not_now(provider: Provider, sender: HttpSmsSender,
                                          caplog: pytest.LogCaptureFixture,
                                          status: int) -> None:
    # A provider that echoes the request in its error: the log line must not.
    provider.status = status
    provider.reply = json.dumps({"error": "upstream failed", "request": {
        "to": NUMBER, "national": "0612345678", "text": f"code {CODE}"}}).encode()
    with caplog.at_level(logging.WARNING), pytest.raises(Busy) as refused:
        sender.send(NUMBER, CODE, 600)
    assert (refused.value.status, refused.value.code) == (503, "code_not_sent")
    assert len(provider.received) == 1  # a redirect is not followed
    lines = warnings_logged(caplog)
    assert_no_secret(lines)
    [line] = lines
    entry = json.loads(line)
    assert (entry["sms_host"], entry["status"]) == ("127.0.0.1", status)
    assert "upstream failed" in entry["detail"] and len(entry["detail"]) <= 300


def test_a_provider_that_does_not_answer_is_not_now(
        provider: Provider, senders: list[HttpSmsSender],
        caplog: pytest.LogCaptureFixture) -> None:
    provider.hang = True
    senders.append(HttpSmsSender(provider.url, TOKEN, SENDER, timeout=0.5))
    with caplog.at_level(logging.WARNING), pytest.raises(Busy) as refused:
        senders[-1].send(NUMBER, CODE, 600)
    assert refused.value.code == "code_not_sent"
    assert len(provider.received) == 1
    lines = warnings_logged(caplog)
    assert_no_secret(lines)
    assert json.loads(lines[0])["error"] == "ReadTimeout"


def test_a_provider_that_is_away_is_not_now(senders: list[HttpSmsSender],
                                            caplog: pytest.LogCaptureFixture) -> None:
    senders.append(HttpSmsSender(f"http://127.0.0.1:{free_port()}/v1/sms", TOKEN, SENDER))
    with caplog.at_level(logging.WARNING), pytest.raises(Busy) as refused:
        senders[-1].send(NUMBER, CODE, 600)
    assert refused.value.code == "code_not_sent"
    lines = warnings_logged(caplog)
    assert_no_secret(lines)
    assert json.loads(lines[0])["error"] == "ConnectError"


@pytest.mark.parametrize("url", ["https://sms.example.org/v1/send", "http://127.0.0.1:8080/",
                                 "http://[::1]:8080/sms", "http://localhost/sms"])
def test_the_sms_url(url: str, senders: list[HttpSmsSender]) -> None:
    senders.append(HttpSmsSender(url, TOKEN, SENDER))


@pytest.mark.parametrize("url", ["http://sms.example.org/v1/send", "http://10.0.0.5/sms",
                                 "ftp://127.0.0.1/", "https://", "sms.example.org", "",
                                 "http://[::1"])
def test_a_wrong_sms_url_stops_the_start(url: str) -> None:
    with pytest.raises(ValueError, match="URNE_SMS_URL"):
        HttpSmsSender(url, TOKEN, SENDER)


def test_a_sender_is_required() -> None:
    with pytest.raises(ValueError, match="URNE_SMS_FROM"):
        HttpSmsSender("https://sms.example.org/v1/send", TOKEN, "")


def test_a_token_with_digits_in_it_is_scrubbed_whole() -> None:
    # Digit runs are masked after the secrets: a token is never left half-masked.
    detail = "bad key sk_live_20240517_Zq9 for +33612345678, code 123456"
    scrubbed = scrub(detail, "sk_live_20240517_Zq9", "+33612345678", "123456")
    assert scrubbed == "bad key *** for ***, code ***"
    assert "Zq9" not in scrubbed and "sk_live" not in scrubbed
