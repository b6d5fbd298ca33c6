"""urne's public record and signed result reproduce the fixed bytes in tests/golden/.

The golden files were written once with tools other than urne (see tests/golden/README.md);
these tests only read them. A failure means the published formats changed.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from tests.unit.test_vectors import RFC8032_PUBLIC, RFC8032_SECRET
from urne.contracts.replies import SignedResult
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import TALLY_RESULT_KEY, SigningKey, b64url
from urne.record import merkle
from urne.record.canonical import canonical_json
from urne.services.tally.domain import (
    LEAF_ENCODING,
    LEAF_ENCODING_V1,
    RESULT_FORMAT,
    RESULT_FORMAT_V1,
    StoredBallot,
    TallySheet,
    build_result,
    leaf_hashes,
    record_entries,
    record_entries_v1,
)

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent.parent / "golden"

# The fixed inputs the golden files were written for.
POLL = "golden-poll"
RULES = YesNoAbstainRules(method="yes_no_abstain", question="Piétonniser la place du marché ?")
SOFTWARE_VERSION = "1.0.0-golden"
COMPUTED_AT = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
RECORDED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def stored(voter: str, sequence: int, tracker: str, answer: str,
           channel: str = "online") -> StoredBallot:
    return StoredBallot(poll_id=POLL, voter_key=voter * 32, sequence=sequence,
                        ballot_id=f"{voter}-{sequence}", tracker=tracker,
                        choice={"answer": answer}, channel=channel, recorded_at=RECORDED_AT)


# Not in record order on purpose; voter b voted yes, then replaced it with no; voter c
# voted at a desk (which only v2 shows).
BALLOTS = [
    stored("c", 1, "ÉT5R-6NDV-Q3ZA", "yes", "desk"),
    stored("b", 2, "HX4C-7TNE-2WQB", "no"),
    stored("a", 1, "K7Q2-MXDA-4RTA", "yes"),
    stored("b", 1, "B3ZW-QJLN-PE5Y", "yes"),
]


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def rfc8032_key() -> SigningKey:
    return SigningKey(TALLY_RESULT_KEY, Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))


VERSIONS = ["v1", "v2"]
FORMATS = {"v1": (RESULT_FORMAT_V1, LEAF_ENCODING_V1), "v2": (RESULT_FORMAT, LEAF_ENCODING)}


def entries_of(version: str) -> list[dict[str, Any]]:
    """urne's record of BALLOTS in that version's format."""
    if version == "v1":
        return record_entries_v1(BALLOTS)
    return record_entries(rules_hash(RULES), BALLOTS)


@pytest.fixture(scope="module", params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def record_file(version: str) -> dict[str, Any]:
    return golden(f"record.{version}.json")


@pytest.fixture(scope="module")
def result_file(version: str) -> dict[str, Any]:
    return golden(f"signed_result.{version}.json")


# --- record.v1.json (counted ballots) and record.v2.json (the log) ------------------------

def test_record_entries(record_file: dict, version: str) -> None:
    record, entries = record_file["record"], entries_of(version)
    assert entries == record["entries"]
    assert (POLL, len(entries), FORMATS[version][1]) == (
        record["poll_id"], record["size"], record["leaf_encoding"])


def test_record_canonical_bytes_and_leaves(record_file: dict, version: str) -> None:
    entries = record_file["record"]["entries"]
    expected = record_file["leaves"]
    assert [canonical_json(e) for e in entries] == [x["canonical"].encode() for x in expected]
    leaves = [bytes.fromhex(x["leaf"]) for x in expected]
    assert [merkle.leaf_hash(x["canonical"].encode()) for x in expected] == leaves
    assert leaf_hashes(entries_of(version)) == leaves


def test_record_root(record_file: dict) -> None:
    leaves = [bytes.fromhex(x["leaf"]) for x in record_file["leaves"]]
    assert merkle.root(leaves).hex() == record_file["record"]["root"]


def test_record_inclusion_proofs(record_file: dict) -> None:
    leaves = [bytes.fromhex(x["leaf"]) for x in record_file["leaves"]]
    root = bytes.fromhex(record_file["record"]["root"])
    entries = record_file["record"]["entries"]
    for proof in record_file["proofs"]:
        index, path = proof["index"], [bytes.fromhex(h) for h in proof["path"]]
        assert entries[index]["tracker"] == proof["tracker"]
        assert (proof["leaf"], proof["size"]) == (leaves[index].hex(), len(leaves))
        assert merkle.inclusion_proof(index, leaves) == path
        assert merkle.verify_inclusion(leaves[index], index, proof["size"], path, root)


# --- signed_result.v1.json -----------------------------------------------------------------

def rebuilt_result(version: str) -> dict[str, Any]:
    sheet = TallySheet(poll_id=POLL, rules=RULES, rules_hash=rules_hash(RULES),
                       sealed_count=len(BALLOTS))
    return build_result(sheet, BALLOTS, SOFTWARE_VERSION, COMPUTED_AT, FORMATS[version][0])


def test_result_document_and_its_canonical_bytes(result_file: dict, version: str) -> None:
    result = rebuilt_result(version)
    assert result == result_file["signed_result"]["result"]
    assert canonical_json(result) == result_file["canonical_result"].encode()


def test_result_commits_to_the_golden_record(result_file: dict, record_file: dict) -> None:
    # What an auditor checks: the signed root and size are those of the published record.
    record = result_file["signed_result"]["result"]["record"]
    assert (record["root"], record["size"]) == (record_file["record"]["root"],
                                                record_file["record"]["size"])


def test_signature_and_key_id(result_file: dict, version: str) -> None:
    key = rfc8032_key()
    message = result_file["canonical_result"].encode()
    signed = SignedResult(result=rebuilt_result(version), signature=b64url(key.sign(message)),
                          key_id=key.public.kid)
    assert signed.model_dump(mode="json") == result_file["signed_result"]
    assert key.public.raw_b64url() == result_file["key"]["public_key_b64url"]
    assert key.public.kid == result_file["key"]["kid"]


def test_stored_signature_verifies_with_the_rfc8032_public_key(result_file: dict) -> None:
    assert bytes.fromhex(result_file["key"]["public_key_hex"]) == RFC8032_PUBLIC
    signature = result_file["signed_result"]["signature"]
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    # Raises InvalidSignature if the bytes or the signature in the file were altered.
    Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC).verify(
        raw, result_file["canonical_result"].encode())
