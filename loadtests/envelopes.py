"""The building block of signed envelopes on the ballot path, alone: the CPU each
ballot pays for them, measured with the process's own CPU clock.

A ballot is signed once by the gateway and checked once by a vote worker; the events a
vote worker publishes (``ballots.recorded``, one per counting shard and batch) are
signed once and checked once by a tally worker, and a batch's receipts to one gateway
are signed once by the worker and checked once by the gateway, so these cost per ballot
their price divided by the ballots they carry. This measures them with the real
``Signer`` and ``Verifier`` on envelopes shaped like the ballot path's (a real voting
token inside),
and, beside them, what writing and reading a cast costs on the wire and in canonical
form with ``urne.platform.jsonbytes`` (orjson) and with the standard library's json.

    python -m loadtests.envelopes [--ballots 20000] [--per-event 50] [--per-reply 25]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from urne.contracts import wrap
from urne.contracts.commands import CastBallot
from urne.contracts.events import BallotsRecorded, RecordedBallot
from urne.contracts.ids import new_ballot_id, new_tracker
from urne.crypto.keys import IDENTITY_TOKEN_KEY, generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer
from urne.messaging.signatures import BATCH_REPLY_TYPE, batch_reply, load_signer, load_verifier
from urne.platform import jsonbytes


def cpu_per_item(fn, items: list) -> float:  # type: ignore[no-untyped-def]
    started = time.process_time()
    for item in items:
        fn(item)
    return (time.process_time() - started) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=20_000)
    parser.add_argument("--per-event", type=int, default=50)
    parser.add_argument("--per-reply", type=int, default=25)  # a batch's receipts
    args = parser.parse_args()
    keys = Path(tempfile.mkdtemp(prefix="urne-envelopes-"))
    generate_keys(keys)
    gateway, vote = load_signer(keys, "gateway"), load_signer(keys, "vote")
    verifier = load_verifier(keys, "bench")
    issuer = TokenIssuer(load_signing_key(keys, IDENTITY_TOKEN_KEY))
    now = datetime.now(UTC)

    casts = [wrap(CastBallot(poll_id="p1", voting_token=issuer.voting_token(
        uuid.uuid4().hex * 2, "p1")[0], choice={"answer": "yes"}, ballot_id=new_ballot_id(),
        tracker=new_tracker(), received_at=now), "gateway") for _ in range(args.ballots)]
    signed_casts = [gateway.sign(c) for c in casts]
    sign_cast = cpu_per_item(gateway.sign, casts)
    check_cast = cpu_per_item(verifier.check, signed_casts)

    recorded = [RecordedBallot(poll_id="p1", ballot_id=new_ballot_id(), tracker=new_tracker(),
                               voter_key=uuid.uuid4().hex * 2, sequence=1,
                               choice={"answer": "yes"}, channel="online", recorded_at=now)
                for _ in range(args.per_event)]
    events = [wrap(BallotsRecorded(ballots=recorded, shard=0), "vote")
              for _ in range(max(1, args.ballots // args.per_event))]
    signed_events = [vote.sign(e) for e in events]
    sign_event = cpu_per_item(vote.sign, events)
    check_event = cpu_per_item(verifier.check, signed_events)

    # The wire: a cast written by the gateway and read by a vote worker, with this
    # project's JSON (orjson) and with the standard library's, beside it.
    wire = [jsonbytes.dumps(c) for c in signed_casts]
    encode_cast = cpu_per_item(jsonbytes.dumps, signed_casts)
    decode_cast = cpu_per_item(jsonbytes.loads, wire)
    stdlib = {"encode_cast": cpu_per_item(lambda c: json.dumps(c).encode(), signed_casts),
              "decode_cast": cpu_per_item(json.loads, wire),
              "canonical_cast": cpu_per_item(lambda c: json.dumps(
                  c, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(), casts),
              "canonical_event": cpu_per_item(lambda e: json.dumps(
                  e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(), events)}
    canonical_cast = cpu_per_item(jsonbytes.canonical, casts)
    canonical_event = cpu_per_item(jsonbytes.canonical, events)

    # A vote worker's receipts to one gateway for one batch, signed once together and
    # checked once by the gateway (``urne.replies.v1``).
    receipts = [(uuid.uuid4().hex, {"ok": True, "data": {
        "poll_id": "p1", "ballot_id": new_ballot_id(), "tracker": new_tracker(),
        "sequence": 1, "replaces_previous": False, "recorded_at": now.isoformat()}})
        for _ in range(args.per_reply)]
    batches = [batch_reply("vote", receipts) for _ in range(max(1, args.ballots // 20))]
    signed_batches = [vote.sign(b) for b in batches]
    sign_reply = cpu_per_item(vote.sign, batches)
    check_reply = cpu_per_item(lambda b: verifier.answer(b, "vote", BATCH_REPLY_TYPE),
                               signed_batches)

    per_ballot = sign_cast + check_cast + (sign_event + check_event) / args.per_event + \
        (sign_reply + check_reply) / args.per_reply
    print(json.dumps({
        "benchmark": "signed_envelopes", "ballots": args.ballots,
        "ballots_per_event": args.per_event,
        "cast_bytes": len(json.dumps(signed_casts[0])),
        "cpu_us": {"sign_cast": round(sign_cast * 1e6, 1),
                   "check_cast": round(check_cast * 1e6, 1),
                   "sign_event": round(sign_event * 1e6, 1),
                   "check_event": round(check_event * 1e6, 1),
                   "sign_reply_batch": round(sign_reply * 1e6, 1),
                   "check_reply_batch": round(check_reply * 1e6, 1)},
        "ballots_per_reply_batch": args.per_reply,
        "cpu_ms_per_ballot": round(per_ballot * 1e3, 3),
        "json_cpu_us": {"encode_cast": round(encode_cast * 1e6, 1),
                        "decode_cast": round(decode_cast * 1e6, 1),
                        "canonical_cast": round(canonical_cast * 1e6, 1),
                        "canonical_event": round(canonical_event * 1e6, 1)},
        "json_cpu_us_standard_library": {k: round(v * 1e6, 1) for k, v in stdlib.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
