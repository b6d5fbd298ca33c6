"""An audit bundle: a poll's public documents saved in a folder, to verify offline.

``urne audit fetch`` writes one; ``urne audit verify --bundle DIR`` reads it. Each file
is what the audit route served, byte for byte, so a bundle can be archived, shared and
checked again by anyone, with urne's verifier or another:

- ``keys.json``: ``GET /v1/audit/keys``
- ``rules.json``: ``GET /v1/audit/polls/{id}/rules``
- ``result.json``: ``GET /v1/audit/polls/{id}/result``
- ``record.ndjson``: ``GET /v1/audit/polls/{id}/record.ndjson``
- ``record.json``: that download's ``Urne-Record-Size`` and ``Urne-Record-Root``
  headers, as ``{"poll_id", "size", "root"}``
- ``heads.json``: ``GET /v1/audit/polls/{id}/heads`` (an empty list for results signed
  as urne.result.v1; absent from bundles saved before it existed)
- ``receipts/<tracker>.json``: ``GET /v1/audit/polls/{id}/trackers/{tracker}``, for
  each receipt fetched
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from urne.audit.verify import Documents
from urne.record.canonical import parse_canonical
from urne.record.merkle import leaf_hash

KEYS, RULES, RESULT = "keys.json", "rules.json", "result.json"
RECORD, RECORD_HEADERS, RECEIPTS = "record.ndjson", "record.json", "receipts"
HEADS = "heads.json"
# A tracker names a file: only what cannot climb out of the folder.
_SAFE_TRACKER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BundleError(Exception):
    """A bundle that cannot be read: a file missing, or not what it should be."""


def receipt_path(folder: Path, tracker: str) -> Path:
    if not _SAFE_TRACKER.match(tracker):
        raise BundleError(f"tracker {tracker!r} is not one urne gives")
    return folder / RECEIPTS / f"{tracker}.json"


def _json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_bytes()))
    except FileNotFoundError as exc:
        raise BundleError(f"{path.name} is missing from the bundle") from exc
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path.name} is not a JSON object: {exc}") from exc


def entries(path: Path, progress: Callable[[int], None] = lambda n: None
            ) -> Iterator[tuple[Any, bytes]]:
    """The record's entries, line by line, each with its leaf hash (of its canonical
    JSON, most often the line itself: ``parse_canonical``); ``progress`` is told the
    bytes read."""
    try:
        with path.open("rb") as fh:
            for number, line in enumerate(fh, 1):
                progress(len(line))
                if line.strip():
                    try:
                        entry, canonical = parse_canonical(line.rstrip(b"\r\n"))
                    except ValueError as exc:
                        raise BundleError(f"{path.name}, line {number}: not JSON, or not "
                                          f"one canonical JSON can write ({exc})") from exc
                    yield entry, leaf_hash(canonical)
    except FileNotFoundError as exc:
        raise BundleError(f"{path.name} is missing from the bundle") from exc


def load(folder: Path, tracker: str | None = None,
         progress: Callable[[int], None] = lambda n: None,
         saved_heads: tuple[Path, ...] = ()) -> Documents:
    """The documents of a bundle, as ``verify`` takes them; ``saved_heads``: signed tree
    heads the auditor saved earlier (files of one head each, as ``/heads`` lists them)."""
    headers = _json(folder / RECORD_HEADERS)
    read = list(entries(folder / RECORD, progress))
    record = {"size": headers.get("size"), "root": headers.get("root"),
              "entries": [entry for entry, _ in read]}
    heads = _json(folder / HEADS).get("heads") if (folder / HEADS).exists() else None
    return Documents(keys=_json(folder / KEYS), rules=_json(folder / RULES), record=record,
                     signed=_json(folder / RESULT),
                     proof=_json(receipt_path(folder, tracker)) if tracker else None,
                     heads=heads if isinstance(heads, list) else None,
                     saved_heads=[_json(path) for path in saved_heads] or None,
                     leaves=[leaf for _, leaf in read])
