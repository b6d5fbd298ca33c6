"""Independent vectors for the building blocks of a published result.

Canonical JSON (RFC 8785), the Merkle tree (RFC 6962 / RFC 9162) and Ed25519 (RFC 8032).
Every expected value here is copied from an RFC or from a public test suite named next to
it, never computed by urne: if urne drifts from what auditors implement, these fail.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from urne.crypto.keys import TALLY_RESULT_KEY, SigningKey
from urne.record import merkle
from urne.record.canonical import canonical_json

pytestmark = pytest.mark.unit

# --- RFC 8785: canonical JSON ------------------------------------------------------------

# (name, input JSON text, expected canonical UTF-8 bytes as hex), copied verbatim from the
# test data of RFC 8785's first author, https://github.com/cyberphone/json-canonicalization
# at commit 19d51d7fe467d4706a3ff08adf8a748f29fc21e0: testdata/input/<name>.json and
# testdata/outhex/<name>.txt. "values" is the example of RFC 8785 section 3.2.2, and its
# hex is the UTF-8 output printed in section 3.2.4.
JCS_VECTORS = [
    # testdata/input/values.json -> testdata/outhex/values.txt
    ("values",
     r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}""",
     "7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 "
     "75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a "
     "5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 "
     "65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 "
     "5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30 "
     "30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d"),
    # testdata/input/weird.json -> testdata/outhex/weird.txt
    ("weird",
     r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\u000a": "Newline",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}""",
     "7b 22 5c 6e 22 3a 22 4e 65 77 6c 69 6e 65 22 2c 22 5c 72 22 "
     "3a 22 43 61 72 72 69 61 67 65 20 52 65 74 75 72 6e 22 2c 22 "
     "31 22 3a 22 4f 6e 65 22 2c 22 3c 2f 73 63 72 69 70 74 3e 22 "
     "3a 22 42 72 6f 77 73 65 72 20 43 68 61 6c 6c 65 6e 67 65 22 "
     "2c 22 c2 80 22 3a 22 43 6f 6e 74 72 6f 6c 7f 22 2c 22 c3 b6 "
     "22 3a 22 4c 61 74 69 6e 20 53 6d 61 6c 6c 20 4c 65 74 74 65 "
     "72 20 4f 20 57 69 74 68 20 44 69 61 65 72 65 73 69 73 22 2c "
     "22 e2 82 ac 22 3a 22 45 75 72 6f 20 53 69 67 6e 22 2c 22 f0 "
     "9f 98 82 22 3a 22 53 6d 69 6c 65 79 22 2c 22 ef ac b3 22 3a "
     "22 48 65 62 72 65 77 20 4c 65 74 74 65 72 20 44 61 6c 65 74 "
     "20 57 69 74 68 20 44 61 67 65 73 68 22 7d"),
    # testdata/input/structures.json -> testdata/outhex/structures.txt
    ("structures",
     r"""{
  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
  "10": { },
  "": "empty",
  "a": { },
  "111": [ {"e": "yes","E": "no" } ],
  "A": { }
}""",
     "7b 22 22 3a 22 65 6d 70 74 79 22 2c 22 31 22 3a 7b 22 5c 6e "
     "22 3a 35 36 2c 22 66 22 3a 7b 22 46 22 3a 35 2c 22 66 22 3a "
     "22 68 69 22 7d 7d 2c 22 31 30 22 3a 7b 7d 2c 22 31 31 31 22 "
     "3a 5b 7b 22 45 22 3a 22 6e 6f 22 2c 22 65 22 3a 22 79 65 73 "
     "22 7d 5d 2c 22 41 22 3a 7b 7d 2c 22 61 22 3a 7b 7d 7d"),
    # testdata/input/arrays.json -> testdata/outhex/arrays.txt
    ("arrays",
     r"""[
  56,
  {
    "d": true,
    "10": null,
    "1": [ ]
  }
]""",
     "5b 35 36 2c 7b 22 31 22 3a 5b 5d 2c 22 31 30 22 3a 6e 75 6c "
     "6c 2c 22 64 22 3a 74 72 75 65 7d 5d"),
    # testdata/input/french.json -> testdata/outhex/french.txt
    ("french",
     r"""{
  "peach": "This sorting order",
  "péché": "is wrong according to French",
  "pêche": "but canonicalization MUST",
  "sin":   "ignore locale"
}""",
     "7b 22 70 65 61 63 68 22 3a 22 54 68 69 73 20 73 6f 72 74 69 "
     "6e 67 20 6f 72 64 65 72 22 2c 22 70 c3 a9 63 68 c3 a9 22 3a "
     "22 69 73 20 77 72 6f 6e 67 20 61 63 63 6f 72 64 69 6e 67 20 "
     "74 6f 20 46 72 65 6e 63 68 22 2c 22 70 c3 aa 63 68 65 22 3a "
     "22 62 75 74 20 63 61 6e 6f 6e 69 63 61 6c 69 7a 61 74 69 6f "
     "6e 20 4d 55 53 54 22 2c 22 73 69 6e 22 3a 22 69 67 6e 6f 72 "
     "65 20 6c 6f 63 61 6c 65 22 7d"),
    # testdata/input/unicode.json -> testdata/outhex/unicode.txt
    ("unicode",
     r"""{
  "Unnormalized Unicode":"A\u030a"
}""",
     "7b 22 55 6e 6e 6f 72 6d 61 6c 69 7a 65 64 20 55 6e 69 63 6f "
     "64 65 22 3a 22 41 cc 8a 22 7d"),
]


