"""Ballots through the HTTP API of a running urne (either profile), concurrently.

    python -m loadtests.http_ballots --base http://127.0.0.1:8000 \
        --outbox urne-data/outbox/email.jsonl [--voters 300] [--concurrency 16]

Sets up a poll and signs voters in (not timed), then times the casts, then the
close until the result is published. Prints JSON. Targets only the given base
URL, which must be on this machine; the run is bounded by --voters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx

ORGANISER = "organiser@urne.example"


def _code(outbox: Path, email: str) -> str:
    for line in reversed(outbox.read_text().splitlines()):
        message = json.loads(line)
        if message["to"] == email:
            return str(message["code"])
    raise LookupError(email)


async def _login(http: httpx.AsyncClient, outbox: Path, email: str) -> dict[str, str]:
    (await http.post("/v1/auth/codes", json={"email": email})).raise_for_status()
    r = await http.post("/v1/auth/tokens", json={"email": email, "code": _code(outbox, email)})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def run(base: str, outbox: Path, voters: int, concurrency: int) -> dict:
    if urlparse(base).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load is only sent to this machine (loopback)")
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        org = await _login(http, outbox, ORGANISER)
        cid = (await http.post("/v1/consultations", headers=org,
                               json={"title": "load test"})).json()["id"]
        pid = (await http.post(f"/v1/consultations/{cid}/polls", headers=org, json={
            "rules": {"method": "yes_no_abstain", "question": "load?"}})).json()["id"]
        (await http.post(f"/v1/polls/{pid}/open", headers=org)).raise_for_status()
        run_id = uuid.uuid4().hex[:8]
        tokens = []
        for i in range(voters):
            user = await _login(http, outbox, f"load-{run_id}-{i}@example.org")
            r = await http.post(f"/v1/polls/{pid}/voting-token", headers=user)
            tokens.append(r.json()["voting_token"])

        latencies: list[float] = []
        failures: dict[str, int] = {}
        queue: asyncio.Queue[str] = asyncio.Queue()
        for t in tokens:
            queue.put_nowait(t)

        async def worker() -> None:
            while not queue.empty():
                token = queue.get_nowait()
                started = time.perf_counter()
                r = await http.post(f"/v1/polls/{pid}/ballots",
                                    headers={"Authorization": f"Bearer {token}"},
                                    json={"choice": {"answer": "yes"}})
                latencies.append(time.perf_counter() - started)
                if r.status_code != 201:
                    failures[str(r.status_code)] = failures.get(str(r.status_code), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cast_seconds = time.perf_counter() - started

        started = time.perf_counter()
        (await http.post(f"/v1/polls/{pid}/close", headers=org)).raise_for_status()
        deadline = time.monotonic() + 120
        while (r := await http.get(f"/v1/polls/{pid}/results")).status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"result not published: {r.text}")
            await asyncio.sleep(0.05)
        publish_seconds = time.perf_counter() - started
        counted = r.json()["ballots_counted"]

    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "benchmark": "ballots_over_http",
        "base": base,
        "voters": voters,
        "concurrency": concurrency,
        "ballots_per_s": round(voters / cast_seconds, 1),
        "latency_ms": {"p50": round(quantiles[49] * 1000, 1), "p95": round(quantiles[94] * 1000, 1),
                       "p99": round(quantiles[98] * 1000, 1)},
        "failures": failures,
        "close_to_published_s": round(publish_seconds, 3),
        "ballots_counted": counted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--outbox", type=Path, default=Path("urne-data/outbox/email.jsonl"))
    parser.add_argument("--voters", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.base, args.outbox, args.voters, args.concurrency)),
                     indent=2))


if __name__ == "__main__":
    main()
