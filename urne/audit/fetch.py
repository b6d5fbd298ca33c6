"""``urne audit fetch``: save a poll's public documents as a bundle (``bundle.py``).

The record is streamed to disk as it arrives, whatever its size; nothing is checked
here (that is ``verify``'s work, from the saved bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from urne.audit.bundle import (
    HEADS,
    KEYS,
    RECORD,
    RECORD_HEADERS,
    RESULT,
    RULES,
    receipt_path,
)

CHUNK = 1 << 20


class FetchError(Exception):
    """A document the server did not give (its status and the start of its answer)."""


def fetch(base_url: str, poll_id: str, folder: Path, trackers: tuple[str, ...] = (),
          progress: Callable[[int], None] = lambda n: None, timeout: float = 60.0) -> None:
    """Download the documents of ``poll_id`` from ``base_url`` into ``folder``."""
    base = f"{base_url.rstrip('/')}/v1/audit"
    folder.mkdir(parents=True, exist_ok=True)
    with httpx.Client(timeout=timeout) as http:
        def save(path: str, to: Path) -> None:
            r = http.get(f"{base}/{path}")
            if r.status_code != 200:
                raise FetchError(f"GET {path}: {r.status_code} {r.text[:300]}")
            to.parent.mkdir(parents=True, exist_ok=True)
            to.write_bytes(r.content)

        save("keys", folder / KEYS)
        save(f"polls/{poll_id}/rules", folder / RULES)
        save(f"polls/{poll_id}/result", folder / RESULT)
        save(f"polls/{poll_id}/heads", folder / HEADS)
        for tracker in trackers:
            save(f"polls/{poll_id}/trackers/{tracker}", receipt_path(folder, tracker))
        with http.stream("GET", f"{base}/polls/{poll_id}/record.ndjson") as r:
            if r.status_code != 200:
                r.read()
                raise FetchError(f"GET record.ndjson: {r.status_code} {r.text[:300]}")
            with (folder / RECORD).open("wb") as out:
                for chunk in r.iter_bytes(CHUNK):
                    out.write(chunk)
                    progress(len(chunk))
            headers = {"poll_id": poll_id, "size": int(r.headers["Urne-Record-Size"]),
                       "root": r.headers["Urne-Record-Root"]}
        (folder / RECORD_HEADERS).write_text(json.dumps(headers) + "\n")
