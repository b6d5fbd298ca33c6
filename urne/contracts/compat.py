"""Whether a message schema can replace an earlier one within a version (D3).

Within a version, only optional fields may be added: a reader of the new schema must
accept every message written under the old one, and an old reader ignores what it does
not know (readers are tolerant). ``breaking_changes(old, new)`` lists what breaks that
promise, comparing the JSON Schemas pydantic exports: a field removed, a field newly
required, a field whose schema changed other than by widening (``X`` to ``X | None``,
a union that gained members), any field added to a closed object (the frozen rules
refuse unknown fields), in the message and in every definition both share.
``tests/unit/test_contract_compat.py`` runs it against ``schemas/baseline/``, the
schemas as first published, so a breaking change must be a new ``.vN`` type.
"""

from __future__ import annotations

from typing import Any

# Keys that document a schema without changing what it accepts.
_DOCUMENTATION = frozenset({"title", "description", "default", "examples"})


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What in ``new`` breaks readers or writers of ``old``; empty if nothing."""
    problems = _object(old, new, "message")
    old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})
    for name in sorted(set(old_defs) & set(new_defs)):
        problems += _object(old_defs[name], new_defs[name], name)
    return problems


def _object(old: dict[str, Any], new: dict[str, Any], where: str) -> list[str]:
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, schema in old_props.items():
        if name not in new_props:
            problems.append(f"{where}.{name}: removed")
        elif not _accepts(new_props[name], schema):
            problems.append(f"{where}.{name}: changed")
    for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
        problems.append(f"{where}.{name}: newly required")
    if old.get("additionalProperties") is False:
        # A closed object (the frozen rules): an old reader refuses any field it does
        # not know, so even an optional one breaks it.
        problems += [f"{where}.{name}: added to a closed object"
                     for name in sorted(set(new_props) - set(old_props))]
    return problems


def _strip(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in _DOCUMENTATION}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def _alternatives(schema: Any) -> list[Any]:
    for key in ("anyOf", "oneOf"):
        if isinstance(schema, dict) and key in schema:
            return [_strip(s) for s in schema[key]]
    return [_strip(schema)]


def _accepts(new: Any, old: Any) -> bool:
    """Whether every value ``old`` accepts, ``new`` accepts too (structurally: the same
    schema, or a union holding each of the old one's alternatives). Definitions named
    by ``$ref`` are compared on their own, by ``breaking_changes``."""
    if _strip(new) == _strip(old):
        return True
    wider = _alternatives(new)
    return all(alt in wider for alt in _alternatives(old))
