"""Who is alive among a pool of workers, and which shard is whose (rendezvous hashing).

Vote workers and tally workers each announce themselves every ``HEARTBEAT_SECONDS`` on a
fanout exchange of their pool; a worker not heard for ``PEER_TIMEOUT_SECONDS`` is
counted out. Every worker computes the same owner for a shard from the same live set.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

HEARTBEAT_SECONDS = 1.0
PEER_TIMEOUT_SECONDS = 3.5


@dataclass
class Membership:
    """Who is alive, from the workers' announcements; who owns which shard."""

    me: str
    seen: dict[str, float] = field(default_factory=dict)

    def heard(self, worker: str, now: float) -> None:
        self.seen[worker] = now

    def live(self, now: float) -> list[str]:
        return sorted({self.me, *(w for w, t in self.seen.items()
                                  if now - t < PEER_TIMEOUT_SECONDS)})

    def join(self, channel: BlockingChannel, exchange: str) -> None:
        """Listen to the pool's announcements (an exclusive queue on its exchange)."""
        channel.exchange_declare(exchange, "fanout", durable=True)
        peers = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(peers, exchange)

        def heard(ch: Any, method: Any, props: Any, body: bytes) -> None:
            self.heard(json.loads(body)["worker"], time.monotonic())

        channel.basic_consume(peers, heard, auto_ack=True)

    def announce(self, channel: BlockingChannel, exchange: str, shards: set[int]) -> None:
        """Say this worker is alive (and which shards it consumes, for operators)."""
        channel.basic_publish(exchange, "", json.dumps(
            {"worker": self.me, "shards": sorted(shards)}).encode(),
            pika.BasicProperties(delivery_mode=1,
                                 expiration=str(int(PEER_TIMEOUT_SECONDS * 1000))))

    def owner(self, shard: int, now: float) -> str:
        # Rendezvous hashing: a worker joining or leaving moves only its own shards.
        return max(self.live(now), key=lambda w: hashlib.sha256(
            f"{w}:{shard}".encode()).digest())
