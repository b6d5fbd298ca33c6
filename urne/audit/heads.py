"""A saved tree head against the latest one, without the record (``urne audit head``).

What a light client does, as certificate-transparency monitors and Go's checksum
database clients do: it keeps the last signed tree head it saw, and each time it looks
again it asks for the latest head and a consistency proof from its own (RFC 9162
§2.1.4, ``GET /v1/audit/polls/{id}/consistency``). If both heads are the tally's, of the
same poll and rules, and the proof verifies, the log it sees now begins with exactly the
entries it saw then: nothing signed was deleted, altered or reordered since. It reads a
few dozen hashes, not the record; the full check of the record remains ``verify``'s.

Pure: it takes the documents as served.
"""

from __future__ import annotations

from typing import Any

from urne.audit.verify import TREE_HEAD, Check, signed_by
from urne.record import merkle


def _head(keys: dict[str, Any], signed: dict[str, Any], name: str,
          pinned_kid: str | None) -> tuple[Check, dict[str, Any] | None]:
    head = signed.get("head")
    if not isinstance(head, dict) or head.get("format") != TREE_HEAD:
        return Check(name, False, f"not a signed {TREE_HEAD}"), None
    wrong, key = signed_by(keys, signed, head, pinned_kid)
    if wrong is not None or key is None:
        return Check(name, False, f"the head at {head.get('size')} entries: {wrong}"), None
    return Check(name, True, f"{head.get('size')} entries, root {str(head.get('root'))[:16]}…"
                             f", signed {head.get('issued_at')} by key {key['kid']}"), head


def check(keys: dict[str, Any], saved: dict[str, Any], latest: dict[str, Any],
          proof: dict[str, Any], pinned_kid: str | None = None) -> list[Check]:
    """Whether the ``latest`` signed head extends the ``saved`` one by ``proof`` (a
    consistency proof as ``/consistency`` serves it): every check, in order."""
    saved_check, old = _head(keys, saved, "saved head", pinned_kid)
    latest_check, new = _head(keys, latest, "latest head", pinned_kid)
    checks = [saved_check, latest_check]
    if old is None or new is None:
        return checks
    if (old.get("poll_id"), old.get("rules_hash")) != (new.get("poll_id"),
                                                        new.get("rules_hash")):
        return [*checks, Check("consistency", False, "the heads are not of one poll and "
                                                      "rules")]
    try:
        first, second = int(old["size"]), int(new["size"])
        path = [bytes.fromhex(h) for h in proof["path"]]
        fits = (int(proof["first"]), int(proof["second"])) == (first, second) \
            and proof.get("second_root") == new["root"]
        holds = fits and merkle.verify_consistency(first, second, path,
                                                   bytes.fromhex(old["root"]),
                                                   bytes.fromhex(new["root"]))
    except (KeyError, TypeError, ValueError) as exc:
        return [*checks, Check("consistency", False, f"the proof does not read: {exc}"[:300])]
    if not fits:
        return [*checks, Check("consistency", False, "the proof served is not between these "
                                                      "two heads")]
    if not holds:
        return [*checks, Check("consistency", False, f"the log of {second} entries does not "
                               f"begin with the {first} signed earlier: it was rewritten "
                               "after the saved head")]
    return [*checks, Check("consistency", True, f"the log of {second} entries begins with "
                           f"the {first} of the saved head ({len(path)} hashes checked)")]
