"""What the counting derives from a rules object, computed once per object.

Checking a ballot needs lookups (id -> position, id -> cost, grade -> index) that
only depend on the rules. Rules are frozen, so what is derived from one rules
object never goes stale; the cache is keyed by the object's identity (not by
content: hashing the content would cost as much as deriving) and keeps the object
alive while cached, so an identity is never reused under a live entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Rules objects live as long as a poll's cache entry in the gateway or a batch in a
# vote worker: a few hundred entries hold every poll that is being voted at once.
LIMIT = 256
_cache: dict[tuple[int, str], tuple[Any, Any]] = {}


def derived(rules: R, kind: str, build: Callable[[R], T]) -> T:
    """``build(rules)``, computed once per rules object and kind."""
    key = (id(rules), kind)
    hit = _cache.get(key)
    if hit is not None and hit[0] is rules:
        value: T = hit[1]
        return value
    value = build(rules)
    if len(_cache) >= LIMIT:
        _cache.pop(next(iter(_cache)), None)  # the oldest: dicts keep insertion order
    _cache[key] = (rules, value)
    return value
