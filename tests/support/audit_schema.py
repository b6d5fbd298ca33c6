"""Checking a document against the published schema of the audit documents
(docs/schemas/urne.audit.v2.schema.json; v1 for results signed before it), by the name of
its ``$defs`` entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMAS = {version: json.loads((Path(__file__).resolve().parents[2] / "docs" / "schemas" /
                                f"urne.audit.{version}.schema.json").read_text())
           for version in ("v1", "v2")}


def conforms(document: str, instance: Any, version: str = "v2") -> list[str]:
    """The schema's complaints about ``instance`` as a ``document`` (none: it conforms)."""
    schema = SCHEMAS[version]
    validator = jsonschema_rs.validator_for(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{document}"})
    return [str(e) for e in validator.iter_errors(instance)]
