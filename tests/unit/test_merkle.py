"""The RFC 6962 Merkle tree of the public record: properties of roots and inclusion proofs.

The published RFC 6962 / RFC 9162 vectors (fixed roots, audit paths, the empty tree) are in
test_vectors.py; here the code is checked against a recursive reference written from
RFC 6962 section 2.1 with hashlib, over many sizes and random leaves.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urne.record.merkle import (
    consistency_proof_of,
    inclusion_proof,
    leaf_hash,
    node_hash,
    prefix_roots,
    root,
    verify_consistency,
    verify_inclusion,
)

pytestmark = pytest.mark.unit


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash, written the recursive way, over raw leaf data."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def data(n: int) -> list[bytes]:
    return [f"ballot-{i}".encode() for i in range(n)]


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


leaf_lists = st.lists(st.binary(max_size=40), min_size=0, max_size=70)


@settings(max_examples=150, deadline=None)
@given(leaf_lists)
def test_root_matches_the_recursive_definition(leaves: list[bytes]) -> None:
    assert root([leaf_hash(d) for d in leaves]) == mth(leaves)


@pytest.mark.parametrize("n", range(71))
def test_root_matches_for_every_size(n: int) -> None:
    assert root([leaf_hash(d) for d in data(n)]) == mth(data(n))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=16), min_size=1, max_size=70, unique=True))
def test_every_inclusion_proof_verifies_and_tampering_fails(leaves: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in leaves]
    size, top = len(hashes), root(hashes)
    for i, h in enumerate(hashes):
        proof = inclusion_proof(i, hashes)
        assert verify_inclusion(h, i, size, proof, top)
        # A tampered leaf, root, index or path must not verify. (A wrong size may:
        # the size is bound to the root by the signed tree head, not by the proof.)
        assert not verify_inclusion(flip(h), i, size, proof, top)
        assert not verify_inclusion(h, i, size, proof, flip(top))
        if size > 1:
            assert not verify_inclusion(h, (i + 1) % size, size, proof, top)
            assert not verify_inclusion(hashes[(i + 1) % size], i, size, proof, top)
            assert not verify_inclusion(h, i, size, [*proof[:-1], flip(proof[-1])], top)
            assert not verify_inclusion(h, i, size, proof[:-1], top)
        assert not verify_inclusion(h, i, size, [*proof, h], top)
        assert not verify_inclusion(h, size, size, proof, top)
        assert not verify_inclusion(h, -1, size, proof, top)


@pytest.mark.parametrize("second", range(1, 41))
def test_every_consistency_proof_verifies_and_a_rewritten_prefix_fails(second: int) -> None:
    hashes = [leaf_hash(d) for d in data(second)]
    top = root(hashes)
    for first in range(second + 1):
        old = root(hashes[:first])
        proof = consistency_proof_of(first, hashes)
        assert verify_consistency(first, second, proof, old, top)
        if first:
            # The old tree rewritten (one of its leaves changed, or it lost its last
            # leaf): the later tree no longer extends what the saved head committed to.
            rewritten = [*hashes[:first - 1], flip(hashes[first - 1])]
            assert not verify_consistency(first, second, proof, root(rewritten), top)
            assert not verify_consistency(first, second, proof, old, flip(top))
            if first > 1:
                assert not verify_consistency(first, second, proof, root(hashes[:first - 1]),
                                              top)
        if first < second:
            assert not verify_consistency(second, first, proof, top, old)  # backwards


def test_prefix_roots_are_the_roots_of_each_prefix() -> None:
    hashes = [leaf_hash(d) for d in data(70)]
    assert prefix_roots(hashes, range(71)) == {n: root(hashes[:n]) for n in range(71)}
    assert prefix_roots(iter(hashes), [5, 64, 99]) == {5: root(hashes[:5]),
                                                      64: root(hashes[:64])}


def test_single_leaf_and_domain_separation() -> None:
    leaf = leaf_hash(b"x")
    assert root([leaf]) == leaf == hashlib.sha256(b"\x00x").digest()
    assert inclusion_proof(0, [leaf]) == []
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    # a leaf is never mistaken for an inner node over the same bytes
    assert leaf_hash(b"a" * 64) != node_hash(b"a" * 32, b"a" * 32)


def test_proof_for_an_index_outside_the_tree_is_refused() -> None:
    hashes = [leaf_hash(d) for d in data(3)]
    with pytest.raises(IndexError):
        inclusion_proof(3, hashes)
    with pytest.raises(IndexError):
        inclusion_proof(-1, hashes)
    with pytest.raises(IndexError):
        inclusion_proof(0, [])
    assert not verify_inclusion(hashes[0], 0, 0, [], root([]))
