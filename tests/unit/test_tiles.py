"""The tiled Merkle tree gives the roots and proofs of the plain one, however it grew.

``urne.record.merkle`` is itself checked against the RFC 6962 / RFC 9162 vectors
(test_vectors.py) and a recursive reference (test_merkle.py); here the tiled form, with
small tile heights so that a few hundred leaves span several tile levels.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urne.record import merkle
from urne.record.tiles import TiledTree, TileReader, append

pytestmark = pytest.mark.unit


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry-{i}".encode()) for i in range(n)]


def reader(store: dict[tuple[int, int], bytes]) -> TileReader:
    return lambda level, index: store[(level, index)]


def grown(cuts: list[int], height: int) -> tuple[dict[tuple[int, int], bytes], int]:
    """Tiles of a tree grown by appends of these sizes, as a store would keep them."""
    store: dict[tuple[int, int], bytes] = {}
    size = 0
    all_leaves = leaves(sum(cuts))
    for cut in cuts:
        store.update(append(size, all_leaves[size:size + cut], reader(store), height))
        size += cut
    return store, size


@settings(max_examples=120, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=90), min_size=1, max_size=6),
       height=st.integers(min_value=1, max_value=4), data=st.data())
def test_grown_by_appends_the_tree_is_the_plain_one(cuts: list[int], height: int,
                                                   data: st.DataObject) -> None:
    store, size = grown(cuts, height)
    plain = leaves(size)
    assert TiledTree(size, reader(store), height).root() == merkle.root(plain)
    # Any earlier size too: a tile wider than the tree asked of it serves its prefix.
    for smaller in {0, size // 2, max(size - 1, 0)}:
        assert TiledTree(smaller, reader(store), height).root() == \
            merkle.root(plain[:smaller])
    if size:
        index = data.draw(st.integers(min_value=0, max_value=size - 1))
        tree = TiledTree(size, reader(store), height)
        assert tree.leaf(index) == plain[index]
        assert tree.inclusion_proof(index) == merkle.inclusion_proof(index, plain)
        assert merkle.verify_inclusion(plain[index], index, size, tree.inclusion_proof(index),
                                       merkle.root(plain))
        first = data.draw(st.integers(min_value=0, max_value=size))
        proof = tree.consistency_proof(first)
        assert proof == merkle.consistency_proof_of(first, plain)
        assert merkle.verify_consistency(first, size, proof, merkle.root(plain[:first]),
                                         merkle.root(plain))


def test_a_million_leaves_are_a_few_thousand_tiles_and_a_proof_reads_a_few() -> None:
    # The shape at the default height (256 hashes a tile), by arithmetic on 1,000,003
    # leaves' worth of tiles (hashes are not what is checked here, only which tiles).
    n = 1_000_003
    fake = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    store = append(0, fake, lambda level, index: b"")
    by_level: dict[int, int] = {}
    for level, _ in store:
        by_level[level] = by_level.get(level, 0) + 1
    assert by_level == {0: 3907, 1: 16, 2: 1}
    assert len(store[(0, 3906)]) == (n % 256) * 32  # the partial tile
    reads: list[tuple[int, int]] = []

    def read(level: int, index: int) -> bytes:
        reads.append((level, index))
        return store[(level, index)]

    tree = TiledTree(n, read)
    assert tree.inclusion_proof(123_456) == merkle.inclusion_proof(123_456, fake)
    assert len(reads) <= 8, reads


def test_a_missing_or_short_tile_is_an_error_not_a_wrong_root() -> None:
    store, size = grown([40], height=2)
    with pytest.raises((KeyError, ValueError)):  # a tile absent, or too short
        TiledTree(size + 5, reader(store), 2).root()
    short = dict(store)
    short[(0, 9)] = short[(0, 9)][:32]
    with pytest.raises(ValueError):
        TiledTree(size, reader(short), 2).inclusion_proof(37)
    short[(1, 2)] = short[(1, 2)][:32]  # holds the hashes 8 and 9 of level 1
    with pytest.raises(ValueError):  # appending after a partial tile lost a hash
        append(size, leaves(4), reader(short), 2)  # completes a tile
