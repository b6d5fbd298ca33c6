"""The JSON Schema of the public audit documents (docs/schemas/urne.audit.v2.schema.json,
and urne.audit.v1.schema.json for results signed before v2),
written by hand from docs/auditing.md: what urne serves conforms to it (the documents of
a real tally, a tally and recorded choices of every method, the golden files), and it
refuses what the format does not allow, so it can be trusted by whoever writes another
verifier. The documents served over HTTP in both profiles: tests/e2e/demo.py."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.support.audit_schema import conforms
from tests.unit.test_audit_verify import served  # noqa: F401  (a fixture)
from urne.audit.verify import Documents
from urne.counting import count, rules_adapter, validate_choice
from urne.crypto.keys import SigningKey, jwk
from urne.runtime.demo import POLLS, ballot

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ENTRY = {"height": 0, "parent": "ab" * 32, "tracker": "ABCD-EFGH-IJKL", "channel": "online",
         "choice": {"answer": "yes"}}
PER_DISTRICT = {"method": "budget", "question": "Budget par quartier", "budgets": {"nord": 100,
                "sud": 50}, "projects": [{"id": "n1", "title": "Piste", "cost": 80,
                                          "district": "nord"},
                                         {"id": "s1", "title": "Préau", "cost": 50,
                                          "district": "sud"}]}


def test_the_documents_of_a_real_tally_conform(served: Documents,  # noqa: F811
                                              tally_key: SigningKey) -> None:
    assert conforms("signed_result", served.signed) == []
    assert conforms("record_page", {**served.record, "start": 0, "next": None}) == []
    assert conforms("inclusion_proof", served.proof) == []
    assert conforms("keys", {"keys": [jwk(tally_key.public, "current")]}) == []
    frozen = {**served.rules, "opened_at": "2026-11-30T10:00:00+00:00",
              "results_visibility": "after_close"}
    assert conforms("frozen_rules", frozen) == []
    # The electorate, frozen with the rules: optional (documents served before it).
    for electorate in ("open", "census"):
        assert conforms("frozen_rules", {**frozen, "electorate": electorate}) == []
    assert conforms("frozen_rules", {**frozen, "electorate": "everyone"}) != []


@pytest.mark.parametrize("rules", [*POLLS, PER_DISTRICT],
                         ids=[*(p["method"] for p in POLLS), "budget_per_district"])
def test_every_method_s_rules_choices_and_tally_conform(rules: dict[str, Any]) -> None:
    frozen = rules_adapter.validate_python(rules)
    assert conforms("rules", frozen.model_dump(mode="json")) == []
    rng = random.Random(5)
    if "budgets" in rules:
        choices = [validate_choice(frozen, {"projects": [p]}, district=d)
                   for p, d in (("n1", "nord"), ("s1", "sud"), ("n1", "nord"))]
    else:
        choices = [validate_choice(frozen, ballot(rules, rng)) for _ in range(30)]
    for choice in choices:
        assert conforms("record_entry", {**ENTRY, "choice": choice}) == []
        assert conforms("record_entry", {"tracker": ENTRY["tracker"], "choice": choice},
                        "v1") == []
    assert conforms("tally", count(frozen, choices)) == []
    assert conforms("tally", count(frozen, [])) == []  # no ballots: another outcome


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_golden_files_conform(version: str) -> None:
    record = json.loads((ROOT / "tests" / "golden" / f"record.{version}.json").read_text())
    signed = json.loads((ROOT / "tests" / "golden" /
                         f"signed_result.{version}.json").read_text())
    assert conforms("record_page", {**record["record"], "start": 0, "next": None},
                    version) == []
    assert conforms("signed_result", signed["signed_result"], version) == []
    for proof in record["proofs"]:
        assert conforms("inclusion_proof", {"poll_id": record["record"]["poll_id"],
                                            "root": record["record"]["root"], **proof},
                        version) == []
    other = "v1" if version == "v2" else "v2"  # each version's documents are its own
    assert conforms("signed_result", signed["signed_result"], other) != []


def changed(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(document)
    *parents, last = path.split(".")
    target = out
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return out


DELETE = object()


@pytest.mark.parametrize(("path", "value"), [
    ("result.format", "urne.result.v1"),  # another version is another schema
    ("result.record.heads", [0]),  # a tree head holds entries
    ("result.ballots_counted", DELETE),
    ("result.reconciliation.channels.online.counted", -1),
    ("result.tally.outcome", "won"),  # outcome words are fixed
    ("result.tally.extra", 1),  # a tally has exactly its keys
    ("result.rules.method", "borda"),
    ("result.record.root", "ABC"),  # lowercase hex, 64 digits
    ("result.ballots_received", -1),
    ("signature", "c2ln=="),  # base64url without padding, 64 bytes
    ("key_id", "not-a-kid"),
    ("result.computed_at", DELETE),
])
def test_what_the_format_does_not_allow_is_refused(served: Documents,  # noqa: F811
                                                   path: str, value: Any) -> None:
    assert conforms("signed_result", changed(served.signed, path, value)) != []


@pytest.mark.parametrize("choice", [
    {"method": "yes_no_abstain", "answer": "yes"},  # recorded choices have no method
    {"answer": "maybe"}, {"approved": ["a", "a"]}, {"ranking": []}, {"projects": [1]},
])
def test_a_choice_the_format_does_not_allow_is_refused(choice: dict[str, Any]) -> None:
    assert conforms("record_entry", {**ENTRY, "choice": choice}) != []


@pytest.mark.parametrize("entry", [
    {k: v for k, v in ENTRY.items() if k != "parent"},  # a log entry names its parent
    {**ENTRY, "height": -1},
    {**ENTRY, "superseded_by": "T2"},  # a revote names what it replaces, not the reverse
    {**ENTRY, "seen_at": "2026-12-01"},
])
def test_a_log_entry_the_format_does_not_allow_is_refused(entry: dict[str, Any]) -> None:
    assert conforms("record_entry", entry) != []
    assert conforms("record_entry", {**ENTRY, "supersedes": "T0"}) == []
