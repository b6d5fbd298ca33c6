"""The envelope every command and event travels in, and the registry of message types.

A message type name is ``<subject>.<verb>.v<N>``: commands are imperative
(``poll.open.v1``), events past tense (``poll.opened.v1``). Within a version only
optional fields may be added; a breaking change is a new class with ``.v2``,
served side by side with the old one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """Base of every command, query and event payload.

    Readers are tolerant: a field they do not know is ignored, so a producer may add
    an optional field within a version (a rolling upgrade) without its consumers
    dead-lettering the message. The strictness lives at the edge, in the gateway's
    request models.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    TYPE: ClassVar[str]


class Command(Message):
    """Something a service is asked to do; ``OWNER`` is the service that handles it,
    ``SENDERS`` the roles that may ask it over the broker (signed envelopes), and
    ``NOT_LOGGED`` the fields no log may hold (a token, a census's names)."""

    OWNER: ClassVar[str]
    SENDERS: ClassVar[frozenset[str]] = frozenset({"gateway"})
    NOT_LOGGED: ClassVar[frozenset[str]] = frozenset()


def logged_fields(cmd: Message) -> dict[str, Any]:
    """What a log may say of ``cmd``: its fields, less its actor and its ``NOT_LOGGED``
    ones, of which a list is said by its length (``rows_count``)."""
    withheld: frozenset[str] = getattr(type(cmd), "NOT_LOGGED", frozenset())
    fields = cmd.model_dump(mode="json", exclude={"actor", *withheld})
    return fields | {f"{name}_count": len(value) for name in withheld
                     if isinstance(value := getattr(cmd, name), list)}


class Query(Command):
    """A command without side effects (reads)."""


class Event(Message):
    """Something that happened; ``PRODUCER`` is the only service that emits it."""

    PRODUCER: ClassVar[str]


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # tolerant, as Message

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    trace_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    payload: dict[str, Any]


REGISTRY: dict[str, type[Message]] = {}
M = TypeVar("M", bound=type[Message])


def message(type_name: str):
    """Register a message class under its versioned type name."""

    def register(cls: M) -> M:
        if type_name in REGISTRY:
            raise ValueError(f"message type {type_name!r} registered twice")
        cls.TYPE = type_name
        REGISTRY[type_name] = cls
        return cls

    return register


def wrap(msg: Message, producer: str, trace_id: str | None = None) -> dict[str, Any]:
    """Put a message in an envelope, as the JSON-ready dict that crosses the wire."""
    env = Envelope(type=msg.TYPE, producer=producer, payload=msg.model_dump(mode="json"))
    if trace_id:
        env = env.model_copy(update={"trace_id": trace_id})
    return env.model_dump(mode="json")


def unwrap(raw: dict[str, Any]) -> tuple[Envelope, Message]:
    """Validate an envelope and its payload; raises ``pydantic.ValidationError`` or KeyError."""
    env = Envelope.model_validate(raw)
    cls = REGISTRY.get(env.type)
    if cls is None:
        raise KeyError(env.type)
    return env, cls.model_validate(env.payload)
