"""Group commit: many requests, one transaction.

A committing thread takes every request that arrived while it was busy, or within
``linger`` of the batch's first, and runs them as one batch: under load, one fsync
serves hundreds of ballots; alone, a request waits for nobody longer than the linger.
``submit`` returns a future the caller awaits; it is resolved after the batch
committed, or fails with the batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, run_batch: Callable[[list[T]], list[R]], max_batch: int = 512,
                 name: str = "group-commit", linger: float = 0.0):
        """``linger``: how long the first request of a batch waits for others."""
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.linger = linger
        self._queue: queue.SimpleQueue[tuple[T, Future[R]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> Future[R]:
        future: Future[R] = Future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            until = time.monotonic() + self.linger
            while len(batch) < self.max_batch:
                try:
                    left = until - time.monotonic()
                    more = self._queue.get(timeout=left) if left > 0 else \
                        self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run([item for item, _ in batch], [f for _, f in batch])
            if stop:
                return

    def _run(self, items: list[T], futures: list[Future[R]]) -> None:
        try:
            results = self.run_batch(items)
        except Exception as exc:  # the batch is rolled back: every request fails
            log.exception("batch failed")
            for f in futures:
                f.set_exception(exc)
            return
        for f, r in zip(futures, results, strict=True):
            f.set_result(r)
