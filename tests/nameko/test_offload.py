"""CPU-bound work in a nameko (eventlet) process runs off the hub: green threads, AMQP
heartbeats among them, keep running while a large poll is recounted."""

from __future__ import annotations

import threading
import time

import eventlet
import pytest

from urne.platform.offload import cpu_bound

pytestmark = pytest.mark.unit


def busy(seconds: float) -> int:
    """Pure Python work that never waits on I/O, as a recount does; and its thread."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return threading.get_ident()


def ticks_during(work: float) -> tuple[int, int]:
    """How often a green thread woke (every 10 ms asked) while ``cpu_bound`` ran."""
    ticks = 0
    stop = False

    def ticker() -> None:
        nonlocal ticks
        while not stop:
            eventlet.sleep(0.01)
            ticks += 1

    green = eventlet.spawn(ticker)
    eventlet.sleep(0)
    thread = cpu_bound(busy, work)
    stop = True
    green.wait()
    return ticks, thread


def test_under_eventlet_the_work_runs_on_a_real_thread_and_the_hub_keeps_going() -> None:
    assert eventlet.patcher.is_monkey_patched("thread"), "run with -p tests.support.green"
    ticks, thread = ticks_during(1.0)
    assert thread != eventlet.patcher.original("threading").get_ident()
    # Run in place, the green thread would not wake once in the whole second.
    assert ticks >= 20, ticks