@pytest.mark.parametrize(("name", "text", "expected_hex"), JCS_VECTORS,
                         ids=[v[0] for v in JCS_VECTORS])
def test_rfc8785_canonical_bytes(name: str, text: str, expected_hex: str) -> None:
    assert canonical_json(json.loads(text)) == bytes.fromhex(expected_hex)


# RFC 8785 section 3.2.3 (https://www.rfc-editor.org/rfc/rfc8785#section-3.2.3): the
# sorting test data and its "Expected argument order after sorting property strings".
# The emoji (UTF-16 D83D DE00) sorts before U+FB33 only when keys are compared as UTF-16
# code units, as JCS requires; a code-point or UTF-8 sort puts it last.
RFC8785_SORTING_INPUT = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC8785_SORTED_VALUES = [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face",
    "Hebrew Letter Dalet With Dagesh",
]


def test_rfc8785_sorting_example() -> None:
    out = canonical_json(json.loads(RFC8785_SORTING_INPUT))
    values = json.loads(out, object_pairs_hook=lambda pairs: [v for _, v in pairs])
    assert values == RFC8785_SORTED_VALUES


# RFC 8785 section 3.1: the input must be I-JSON (RFC 7493): strings of Unicode characters,
# numbers that are IEEE 754 doubles (integers within +-(2**53 - 1)), and string keys.
# Anything else is refused rather than hashed in a form another implementation would not
# reproduce (json.dumps wrote NaN, and turned the key 1 into "1").
@pytest.mark.parametrize("value", ["\ud800", {"\udc00": 1}, float("nan"), float("inf"),
                                   2**53, -(2**53), {1: "one"}])
def test_values_outside_i_json_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        canonical_json(value)


# --- RFC 6962 / RFC 9162: the Merkle tree -------------------------------------------------

# The Certificate Transparency test tree, copied from https://github.com/transparency-dev/merkle
# at commit 417fb0c314750d94e53942e9f92e79b6d35915db. Leaf inputs, node hashes and roots:
# testonly/constants.go (LeafInputs, NodeHashes, RootHashes).
LEAF_INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
# NODE_HASHES[k][i]: the root of the complete subtree over leaves i*2**k .. (i+1)*2**k - 1;
# level 0 holds the leaf hashes.
NODE_HASHES = [[bytes.fromhex(h) for h in level] for level in (
    ("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",),
)]
# ROOTS[n]: the root of the tree over the first n leaves; n = 0 is SHA-256 of nothing.
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf index from 0, tree size, audit path from the leaf side up): the "happy path" probes
# testdata/inclusion/{0,1,2,3,4}/happy-path.json (base64 there; the same hashes appear as hex
# in cmd/proofgen/main.go, which counts leaves from 1).
INCLUSION_PROOFS = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# proofgen's sha256SomeHash, its stand-in for "some other hash".
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_leaf_hashes() -> None:
    assert [merkle.leaf_hash(d) for d in LEAF_INPUTS] == NODE_HASHES[0]


@pytest.mark.parametrize("level", range(1, len(NODE_HASHES)))
def test_node_hashes(level: int) -> None:
    below = NODE_HASHES[level - 1]
    pairs = zip(below[::2], below[1::2], strict=True)
    assert [merkle.node_hash(left, right) for left, right in pairs] == NODE_HASHES[level]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots(size: int) -> None:
    assert merkle.root(NODE_HASHES[0][:size]) == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS)
def test_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    leaves = NODE_HASHES[0][:size]
    expected = [bytes.fromhex(h) for h in path]
    assert merkle.inclusion_proof(index, leaves) == expected
    assert merkle.verify_inclusion(leaves[index], index, size, expected, ROOTS[size])


def _flip_bit_3(h: bytes) -> bytes:
    return bytes([h[0] ^ 0x08]) + h[1:]


