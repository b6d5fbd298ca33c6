"""The slice against ``urne up`` (embedded profile), as a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.e2e.account import run_account_deletion
from tests.e2e.admin import run_admin
from tests.e2e.bad_input import run_bad_input
from tests.e2e.census import run_census
from tests.e2e.consultations import run_consultations
from tests.e2e.cross_channel import run_cross_channel
from tests.e2e.demo import run_demo
from tests.e2e.desk import run_desk
from tests.e2e.methods import METHODS
from tests.e2e.proposals import run_proposals
from tests.e2e.scenario import close_and_verify, open_poll, run_slice, vote
from tests.e2e.schedule import run_schedule
from tests.e2e.sign_in_limits import run_sign_in_limits
from tests.e2e.sms import run_sms
from tests.e2e.visibility import run_visibility
from tests.support.embedded import Embedded
from tests.support.processes import free_port
from tests.support.smtp import Mailbox

pytestmark = pytest.mark.e2e


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    system = Embedded(tmp_path / "data")
    system.start()
    yield system
    system.stop()


def test_sign_in_by_e_mail_over_smtp(tmp_path: Path) -> None:
    """With URNE_SMTP_URL the code reaches a mail server, not the file outbox."""
    mailbox, smtp_port = Mailbox(), free_port()
    relay = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    relay.start()
    system = Embedded(tmp_path / "data")
    try:
        system.start({"URNE_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}?tls=off",
                      "URNE_MAIL_FROM": "codes@town.example.org"})
        with httpx.Client(base_url=system.base, timeout=10) as http:
            r = http.post("/v1/auth/codes", json={"email": "Ada@Example.org"})
            assert r.status_code == 202, r.text
            code = mailbox.code_for("ada@example.org")
            assert code is not None, mailbox.messages
            r = http.post("/v1/auth/tokens", json={"email": "ada@example.org", "code": code})
            assert r.status_code == 200, r.text
            # Nobody to take it: the person is told the address was refused.
            r = http.post("/v1/auth/codes", json={"email": "nobody@example.org"})
            assert (r.status_code, r.json()["code"]) == (422, "email_refused"), r.text
        assert not system.outbox.exists()
    finally:
        system.stop()
        relay.stop()


def test_slice(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        summary = run_slice(http, embedded.outbox)
    assert summary["tally"]["outcome"] == "adopted"


@pytest.mark.parametrize("method", METHODS)
def test_every_voting_method(embedded: Embedded, method: str) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        METHODS[method](http, embedded.outbox)


def test_urne_demo_then_every_poll_verifies(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_demo(http, embedded.outbox)


def test_urne_demo_with_the_bulk_route(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_demo(http, embedded.outbox, bulk=True)


def test_sign_in_limits_stop_strangers_not_owners(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_sign_in_limits(http, embedded.outbox)


def test_a_census_poll_admits_claimed_eligible_entries_only(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=15) as http:
        run_census(http, embedded.outbox)


def test_a_deleted_account_comes_back_as_the_same_voter(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=15) as http:
        run_account_deletion(http, embedded.outbox)


def test_people_without_e_mail_sign_in_by_sms_and_vote(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=15) as http:
        run_sms(http, embedded.outbox)


def test_an_agent_at_a_desk_registers_someone_who_votes(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=15) as http:
        run_desk(http, embedded.outbox)


def test_a_ballot_cast_at_a_desk_is_final_or_replaced_as_the_poll_says(
        embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=15) as http:
        run_cross_channel(http, embedded.outbox)


def test_admins_grant_roles_and_read_what_staff_did(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_admin(http, embedded.outbox)


def test_consultations_belong_to_their_organisers(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_consultations(http, embedded.outbox)


def test_proposals_as_cities_run_them(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_proposals(http, embedded.outbox)


def test_bad_input(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_bad_input(http, embedded.outbox)


def test_results_visibility(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_visibility(http, embedded.outbox)


def test_polls_open_and_close_on_schedule(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        run_schedule(http, embedded.outbox)


def test_service_docs(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        spec = http.get("/openapi.json").json()
        assert "/v1/polls/{poll_id}/ballots" in spec["paths"]
        assert all(p.startswith(("/v1/", "/healthz", "/readyz")) for p in spec["paths"])
        docs = http.get("/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        metrics = http.get("/metrics")
        assert "urne_http_requests_total" in metrics.text


def test_restart_keeps_ballots_and_poll_state(embedded: Embedded) -> None:
    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        state = open_poll(http, embedded.outbox)
        vote(http, embedded.outbox, state, "alice@example.org", "no")
        vote(http, embedded.outbox, state, "bob@example.org", "yes")

    assert embedded.proc is not None
    embedded.proc.kill()  # no graceful shutdown: what was acknowledged must be on disk
    embedded.start()

    with httpx.Client(base_url=embedded.base, timeout=10) as http:
        assert http.get(f"/v1/polls/{state.poll_id}").json()["status"] == "open"
        vote(http, embedded.outbox, state, "alice@example.org", "abstain")  # revote, sequence 2
        close_and_verify(http, state, {"yes": 1, "no": 0, "abstain": 1})
