"""Identity's bucketed tables widened without moving a row.

A poll's sign-in list, a census's keys and eligible entries, and a month's people seen
are each spread over buckets (Cassandra partitions) by a hash of their key. Before
2026-12-02 there were 64 (partitions of ~16,000 rows at a million people); there are
128 since (~7,800). 128 being a multiple of 64, each earlier bucket is one of today's,
so a scan of today's buckets finds every earlier row, and a key's earlier bucket is its
bucket now modulo 64: a lookup or a deletion by key tries both. No I/O here.
"""

from __future__ import annotations

EARLIER_BUCKETS = 64


def with_earlier(bucket: int) -> list[int]:
    """Where a key whose bucket is ``bucket`` may have rows: there, and in the bucket
    it had before the widening if that is another."""
    return sorted({bucket, bucket % EARLIER_BUCKETS})
