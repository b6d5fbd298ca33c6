"""The record's Merkle tree, stored as tiles that grow by position.

The tree of ``urne.record.merkle`` (RFC 6962), kept the way transparency logs keep
theirs (the "tiles" of Go's checksum database and of C2SP tlog-tiles): level 0 holds the
leaf hashes, 256 to a tile; level 1 holds the root of every complete level-0 tile, 256 to
a tile; and so on. A tile is its hashes concatenated (32 bytes each); the rightmost tile
of a level may be partial and widens as leaves are appended, its prefix never changing.
So a tree of a million leaves is 3,907 + 16 + 1 tiles, appending rewrites only the
rightmost tile of each level, and a root or an inclusion proof for any size reads a few
tiles instead of every leaf.

Pure: tiles are read through a function, written by the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from urne.record.merkle import consistency_proof, node_hash

HEIGHT = 8  # a tile spans 8 levels of the tree: 256 hashes
HASH = 32

# (level, index) -> the tile's bytes as stored (perhaps wider than asked: a prefix is
# always valid); KeyError if absent.
TileReader = Callable[[int, int], bytes]


def _reduce(hashes: list[bytes]) -> bytes:
    """Root of a perfect subtree, from its 2^r bottom hashes."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def _split(hashes: bytes) -> list[bytes]:
    return [hashes[i:i + HASH] for i in range(0, len(hashes), HASH)]


def append(size: int, leaves: Sequence[bytes], read: TileReader,
           height: int = HEIGHT) -> dict[tuple[int, int], bytes]:
    """The tiles to write when ``leaves`` (leaf hashes) are appended to a tree of ``size``
    leaves: every tile they touch, at every level, whole (the rightmost perhaps partial).
    Only the partial tiles of the old tree are read."""
    width = 1 << height
    tiles: dict[tuple[int, int], bytes] = {}
    level, start, hashes = 0, size, list(leaves)
    while hashes:
        first = start // width
        kept = start % width
        # The old partial tile's hashes come first; a stored tile may be wider than the
        # old tree (a write that did not finish): only its prefix is the tree's.
        row = read(level, first)[:kept * HASH] if kept else b""
        if len(row) != kept * HASH:
            raise ValueError(f"tile {level}/{first} holds {len(row) // HASH} hashes, "
                             f"the tree needs {kept}")
        row += b"".join(hashes)
        end = start + len(hashes)
        for t in range(first, (end - 1) // width + 1):
            offset = (t - first) * width * HASH
            tiles[(level, t)] = row[offset:offset + width * HASH]
        # The level above gets the root of each tile this append completed.
        parents = [_reduce(_split(tiles[(level, t)])) for t in range(first, end // width)]
        level, start, hashes = level + 1, first, parents
    return tiles


class TiledTree:
    """The tree of the first ``size`` leaves, answered from tiles read on demand (each at
    most once per instance)."""

    def __init__(self, size: int, read: TileReader, height: int = HEIGHT):
        self.size = size
        self.height = height
        self._read = read
        self._tiles: dict[tuple[int, int], bytes] = {}

    def _tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._tiles:
            self._tiles[key] = self._read(level, index)
        return self._tiles[key]

    def _hashes(self, level: int, first: int, count: int) -> list[bytes]:
        """``count`` consecutive hashes of a tile level (within one tile)."""
        width = 1 << self.height
        tile, at = divmod(first, width)
        data = self._tile(level, tile)[at * HASH:(at + count) * HASH]
        if len(data) != count * HASH:
            raise ValueError(f"tile {level}/{tile} is shorter than the tree of {self.size}")
        return _split(data)

    def _perfect(self, h: int, k: int) -> bytes:
        """The root of the perfect subtree of height ``h`` over leaves [k·2^h, (k+1)·2^h):
        a stored hash if h is a multiple of the tile height, else reduced from the
        2^(h mod height) hashes below it in one tile."""
        level, r = divmod(h, self.height)
        return _reduce(self._hashes(level, k << r, 1 << r))

    def _mth(self, lo: int, hi: int) -> bytes:
        """RFC 6962's MTH over leaves [lo, hi), from perfect subtrees (lo is always a
        multiple of the largest power of two below hi - lo, so each left part is one)."""
        n = hi - lo
        if n & (n - 1) == 0:
            h = n.bit_length() - 1
            return self._perfect(h, lo >> h)
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self._mth(lo, lo + k), self._mth(lo + k, hi))

    def root(self) -> bytes:
        if self.size == 0:
            return hashlib.sha256(b"").digest()
        return self._mth(0, self.size)

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self._hashes(0, index, 1)[0]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 6962 §2.1.1 audit path of leaf ``index``, bottom-up."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        path: list[bytes] = []
        lo, hi = 0, self.size
        while hi - lo > 1:
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            if index < lo + k:
                path.append(self._mth(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._mth(lo, lo + k))
                lo += k
        return path[::-1]

    def consistency_proof(self, first: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 proof that the tree of the first ``first`` leaves is a prefix
        of this one."""
        return consistency_proof(first, self.size, self._mth)
