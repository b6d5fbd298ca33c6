"""Run CPU-bound work where it cannot starve an event loop.

A nameko service runs on eventlet: one OS thread whose green threads switch only when
one waits for I/O. Recounting and hashing a million ballots takes tens of seconds of
CPU, during which no green thread would run, AMQP heartbeats included, and the broker
would drop the connection. Under eventlet such work goes to eventlet's pool of real
threads (``eventlet.tpool``): the interpreter then switches between that thread and the
hub every few milliseconds, so heartbeats and other requests keep being served. Without
eventlet (the embedded profile runs the cores on worker threads already, tests call
them directly) the work runs in place.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def _green() -> bool:
    # Look, do not import: eventlet must not be dragged into processes that do not use it.
    patcher = sys.modules.get("eventlet.patcher")
    try:
        return bool(patcher and patcher.is_monkey_patched("thread"))
    except AttributeError:
        return False


def cpu_bound(fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
    """``fn(*args)``, on a real thread if this process runs on eventlet."""
    if _green():
        from eventlet import tpool

        return tpool.execute(fn, *args)
    return fn(*args)