def _tampered(index: int, size: int, path: list[bytes]) -> dict[str, tuple]:
    """The failing probes transparency-dev derives from each happy path (same names)."""
    leaf, root = NODE_HASHES[0][index], ROOTS[size]
    probes: dict[str, tuple] = {
        "wrong leaf": (b"WrongLeaf", index, size, path, root),
        "leafIdx plus 1": (leaf, index + 1, size, path, root),
        "leafIdx sub 1": (leaf, index - 1, size, path, root),
        "leafIdx XOR 2": (leaf, index ^ 2, size, path, root),
        "treeSize mul 2": (leaf, index, size * 2, path, root),
        "treeSize div 2": (leaf, index, size // 2, path, root),
        "random root": (leaf, index, size, path, SOME_HASH),
        "empty root": (leaf, index, size, path, ROOTS[0]),
        "preceding root": (leaf, index, size, [root, *path], root),
        "trailing root": (leaf, index, size, [*path, root], root),
        "preceding garbage": (leaf, index, size, [b"", *path], root),
        "trailing garbage": (leaf, index, size, [*path, b""], root),
    }
    for i in range(len(path)):
        modified = [*path[:i], _flip_bit_3(path[i]), *path[i + 1:]]
        probes[f"modified proof[{i}] bit 3"] = (leaf, index, size, modified, root)
    if path:
        probes["removed component"] = (leaf, index, size, path[:-1], root)
        probes["inserted component"] = (leaf, index, size, [path[0], SOME_HASH, *path[1:]], root)
    return probes


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS)
def test_tampered_inclusion_proofs_fail(index: int, size: int, path: list[str]) -> None:
    probes = _tampered(index, size, [bytes.fromhex(h) for h in path])
    accepted = [name for name, args in probes.items() if merkle.verify_inclusion(*args)]
    assert accepted == []


# (size1, size2, proof): testdata/consistency/{0,1,2,3,4}/happy-path.json of the same
# repository (base64 there), over the same test tree; root1 and root2 are ROOTS[size1] and
# ROOTS[size2] (checked below).
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
# The roots as the files give them (base64 decoded to hex), against ROOTS.
CONSISTENCY_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


def test_consistency_roots_are_the_test_tree_roots() -> None:
    assert all(ROOTS[size].hex() == h for size, h in CONSISTENCY_ROOTS.items())


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY_PROOFS)
def test_consistency_proofs(first: int, second: int, path: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in path]
    assert merkle.consistency_proof_of(first, NODE_HASHES[0][:second]) == expected
    assert merkle.verify_consistency(first, second, expected, ROOTS[first], ROOTS[second])


def _tampered_consistency(first: int, second: int, path: list[bytes]) -> dict[str, tuple]:
    """The failing probes transparency-dev derives from each happy path (same names)."""
    root1, root2 = ROOTS[first], ROOTS[second]
    probes: dict[str, tuple] = {
        "size1 + 1": (first + 1, second, path, root1, root2),
        "size1 - 1": (first - 1, second, path, root1, root2),
        "size1 ^ 2": (first ^ 2, second, path, root1, root2),
        "size2 * 2": (first, second * 2, path, root1, root2),
        "size2 / 2": (first, second // 2, path, root1, root2),
        "wrong root1": (first, second, path, SOME_HASH, root2),
        "wrong root2": (first, second, path, root1, SOME_HASH),
        "swapped roots": (first, second, path, root2, root1),
        "preceding root1": (first, second, [root1, *path], root1, root2),
        "preceding root2": (first, second, [root2, *path], root1, root2),
        "trailing root1": (first, second, [*path, root1], root1, root2),
        "trailing root2": (first, second, [*path, root2], root1, root2),
        "preceding garbage": (first, second, [b"", *path], root1, root2),
        "trailing garbage": (first, second, [*path, b""], root1, root2),
    }
    if path:
        probes["empty proof"] = (first, second, [], root1, root2)
        probes["truncated proof"] = (first, second, path[:-1], root1, root2)
    for i in range(len(path)):
        modified = [*path[:i], _flip_bit_3(path[i]), *path[i + 1:]]
        probes[f"modified proof[{i}] bit 3"] = (first, second, modified, root1, root2)
    if first == second:  # equal sizes: what differs is only the roots
        for name in ("size2 * 2", "size2 / 2", "swapped roots"):
            probes.pop(name)
    if first == 1:  # every tree extends the empty one, with an empty proof (RFC 9162)
        probes.pop("size1 - 1")
    return probes


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY_PROOFS)
def test_tampered_consistency_proofs_fail(first: int, second: int, path: list[str]) -> None:
    probes = _tampered_consistency(first, second, [bytes.fromhex(h) for h in path])
    accepted = [name for name, args in probes.items() if merkle.verify_consistency(*args)]
    assert accepted == []


# --- RFC 8032: Ed25519 --------------------------------------------------------------------

# RFC 8032 section 7.1, TEST 1 (https://www.rfc-editor.org/rfc/rfc8032#section-7.1): secret
# key, public key and the signature of the empty message.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def test_rfc8032_test_1_through_our_signing_key() -> None:
    key = SigningKey(TALLY_RESULT_KEY, Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))
    raw = key.public.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIGNATURE
