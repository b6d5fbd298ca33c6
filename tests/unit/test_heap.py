"""urne.platform.heap: what a process holds after its start is out of full passes."""

import gc
import weakref

from urne.platform import heap


class _Node:
    peer: "_Node"


def test_settle_takes_what_is_alive_out_of_every_generation() -> None:
    kept = [{"n": [i]} for i in range(50_000)]  # containers a full pass would walk
    cycle = _Node()
    cycle.peer = cycle  # garbage only a pass can free
    gone = weakref.ref(cycle)
    del cycle
    try:
        assert sum(len(gc.get_objects(g)) for g in range(3)) > 50_000
        heap.settle()
        assert gc.get_freeze_count() > 50_000
        # Nothing of it is left for a pass to walk (a few objects made since may be).
        assert sum(len(gc.get_objects(g)) for g in range(3)) < 1_000
        assert gone() is None  # the start's garbage was collected, not frozen
    finally:
        gc.unfreeze()
    assert len(kept) == 50_000
