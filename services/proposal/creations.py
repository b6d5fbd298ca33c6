"""Creations a client may retry: a consultation, a proposal or a poll created with an
``Idempotency-Key``. No I/O here.

The same actor and key name one creation: its id is derived from them, so a retry after
a lost answer finds what the first attempt created (or creates it, if that attempt
stopped first) instead of making a second one. The first attempt's claim keeps a digest
of its request and its time: a retry with another body is refused, and one that creates
what the first did not gets the first one's creation time, so every write is the same.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from urne.record.canonical import canonical_json

Kind = Literal["consultation", "proposal", "poll"]

# Fixed: changing it would give a retry across the change another id.
_NAMESPACE = uuid.UUID("4f0d3c2a-9b1e-5c7d-8a6f-2e4b9d1c7a30")


@dataclass(frozen=True)
class Creation:
    """The first claim of a creation id: its request's digest, and when it was made
    (the creation's time, whichever attempt writes it)."""

    request_digest: str
    created_at: datetime


def creation_id(kind: Kind, actor_id: str, key: str) -> str:
    return uuid.uuid5(_NAMESPACE, f"{kind}\x00{actor_id}\x00{key}").hex


def request_digest(kind: Kind, command: BaseModel) -> str:
    """What the request asked for: the command without who sent it and with which key
    (both already in the id), in its canonical form (RFC 8785), as a ballot's is
    (``services/vote/domain.request_digest``)."""
    body = command.model_dump(mode="json", exclude={"actor", "idempotency_key"})
    return hashlib.sha256(canonical_json({"kind": kind, "body": body})).hexdigest()
