"""Within a version, a contract only gains optional fields (D3): every schema stays
compatible with the one first published (``urne/contracts/schemas/baseline/``), and
the checker itself catches each kind of break.

Every type served has a baseline. Most are the form of the commit that added the type;
five are the form an hour later, after the review of the same session and before its
stop (their first form was never in a stopped, tested release): ``census.claim.v1`` and
``census.import.v1`` (names must hold a letter, 5109238), ``desk.code.issue.v1``,
``desk.person.register.v1`` and ``paper_voting_tokens.issue.v1`` (identity checks the
agent's own access token, 03e9968). Baselines were backfilled on 2026-12-03 for the 27
types added after the first 48, from git history."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from urne.contracts import schemas
from urne.contracts.compat import breaking_changes

pytestmark = pytest.mark.unit

BASELINE = schemas.SCHEMAS_DIR / "baseline"


@pytest.mark.parametrize("path", sorted(BASELINE.glob("*.json")), ids=lambda p: p.stem)
def test_every_published_schema_is_still_accepted(path: Any) -> None:
    current = schemas.export()
    assert path.stem in current, f"{path.stem} is no longer served: keep it, or bump"
    assert breaking_changes(json.loads(path.read_text()), current[path.stem]) == []


def test_every_type_served_has_its_baseline() -> None:
    missing = sorted(set(schemas.export()) - {p.stem for p in BASELINE.glob("*.json")})
    assert missing == [], f"no baseline for {missing}: run {schemas.COMMAND}"


def test_writing_the_schemas_adds_a_new_types_baseline_and_keeps_the_others(
        tmp_path: Any) -> None:
    (tmp_path / "baseline").mkdir()
    first = next(iter(schemas.export()))
    (tmp_path / "baseline" / f"{first}.json").write_text("{}\n", encoding="utf-8")
    assert any(d == f"no baseline: {n}.json" for d in schemas.differences(tmp_path)
               for n in schemas.export() if n != first)
    schemas.write(tmp_path)
    assert (tmp_path / "baseline" / f"{first}.json").read_text() == "{}\n"  # never rewritten
    assert schemas.differences(tmp_path) == []


OLD: dict[str, Any] = {
    "properties": {"poll_id": {"type": "string"}, "note": {"type": "string"},
                   "rules": {"$ref": "#/$defs/Rules"}},
    "required": ["poll_id"],
    "$defs": {"Rules": {"properties": {"question": {"type": "string"}},
                        "required": ["question"]}},
}


def changed(edit: Any) -> list[str]:
    new = copy.deepcopy(OLD)
    edit(new)
    return breaking_changes(OLD, new)


def test_an_optional_field_added_or_a_field_made_optional_is_compatible() -> None:
    def add(s: dict) -> None:
        s["properties"]["closes_at"] = {"anyOf": [{"type": "string"}, {"type": "null"}],
                                        "default": None}
        s["$defs"]["Rules"]["properties"]["hint"] = {"type": "string"}

    def widen(s: dict) -> None:
        s["properties"]["note"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
        s["required"] = []
        s["properties"]["poll_id"]["description"] = "documentation changes nothing"

    assert changed(add) == [] and changed(widen) == []


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda s: s["properties"].pop("note"), "message.note: removed"),
    (lambda s: s["required"].append("note"), "message.note: newly required"),
    (lambda s: s["properties"].update(note={"type": "integer"}), "message.note: changed"),
    (lambda s: s["$defs"]["Rules"]["required"].append("hint"), "Rules.hint: newly required"),
    (lambda s: s["$defs"]["Rules"]["properties"].pop("question"), "Rules.question: removed"),
], ids=["removed", "newly-required", "type-changed", "nested-required", "nested-removed"])
def test_each_break_is_caught(edit: Any, problem: str) -> None:
    assert changed(edit) == [problem]


def test_even_an_optional_field_breaks_a_closed_object() -> None:
    """The frozen rules refuse fields they do not know: an old reader would refuse a
    message whose rules gained one."""
    old = copy.deepcopy(OLD)
    old["$defs"]["Rules"]["additionalProperties"] = False
    new = copy.deepcopy(old)
    new["$defs"]["Rules"]["properties"]["hint"] = {"type": "string"}
    assert breaking_changes(old, new) == ["Rules.hint: added to a closed object"]
