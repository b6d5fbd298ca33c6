"""Keep the garbage collector's full passes short in long-running processes.

CPython's cyclic collector stops the whole process while it runs, and a full
(generation 2) pass walks every container object the process holds: in a gateway or
a vote worker that is mostly what the imports and the start left behind (modules,
classes, pydantic's and FastAPI's schemas, the Cassandra driver's metadata), hundreds
of thousands of objects that never become garbage. Timed with ``gc.callbacks`` under
`urne loadtest --profile distributed --rate 400`: during the ballots the gateway made
a full pass every 4-5 s, each 144-285 ms, and the vote workers one to three in 30 s,
83-156 ms each; every request in the process waits for it (docs/performance.md,
"Pauses of the garbage collector").

``settle()`` moves everything alive at the end of the start into the permanent
generation (``gc.freeze``), which no pass walks again: later full passes walk only
what the process made since. Nothing is leaked: frozen objects are still freed by
reference counting; only cycles among them would stay, and the start makes none
worth collecting.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Call once the process is set up, right before it starts serving."""
    gc.collect()  # what the start left as garbage goes now, not frozen with the rest
    gc.freeze()
