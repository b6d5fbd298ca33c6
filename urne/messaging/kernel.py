"""The transport-free heart of a service: a registry of command and event handlers.

A service core is built from plain functions; ``handle`` and ``on_event`` take and
return JSON-ready envelopes, so the embedded bus and the nameko adapter call the
very same code. Events raised by a handler are returned to the caller, which
publishes them only after the handler's writes are committed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from urne.contracts.commands import CheckHealth
from urne.contracts.envelope import Command, Envelope, Event, logged_fields, unwrap, wrap
from urne.contracts.replies import Health, Reply
from urne.platform.errors import DomainError
from urne.platform.logging import log_fields, trace_id_var
from urne.platform.metrics import (
    ACTION_LOG_FAILURES,
    COMMAND_SECONDS,
    COMMANDS,
    EVENTS_HANDLED,
)

log = logging.getLogger(__name__)

RawReply = dict[str, Any]
RawEnvelope = dict[str, Any]


@dataclass
class Context:
    """What a handler may do besides its writes: emit events, read the trace id."""

    producer: str
    trace_id: str
    events: list[RawEnvelope] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.send(self.envelope(event))

    def envelope(self, event: Event) -> RawEnvelope:
        """``event`` in its envelope, not sent: a handler that keeps its events in an
        outbox of its own stores this very envelope (same id), then ``send``s it."""
        if self.producer != event.PRODUCER:
            raise RuntimeError(f"{self.producer} may not emit {event.TYPE}")
        return wrap(event, self.producer, self.trace_id)

    def send(self, envelope: RawEnvelope) -> None:
        """Publish an envelope as it is, after the handler returned (and committed)."""
        self.events.append(envelope)


CommandHandler = Callable[[Any, Context], Reply]
EventHandler = Callable[[Any, Context], None]


@dataclass
class RunningCore:
    """A core and how to release what was opened for it (its store sessions)."""

    core: ServiceCore
    close: Callable[[], None]


def ok(reply: Reply) -> RawReply:
    return {"ok": True, "data": reply.model_dump(mode="json")}


def failed(error: DomainError) -> RawReply:
    if error.keep_writes:  # see DomainError.keep_writes; readers ignore it otherwise
        return {"ok": False, "error": error.as_dict(), "keep_writes": True}
    return {"ok": False, "error": error.as_dict()}


@dataclass
class ServiceCore:
    name: str
    commands: Mapping[type[Command], CommandHandler]
    subscriptions: Mapping[type[Event], EventHandler] = field(default_factory=dict)
    ping: Callable[[], None] = lambda: None
    # Told which events the broker confirmed, after a transport published them: a core
    # that keeps an outbox of its own (the proposal service's poll events, in Cassandra)
    # clears them there. Best effort: if this is never called, the events go again.
    published: Callable[[list[RawEnvelope]], None] = lambda events: None
    # Told of each command that succeeded, to append a staff member's doing to the
    # service's action log (urne/storage/action_log.py).
    log_action: Callable[[Envelope, Command], None] | None = None

    def __post_init__(self) -> None:
        self._by_type = {cls.TYPE: h for cls, h in self.commands.items()}
        for cls in self.commands:
            if self.name != cls.OWNER:
                raise RuntimeError(f"{cls.TYPE} belongs to {cls.OWNER}, not {self.name}")

    @property
    def event_types(self) -> list[type[Event]]:
        return list(self.subscriptions)

    def handle(self, raw: RawEnvelope) -> tuple[RawReply, list[RawEnvelope]]:
        """Run one command; returns the reply and the events to publish after commit."""
        started = time.perf_counter()
        msg_type = str(raw.get("type", "?")) if isinstance(raw, dict) else "?"
        if msg_type not in self._by_type and msg_type != CheckHealth.TYPE:
            COMMANDS.labels(self.name, "unknown", "rejected").inc()
            return failed(DomainError(f"{self.name} does not handle {msg_type!r}",
                                      code="unknown_message_type")), []
        try:
            env, cmd = unwrap(raw)
        except ValidationError as exc:
            COMMANDS.labels(self.name, msg_type, "rejected").inc()
            return failed(DomainError(_describe(exc), code="invalid_message", status=422)), []
        token = trace_id_var.set(env.trace_id)
        ctx = Context(self.name, env.trace_id)
        try:
            if isinstance(cmd, CheckHealth):
                view: Reply = self._health()
            else:
                view = self._by_type[msg_type](cmd, ctx)
            outcome = "ok"
            reply = ok(view)
            if self.log_action is not None:
                self._log_action(env, cmd)  # type: ignore[arg-type]  # a Command: _by_type
        except DomainError as exc:
            outcome, reply, ctx.events = exc.code, failed(exc), []
        except Exception:
            log.exception("command failed", extra=log_fields(type=msg_type))
            outcome, ctx.events = "error", []
            reply = failed(DomainError("internal error", code="internal_error", status=500))
        finally:
            trace_id_var.reset(token)
        COMMANDS.labels(self.name, msg_type, outcome).inc()
        COMMAND_SECONDS.labels(self.name, msg_type).observe(time.perf_counter() - started)
        return reply, ctx.events

    def on_event(self, raw: RawEnvelope) -> list[RawEnvelope]:
        """Handle one event. Raises on failure so the transport redelivers it;
        handlers are idempotent, so a redelivery has no second effect."""
        env, event = unwrap(raw)
        handler = self.subscriptions.get(type(event))  # type: ignore[arg-type]
        if handler is None:
            return []
        token = trace_id_var.set(env.trace_id)
        ctx = Context(self.name, env.trace_id)
        try:
            handler(event, ctx)
        except Exception:
            EVENTS_HANDLED.labels(self.name, env.type, "error").inc()
            raise
        finally:
            trace_id_var.reset(token)
        EVENTS_HANDLED.labels(self.name, env.type, "ok").inc()
        return ctx.events

    def _log_action(self, env: Envelope, cmd: Command) -> None:
        # After the fact: the command's writes are committed and its events are to be
        # published. An entry the store refuses is not worth undoing them for: it goes
        # to the process's log instead, and is counted.
        assert self.log_action is not None
        try:
            self.log_action(env, cmd)
        except Exception as exc:
            ACTION_LOG_FAILURES.labels(self.name).inc()
            # What the entry would have said, never more: not a token, not a census.
            actor = getattr(cmd, "actor", None)
            log.error("action log entry not stored", extra=log_fields(
                type=env.type, command_id=str(env.id), error=repr(exc)[:300],
                actor=actor.person_id if actor else None, role=actor.role if actor else None,
                subject=json.dumps(logged_fields(cmd), ensure_ascii=False)[:2000]))

    def _health(self) -> Health:
        try:
            self.ping()
        except Exception as exc:  # readiness reports, it does not raise
            return Health(service=self.name, ready=False, detail=type(exc).__name__)
        return Health(service=self.name, ready=True)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
