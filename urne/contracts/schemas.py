"""JSON Schemas of every message type, pinned by golden files (D3).

``urne/contracts/schemas/<type>.json`` is the published form of each contract;
a test compares it byte for byte with what the models produce, so a contract
cannot drift without a reviewed change to those files. ``baseline/<type>.json`` is
a type's first published form, written once (by ``--write``, for a type that has
none) and never again: tests/unit/test_contract_compat.py checks the current form
against it.

    python -m urne.contracts.schemas --write   # regenerate the files
    python -m urne.contracts.schemas --check   # exit 1 and list differences
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Importing the package registers every command, query and event in REGISTRY.
from urne.contracts import REGISTRY, Envelope

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
ENVELOPE = "envelope"
BASELINE = "baseline"
COMMAND = "python -m urne.contracts.schemas --write"


def export() -> dict[str, dict[str, Any]]:
    """Type name -> JSON Schema of its message class, plus ``envelope``."""
    schemas = {name: cls.model_json_schema() for name, cls in sorted(REGISTRY.items())}
    schemas[ENVELOPE] = Envelope.model_json_schema()
    return schemas


def render(schema: dict[str, Any]) -> str:
    """The exact text of a golden file: sorted keys, indent 2, trailing newline."""
    return json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def differences(directory: Path = SCHEMAS_DIR) -> list[str]:
    """What differs between the models and the golden files, one line per file."""
    expected = {f"{name}.json": render(schema) for name, schema in export().items()}
    found = {p.name: p for p in directory.glob("*.json")} if directory.is_dir() else {}
    diffs = []
    for name, text in sorted(expected.items()):
        if name not in found:
            diffs.append(f"missing: {name}")
        elif found[name].read_text(encoding="utf-8") != text:
            diffs.append(f"changed: {name}")
    diffs.extend(f"no longer exported: {name}" for name in sorted(set(found) - set(expected)))
    baseline = directory / BASELINE
    diffs.extend(f"no baseline: {name}" for name in sorted(expected)
                 if not (baseline / name).is_file())
    return diffs


def write(directory: Path = SCHEMAS_DIR) -> list[str]:
    """(Re)write every golden file and remove those of types no longer registered."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = {f"{name}.json": render(schema) for name, schema in export().items()}
    for name, text in expected.items():
        (directory / name).write_text(text, encoding="utf-8")
    stale = sorted(p.name for p in directory.glob("*.json") if p.name not in expected)
    for name in stale:
        (directory / name).unlink()
    # A new type's first form is its baseline; an existing baseline is never rewritten
    # (nor removed: a type no longer served is still one that was published).
    baseline = directory / BASELINE
    baseline.mkdir(exist_ok=True)
    for name, text in expected.items():
        if not (baseline / name).exists():
            (baseline / name).write_text(text, encoding="utf-8")
    return sorted(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m urne.contracts.schemas",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the golden files")
    mode.add_argument("--check", action="store_true", help="exit 1 when the files differ")
    args = parser.parse_args(argv)
    if args.write:
        written = write()
        print(f"wrote {len(written)} schemas to {SCHEMAS_DIR}")
        return 0
    diffs = differences()
    if diffs:
        print("contract schemas differ from the golden files:", file=sys.stderr)
        for line in diffs:
            print(f"  {line}", file=sys.stderr)
        print("A change within a version may only add optional fields; otherwise create a .v2 "
              f"type. Then regenerate with: {COMMAND}", file=sys.stderr)
        return 1
    print(f"{len(export())} schemas match {SCHEMAS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
