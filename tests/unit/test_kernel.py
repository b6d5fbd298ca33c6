"""ServiceCore: registry, validation, error replies, events and health."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.helpers import deliver, send
from urne.contracts import wrap
from urne.contracts.commands import Actor, CheckHealth, ClosePoll, GetPoll, GetResult, OpenPoll
from urne.contracts.events import BallotsRecorded, PollClosed, ResultPublished
from urne.contracts.replies import Health
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import Conflict, DomainError

pytestmark = pytest.mark.unit

ORGANISER = Actor(person_id="org", role="organiser")

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def closed(poll_id: str = "p1") -> PollClosed:
    return PollClosed(poll_id=poll_id, closed_at=NOW)


def foreign_event() -> BallotsRecorded:
    return BallotsRecorded(ballots=[])  # the vote service's, not the proposal service's


def core(**commands) -> ServiceCore:
    """A "proposal" core whose OpenPoll / ClosePoll handlers are given by the test."""
    return ServiceCore(name="proposal",
                       commands={OpenPoll: commands.get("open", _emit_closed),
                                 ClosePoll: commands.get("close", _emit_closed)})


def _emit_closed(cmd, ctx: Context) -> Health:
    ctx.emit(closed(cmd.poll_id))
    return Health(service="proposal", ready=True, detail=cmd.poll_id)


def test_a_command_returns_its_view_and_events_in_envelopes() -> None:
    reply, events = core().handle(wrap(OpenPoll(poll_id="p1", actor=ORGANISER), "test",
                                       trace_id="trace-1"))
    assert reply == {"ok": True, "data": {"service": "proposal", "ready": True, "detail": "p1"}}
    assert [e["type"] for e in events] == ["poll.closed.v1"]
    assert events[0]["producer"] == "proposal"
    assert events[0]["trace_id"] == "trace-1"  # the trace follows the message
    assert events[0]["payload"]["poll_id"] == "p1"


def test_unknown_message_type() -> None:
    reply, events = send(core(), GetPoll(poll_id="p1"))  # registered, but not proposal's here
    assert reply["ok"] is False
    assert reply["error"]["code"] == "unknown_message_type"
    assert events == []
    raw = wrap(OpenPoll(poll_id="p1", actor=ORGANISER), "test") | {"type": "poll.explode.v1"}
    assert core().handle(raw)[0]["error"]["code"] == "unknown_message_type"


@pytest.mark.parametrize(
    "payload",
    [{}, {"poll_id": 7}, {"poll_id": ""}, {"poll_id": None}],
    ids=repr,
)
def test_invalid_payload_is_a_422(payload: dict) -> None:
    # With its actor: the payload is refused for its poll id alone.
    raw = wrap(OpenPoll(poll_id="p1", actor=ORGANISER), "test") | {
        "payload": {"actor": ORGANISER.model_dump(), **payload}}
    reply, events = core().handle(raw)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "invalid_message"
    assert reply["error"]["status"] == 422
    assert events == []


def test_invalid_envelope_is_a_422() -> None:
    raw = wrap(OpenPoll(poll_id="p1", actor=ORGANISER), "test")
    del raw["producer"]
    reply, _ = core().handle(raw)
    assert (reply["error"]["code"], reply["error"]["status"]) == ("invalid_message", 422)


def test_a_domain_error_becomes_its_code_and_drops_the_events() -> None:
    def fail(cmd, ctx: Context) -> Health:
        ctx.emit(closed())  # emitted before the failure: must not escape
        raise Conflict("poll p1 is open", code="poll_open")

    reply, events = send(core(open=fail), OpenPoll(poll_id="p1", actor=ORGANISER))
    assert reply == {"ok": False,
                     "error": {"code": "poll_open", "status": 409, "detail": "poll p1 is open"}}
    assert events == []


def test_a_plain_domain_error_defaults_to_400() -> None:
    def fail(cmd, ctx: Context) -> Health:
        raise DomainError("nope")

    reply, _ = send(core(open=fail), OpenPoll(poll_id="p1", actor=ORGANISER))
    assert reply["error"] == {"code": "bad_request", "status": 400, "detail": "nope"}


def test_an_unexpected_exception_is_an_opaque_500_without_events() -> None:
    def crash(cmd, ctx: Context) -> Health:
        ctx.emit(closed())
        raise ZeroDivisionError("secret detail")

    reply, events = send(core(open=crash), OpenPoll(poll_id="p1", actor=ORGANISER))
    assert reply == {"ok": False, "error": {"code": "internal_error", "status": 500,
                                            "detail": "internal error"}}
    assert events == []


def test_emitting_another_producers_event_raises() -> None:
    ctx = Context(producer="proposal", trace_id="t")
    with pytest.raises(RuntimeError, match=r"proposal may not emit ballots\.recorded\.v1"):
        ctx.emit(foreign_event())
    assert ctx.events == []


def test_a_command_emitting_a_foreign_event_fails_without_events() -> None:
    def cheat(cmd, ctx: Context) -> Health:
        ctx.emit(foreign_event())
        return Health(service="proposal", ready=True)

    reply, events = send(core(open=cheat), OpenPoll(poll_id="p1", actor=ORGANISER))
    assert reply["error"]["code"] == "internal_error"
    assert events == []


def test_an_event_handler_emitting_a_foreign_event_raises() -> None:
    def cheat(event, ctx: Context) -> None:
        ctx.emit(foreign_event())

    c = ServiceCore(name="proposal", commands={}, subscriptions={ResultPublished: cheat})
    with pytest.raises(RuntimeError):
        deliver(c, ResultPublished(poll_id="p1", record_root="00", ballots_counted=0,
                                   published_at=NOW))


def test_a_core_refuses_commands_it_does_not_own() -> None:
    with pytest.raises(RuntimeError, match="belongs to tally"):
        ServiceCore(name="proposal", commands={GetResult: _emit_closed})


def test_on_event_runs_the_subscription_and_returns_its_events() -> None:
    seen: list[str] = []

    def on_published(event: ResultPublished, ctx: Context) -> None:
        seen.append(event.poll_id)
        ctx.emit(closed(event.poll_id))

    c = ServiceCore(name="proposal", commands={}, subscriptions={ResultPublished: on_published})
    out = deliver(c, ResultPublished(poll_id="p9", record_root="00", ballots_counted=0,
                                     published_at=NOW))
    assert seen == ["p9"]
    assert [(e["type"], e["producer"]) for e in out] == [("poll.closed.v1", "proposal")]
    assert deliver(c, closed()) == []  # not subscribed: ignored


def test_on_event_raises_so_the_transport_redelivers() -> None:
    def boom(event, ctx: Context) -> None:
        raise OSError("disk full")

    c = ServiceCore(name="proposal", commands={}, subscriptions={PollClosed: boom})
    with pytest.raises(OSError):
        deliver(c, closed())


def test_on_event_refuses_unknown_types() -> None:
    raw = wrap(closed(), "test") | {"type": "poll.vanished.v1"}
    with pytest.raises(KeyError):
        core().on_event(raw)


def test_check_health_ready() -> None:
    reply, events = send(core(), CheckHealth())
    assert reply == {"ok": True, "data": {"service": "proposal", "ready": True, "detail": ""}}
    assert events == []


def test_check_health_not_ready_when_ping_raises() -> None:
    def ping() -> None:
        raise ConnectionRefusedError("db down")

    c = ServiceCore(name="vote", commands={}, ping=ping)
    reply, _ = send(c, CheckHealth())
    assert reply == {"ok": True, "data": {"service": "vote", "ready": False,
                                          "detail": "ConnectionRefusedError"}}


def test_development_secrets_are_refused_outside_development() -> None:
    from pydantic import ValidationError

    from urne.platform.settings import (
        DEV_CODE_SECRET,
        DEV_PSEUDONYM_SECRET,
        EmbeddedSettings,
        ServiceSettings,
    )
    from urne.runtime.registry import code_secret, pseudonym_secret

    secrets = {"pseudonym_secret": "s" * 32, "code_secret": "c" * 32}
    for settings in (ServiceSettings, EmbeddedSettings):
        # (a service also needs a broker user and a store role of its own outside
        # development)
        broker = {"amqp_url": "amqp://urne-vote:pw@rabbitmq/", "cassandra_username": "urne_vote",
                  "cassandra_password": "pw"} if settings is ServiceSettings else {}
        development = settings(environment="development")
        assert pseudonym_secret(development) == DEV_PSEUDONYM_SECRET
        assert code_secret(development) == DEV_CODE_SECRET
        for name, dev in (("pseudonym_secret", DEV_PSEUDONYM_SECRET),
                          ("code_secret", DEV_CODE_SECRET)):
            with pytest.raises(ValidationError, match=f"URNE_{name.upper()}"):
                settings(environment="production", **{**secrets, name: dev}, **broker)
        production = settings(environment="production", **secrets, **broker)
        assert (pseudonym_secret(production), code_secret(production)) == ("s" * 32, "c" * 32)
    with pytest.raises(ValidationError, match="URNE_CODE_SECRET"):  # urne up: both needed
        EmbeddedSettings(environment="production", pseudonym_secret="s" * 32)
    # A service process may run without the secrets (only identity makes pseudonyms and
    # codes); identity refuses to start without them.
    vote = ServiceSettings(environment="production", amqp_url="amqp://urne-vote:pw@rabbitmq/",
                           cassandra_username="urne_vote", cassandra_password="pw")
    with pytest.raises(RuntimeError, match="URNE_CODE_SECRET"):
        code_secret(vote)
    with pytest.raises(RuntimeError, match="URNE_PSEUDONYM_SECRET"):
        pseudonym_secret(vote)
