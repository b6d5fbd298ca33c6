"""Checking a document against the published schema of the audit documents
(docs/schemas/urne.audit.v1.schema.json), by the name of its ``$defs`` entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "schemas" /
                     "urne.audit.v1.schema.json").read_text())


def conforms(document: str, instance: Any) -> list[str]:
    """The schema's complaints about ``instance`` as a ``document`` (none: it conforms)."""
    validator = jsonschema_rs.validator_for(
        {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{document}"})
    return [str(e) for e in validator.iter_errors(instance)]
