"""Who is alive among a pool of workers, and which shard is whose (rendezvous hashing
with bounded loads).

Vote workers and tally workers each announce themselves every ``HEARTBEAT_SECONDS`` on a
fanout exchange of their pool; a worker not heard for ``PEER_TIMEOUT_SECONDS`` is
counted out. Every worker computes the same owners from the same live set.

Plain rendezvous hashing gave two vote workers 12 and 4 of the 16 shards in a measured
run (each shard carries the same share of the ballots, so one worker took three times
the other's load, and its batches, three times larger, made the p99). Owners are now
chosen by the same scores under a cap: every worker owns ``ceil(shards / workers)``
shards at most. The pairs (shard, worker) are taken best score first, and a pair is
kept when its shard has no owner yet and its worker is under the cap: the same for
every worker that sees the same live set, balanced, and a worker joining or leaving
still moves few shards besides its own.
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
    _owners: dict[tuple[tuple[str, ...], int], dict[int, str]] = field(default_factory=dict)

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

    def owner(self, shard: int, shards: int, now: float) -> str:
        """The worker that owns ``shard`` of ``shards`` among the live ones."""
        live = tuple(self.live(now))
        owners = self._owners.get((live, shards))
        if owners is None:
            if len(self._owners) > 64:  # live sets seen: a few per membership change
                self._owners.clear()
            owners = self._owners[(live, shards)] = assign(live, shards)
        return owners[shard]


def assign(workers: tuple[str, ...], shards: int) -> dict[int, str]:
    """shard -> owner: best rendezvous score first, at most ceil(shards / workers) each."""
    cap = -(-shards // len(workers))
    pairs = sorted(((hashlib.sha256(f"{w}:{s}".encode()).digest(), s, w)
                    for s in range(shards) for w in workers), reverse=True)
    owners: dict[int, str] = {}
    load = dict.fromkeys(workers, 0)
    for _, shard, worker in pairs:
        if shard not in owners and load[worker] < cap:
            owners[shard] = worker
            load[worker] += 1
    return owners
