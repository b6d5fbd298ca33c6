"""Orders casts and the close of a poll inside one vote process.

Casts for a poll run concurrently; a close first stops new casts, then waits for
the casts already past their "is the poll open?" check to finish, and only then
counts the stored ballots for the seal. Without it a ballot could be accepted
after the seal was counted, and the tally would refuse to publish.

This holds within one process (threads or green threads). Several vote
processes need a fence in the store as well: see docs/architecture.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from urne.platform.errors import Conflict


class CloseGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._casting: dict[str, int] = {}
        self._closing: set[str] = set()

    @contextmanager
    def casting(self, poll_id: str) -> Iterator[None]:
        with self._cond:
            if poll_id in self._closing:
                raise Conflict(f"poll {poll_id} is closed", code="poll_closed")
            self._casting[poll_id] = self._casting.get(poll_id, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._casting[poll_id] -= 1
                if not self._casting[poll_id]:
                    del self._casting[poll_id]
                    self._cond.notify_all()

    @contextmanager
    def closing(self, poll_id: str) -> Iterator[None]:
        with self._cond:
            self._closing.add(poll_id)
            self._cond.wait_for(lambda: poll_id not in self._casting)
        yield
