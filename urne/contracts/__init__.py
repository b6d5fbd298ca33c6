"""Every command, query, event and reply of urne, in one versioned place (D3)."""

from urne.contracts import commands, events, replies
from urne.contracts.envelope import (
    REGISTRY,
    Command,
    Envelope,
    Event,
    Message,
    Query,
    unwrap,
    wrap,
)

__all__ = [
    "REGISTRY",
    "Command",
    "Envelope",
    "Event",
    "Message",
    "Query",
    "commands",
    "events",
    "replies",
    "unwrap",
    "wrap",
]
