"""Recount and publication at scale: a sealed poll of ``--ballots`` stored ballots,
seeded by direct writes into the tally's copy and its shards' partials (not through
HTTP), then timed as the tally publishes it. Prints JSON.

    python -m loadtests.recount --profile embedded|distributed [--ballots 1000000]

Three timings, each through the tally core's own commands: the check that recounts the
copy, cross-checks it with the merged partials and the seal, stores the record and its
tree, and signs (``tally.check_polls``); the whole record read page after page, as the
NDJSON download does (``record.lines.get``); a hundred inclusion proofs from the stored
tree (``record.prove_inclusion``). Also the peak memory of this process, which runs the core.
Embedded: SQLite in a temporary folder. Distributed: the local Cassandra, a keyspace of
its own, dropped at the end. 10 % of the ballots are revotes.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from urne.contracts import wrap
from urne.contracts.commands import CheckPolls, GetRecordLines, ProveInclusion
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import generate_keys, load_signing_key
from urne.messaging.counting_stream import counting_shard
from urne.messaging.kernel import ServiceCore
from urne.record.canonical import ballot_set_digest
from urne.runtime.registry import TALLY
from urne.services.tally.domain import ShardCount, StoredBallot
from urne.services.tally.handlers import TallyHandlers

RULES = YesNoAbstainRules(method="yes_no_abstain", question="Benchmark?")
CHUNK = 20_000


def seeded(n: int, poll_id: str, rng: random.Random) -> Iterator[list[StoredBallot]]:
    """The ballots in chunks: a new voter, or (one in ten) a revote of a recent one."""
    now = datetime.now(UTC)
    recent: list[tuple[str, int]] = []
    chunk: list[StoredBallot] = []
    for i in range(n):
        if recent and rng.random() < 0.1:
            j = rng.randrange(len(recent))
            key, seq = recent[j]
            recent[j] = (key, seq + 1)
            seq += 1
        else:
            key, seq = f"{rng.getrandbits(256):064x}", 1
            recent.append((key, seq))
            if len(recent) > 1000:
                recent.pop(0)
        chunk.append(StoredBallot(poll_id, key, seq, uuid.UUID(int=rng.getrandbits(128)).hex,
                                  f"T{i:010d}", {"answer": rng.choice(["yes", "no"])},
                                  "online", now))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def timed(core: ServiceCore, command: Any) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    reply, _ = core.handle(wrap(command, "gateway"))
    assert reply["ok"], reply
    return time.perf_counter() - started, reply["data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("embedded", "distributed"), default="embedded")
    parser.add_argument("--ballots", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    shards = 1 if args.profile == "embedded" else args.shards
    stream = f"bench-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="urne-recount-"))
    generate_keys(folder / "keys")
    signer = load_signing_key(folder / "keys", "tally-result")
    session = None
    if args.profile == "embedded":
        from urne.storage.sqlite import SqliteDb

        store: Any = TALLY.sqlite_store(SqliteDb(folder / "tally.db", TALLY.migrations.sqlite))
    else:
        from urne.platform.settings import StoreSettings
        from urne.storage.cassandra import connect, ensure_schema

        settings = StoreSettings(cassandra_keyspace_prefix=f"{stream.replace('-', '_')}_")
        session = connect(settings)
        keyspace = ensure_schema(session, settings, "tally", TALLY.migrations.cassandra)
        store = TALLY.cassandra_store(session, keyspace)
    try:
        poll_id = uuid.uuid4().hex
        store.save_rules(poll_id, RULES, rules_hash(RULES), "after_close")
        counts = {s: ShardCount(RULES) for s in range(shards)}
        ids: list[str] = []
        started = time.perf_counter()
        for chunk in seeded(args.ballots, poll_id, random.Random(args.seed)):
            store.add_ballots(chunk)
            for b in chunk:
                counts[counting_shard(b.voter_key, shards)].add(b)
                ids.append(b.ballot_id)
        moves = [(s, 0, 1, {poll_id: c.state()}) for s, c in counts.items()]
        if args.profile == "embedded":
            for s, _, _, states in moves:
                store.save_partials(stream, s, None, 0, states)
        else:
            assert all(store.save_checkpoints(stream, moves))
        store.save_seal(poll_id, len(ids), ballot_set_digest(ids))
        store.close(poll_id, datetime.now(UTC))  # poll.closed, which signing also needs
        seed_s = time.perf_counter() - started
        del ids

        saving: list[float] = []
        save_record = store.save_record

        def timed_save(*args: Any) -> None:
            began = time.perf_counter()
            save_record(*args)
            saving.append(time.perf_counter() - began)

        store.save_record = timed_save
        core = TallyHandlers(store, signer, stream=stream, shards=shards,
                             counted_by_workers=args.profile == "distributed").core()
        check_s, checked = timed(core, CheckPolls())
        assert poll_id in checked["published"], checked
        # The whole record as the NDJSON download reads it, page after page.
        started = time.perf_counter()
        lines, start, pages = 0, 0, 0
        trackers: list[str] = []
        rng = random.Random(args.seed)
        while start is not None:
            _, page = timed(core, GetRecordLines(poll_id=poll_id, start=start))
            rows = page["lines"].splitlines()
            lines += len(rows)
            trackers += [json.loads(row)["tracker"] for row in rng.sample(rows, min(10, len(rows)))]
            start, pages, size = page["next"], pages + 1, page["size"]
        record_s = time.perf_counter() - started
        assert lines == size, (lines, size)
        proofs = [timed(core, ProveInclusion(poll_id=poll_id, tracker=t))[0]
                  for t in rng.sample(trackers, min(100, len(trackers)))]
        print(json.dumps({
            "benchmark": "recount", "profile": args.profile, "ballots": args.ballots,
            "counted": size, "shards": shards, "seed_s": round(seed_s, 1),
            "recount_store_and_sign_s": round(check_s, 1),
            "of_which_record_stored_s": round(sum(saving), 1),
            "record_read_s": round(record_s, 1), "record_pages": pages,
            "inclusion_proofs": len(proofs),
            "inclusion_proof_ms_mean": round(1000 * statistics.fmean(proofs), 2),
            "inclusion_proof_ms_max": round(1000 * max(proofs), 2),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        }, indent=2))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if session is not None:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
            session.cluster.shutdown()


if __name__ == "__main__":
    main()
