"""Verifying a published result offline, at scale: a bundle of ``--ballots`` counted
ballots (one poll, the tally's own publication code, signed with a key made for the
run), then ``urne audit verify --bundle`` timed on it. Prints JSON.

    python -m loadtests.audit_bundle [--ballots 1000000] [--keep DIR]

Timed in this process, as the command runs it: reading the bundle (``bundle.load``:
the NDJSON parsed line by line, each entry's canonical bytes and leaf hash computed)
and the checks (``verify``: the signature, the rules hash, the Merkle root over the
leaf hashes, the chain of the log, the recount). Building the bundle is not timed. 10 % of the
ballots are revotes: the record (``urne.record.v2``) holds every ballot, and about nine
in ten of them count. Peak memory of this process is reported too.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from loadtests.recount import RULES, seeded
from urne.audit import bundle
from urne.audit.verify import verify
from urne.contracts.replies import SignedResult
from urne.counting import rules_hash
from urne.crypto.keys import TALLY_RESULT_KEY, b64url, generate_keys, jwk, load_signing_key
from urne.record.canonical import canonical_json
from urne.services.tally.domain import TallySheet, publication


def build(folder: Path, ballots: int, seed: int) -> tuple[int, int]:
    """Write a bundle of a poll with ``ballots`` stored ballots; its record's size and
    the ballots it counts."""
    generate_keys(folder / "keys")
    signer = load_signing_key(folder / "keys", TALLY_RESULT_KEY)
    poll_id = "bench-poll"
    stored = [b for chunk in seeded(ballots, poll_id, random.Random(seed)) for b in chunk]
    sheet = TallySheet(poll_id, RULES, rules_hash(RULES))
    done = publication(sheet, stored, "bench", datetime.now(UTC))
    result = done.result
    signed = SignedResult(result=result, signature=b64url(signer.sign(canonical_json(result))),
                          key_id=signer.public.kid)
    out = folder / "bundle"
    out.mkdir()
    (out / bundle.KEYS).write_text(json.dumps({"keys": [jwk(signer.public, "current")]}))
    (out / bundle.RULES).write_text(json.dumps({
        "poll_id": poll_id, "rules": RULES.model_dump(mode="json"),
        "rules_hash": rules_hash(RULES), "results_visibility": "after_close"}))
    (out / bundle.RESULT).write_text(json.dumps(signed.model_dump(mode="json")))
    with (out / bundle.RECORD).open("wb") as fh:
        for index in sorted(done.chunks):
            fh.write(done.chunks[index])
    record = result["record"]
    (out / bundle.RECORD_HEADERS).write_text(json.dumps(
        {"poll_id": poll_id, "size": record["size"], "root": record["root"]}))
    return int(record["size"]), int(result["ballots_counted"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="Leave the bundle in this folder.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="urne-audit-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        size, counted = build(folder, args.ballots, args.seed)
        built_s = time.perf_counter() - started
        cpu, started = time.process_time(), time.perf_counter()
        docs = bundle.load(folder / "bundle")
        read_s = time.perf_counter() - started
        checks = verify(docs, pinned_kid=docs.signed["key_id"])
        verify_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
        print(json.dumps({
            "ballots_stored": args.ballots, "record_size": size,
            "ballots_counted": counted,
            "record_bytes": (folder / "bundle" / bundle.RECORD).stat().st_size,
            "ok": all(c.ok for c in checks),
            "failed": [c.name for c in checks if not c.ok],
            "read_s": round(read_s, 2), "checks_s": round(verify_s - read_s, 2),
            "verify_s": round(verify_s, 2), "verify_cpu_s": round(cpu_s, 2),
            "build_s": round(built_s, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
