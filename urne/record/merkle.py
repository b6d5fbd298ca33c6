"""An RFC 6962 (Certificate Transparency) Merkle tree over the counted ballots.

Leaves and inner nodes are hashed with distinct prefixes (0x00, 0x01) so a leaf
can never pass for a node. The tree shape matches RFC 6962 §2.1, which gives
inclusion proofs (a leaf is in the tree of a head) and consistency proofs (the tree of
one head is a prefix of the tree of a later one: nothing was deleted or rewritten).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

# MTH over the leaves [lo, hi) of some tree: how a proof reads the tree it proves.
SubtreeHash = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly below n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """Root over leaf hashes; the empty tree's root is SHA-256 of the empty string."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Bottom-up with carried odd nodes gives the same root as the recursive
    # RFC 6962 definition and runs in linear time.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def prefix_roots(leaves: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The root of the tree over the first n leaves, for each n of ``sizes``, in one pass:
    a stack of the perfect subtrees' roots (a compact range) grows with the leaves, and
    the root at n folds it right to left, as RFC 6962's split does."""
    wanted = set(sizes)
    out: dict[int, bytes] = {}
    if 0 in wanted:
        out[0] = root([])
    stack: list[tuple[int, bytes]] = []  # (height, root of a perfect subtree), left to right
    for n, leaf in enumerate(leaves, 1):
        node, height = leaf, 0
        while stack and stack[-1][0] == height:
            node, height = node_hash(stack.pop()[1], node), height + 1
        stack.append((height, node))
        if n in wanted:
            folded = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                folded = node_hash(left, folded)
            out[n] = folded
    return out


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Audit path for leaf ``index`` (RFC 6962 §2.1.1)."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)

    def path(m: int, d: Sequence[bytes]) -> list[bytes]:
        if len(d) == 1:
            return []
        k = _split(len(d))
        if m < k:
            return [*path(m, d[:k]), root(d[k:])]
        return [*path(m - k, d[k:]), root(d[:k])]

    return path(index, leaves)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 verification of an inclusion proof."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def consistency_proof(first: int, second: int, mth: SubtreeHash) -> list[bytes]:
    """RFC 9162 §2.1.4.1: the proof that the tree of ``first`` leaves is a prefix of the
    tree of ``second``, with ``mth(lo, hi)`` the hash of leaves [lo, hi) of the larger."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second} leaves")
    if first in (0, second):
        return []

    def subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if whole else [mth(lo, hi)]
        k = _split(hi - lo)
        if m <= k:
            return [*subproof(m, lo, lo + k, whole), mth(lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]

    return subproof(first, 0, second, True)


def consistency_proof_of(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The consistency proof from the tree of the first ``first`` leaves to all of them."""
    return consistency_proof(first, len(leaves), lambda lo, hi: root(leaves[lo:hi]))


def verify_consistency(first: int, second: int, proof: Sequence[bytes], first_root: bytes,
                       second_root: bytes) -> bool:
    """RFC 9162 §2.1.4.2: whether ``proof`` shows the tree of ``first`` leaves with root
    ``first_root`` to be a prefix of the tree of ``second`` leaves with ``second_root``."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof  # every tree extends the empty one
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old tree is a node of the new one
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
