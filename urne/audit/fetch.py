"""``urne audit fetch``: save a poll's public documents as a bundle (``bundle.py``).

The record is streamed to disk as it arrives, whatever its size; nothing is checked
here (that is ``verify``'s work, from the saved bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
            to.parent.mkdir(parents=True, exist_ok=True)
            to.write_bytes(_get(http, f"{base}/{path}").content)

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
            try:
                headers = {"poll_id": poll_id, "size": int(r.headers["Urne-Record-Size"]),
                           "root": r.headers["Urne-Record-Root"]}
            except (KeyError, ValueError) as exc:  # not urne's record, or not whole
                raise FetchError(f"GET {r.url.path}: no Urne-Record-Size and "
                                 "Urne-Record-Root headers (the record's size and root)"
                                 ) from exc
        (folder / RECORD_HEADERS).write_text(json.dumps(headers) + "\n")


def _get(http: httpx.Client, url: str, **params: Any) -> httpx.Response:
    r = http.get(url, params=params or None)
    if r.status_code != 200:
        raise FetchError(f"GET {r.url.path}: {r.status_code} {r.text[:300]}")
    return r


def latest_head(base_url: str, poll_id: str, first: int, timeout: float = 60.0
                ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The keys, the poll's latest signed tree head, and the consistency proof from the
    log at ``first`` entries to it (``urne audit head``: a few hashes, not the record)."""
    base = f"{base_url.rstrip('/')}/v1/audit"
    with httpx.Client(timeout=timeout) as http:
        keys = _get(http, f"{base}/keys").json()
        heads = _get(http, f"{base}/polls/{poll_id}/heads").json().get("heads") or []
        if not heads:
            raise FetchError(f"poll {poll_id} has no signed tree head yet")
        latest = heads[-1]
        proof = _get(http, f"{base}/polls/{poll_id}/consistency", first=first,
                     second=latest["head"]["size"]).json()
    return keys, latest, proof
