"""The sign-in limits hold across identity processes (issue 9): two identity cores, each
on a Cassandra session of its own, take requests for one address from one client at
the same time. Lightweight transactions on the counters and the codes let no more
through than the limit allows, and every code sent is one the store keeps pending."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.conftest import CassandraRun
from urne.contracts import wrap
from urne.contracts.commands import RequestLoginCode
from urne.crypto.keys import generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer
from urne.messaging.kernel import ServiceCore
from urne.runtime.registry import SERVICES
from urne.services.identity import limits
from urne.services.identity.domain import codes_key
from urne.services.identity.handlers import IdentityHandlers
from urne.storage.cassandra import connect

pytestmark = [pytest.mark.integration, pytest.mark.distributed]

STRANGER = "203.0.113.77"


@dataclass
class Outbox:
    sent: list[str] = field(default_factory=list)

    def send(self, email: str, code: str, expires_in: int) -> None:
        self.sent.append(code)


@pytest.fixture
def two_processes(cassandra: CassandraRun, tmp_path: Path
                  ) -> Iterator[tuple[list[ServiceCore], Outbox, object]]:
    generate_keys(tmp_path / "keys")
    key = load_signing_key(tmp_path / "keys", "identity-token")
    outbox, sessions = Outbox(), [connect(cassandra.settings) for _ in range(2)]
    stores = [SERVICES["identity"].cassandra_store(s, cassandra.keyspaces["identity"])
              for s in sessions]
    cores = [IdentityHandlers(store=store, sender=outbox, tokens=TokenIssuer(key),
                              secret="p" * 32, code_secret="c" * 32,
                              organisers=frozenset()).core() for store in stores]
    try:
        yield cores, outbox, stores[0]
    finally:
        for session in sessions:
            session.cluster.shutdown()


def test_two_processes_racing_send_no_more_codes_than_the_limit(
        two_processes: tuple[list[ServiceCore], Outbox, object]) -> None:
    cores, outbox, store = two_processes
    email = f"race-{id(outbox)}@example.org"
    requests = 16

    def ask(n: int) -> dict:
        reply, _ = cores[n % 2].handle(wrap(RequestLoginCode(email=email, client=STRANGER),
                                            "gateway"))
        return reply

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, range(requests)))
    sent = [r for r in replies if r["ok"]]
    codes = {r["error"]["code"] for r in replies if not r["ok"]}
    most = limits.SENDS_TO_ADDRESS_FROM_CLIENT.most
    # Never more than the limit, whatever the interleaving; the others are told to wait
    # (or, when the transactions kept colliding, to retry).
    assert 0 < len(sent) <= most and codes <= {"code_rate_limited", "sign_in_busy"}
    assert len(outbox.sent) == len(sent)
    pending = store.login_codes(codes_key("c" * 32, email))  # type: ignore[attr-defined]
    assert pending is not None and len(pending.pending) == len(sent)
    counter = store.counter(limits.key("c" * 32, limits.SENDS_TO_ADDRESS_FROM_CLIENT,  # type: ignore[attr-defined]
                                       STRANGER, email))
    assert counter is not None and counter.count == len(sent)
