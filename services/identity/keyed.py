"""The one keyed hash identity stores in place of what it must not keep in clear (codes,
addresses, census entries, limit counters) and derives voter keys with."""

from __future__ import annotations

import hashlib
import hmac


def keyed_hash(secret: str, *parts: str) -> str:
    """HMAC-SHA256 under ``secret`` of ``parts`` joined by NUL bytes, in hex. A label
    first among the parts keeps one use's hashes apart from another's."""
    return hmac.new(secret.encode(), "\x00".join(parts).encode(), hashlib.sha256).hexdigest()
