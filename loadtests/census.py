"""A city's census through identity: the gateway's CSV reader, then the identity core's
``census.import.v1`` in messages of 2,000 rows (as the gateway sends them), on SQLite or
on the local Cassandra; then claims. Prints JSON: rows/s of each step and the CPU of
this process (the store's own, Cassandra's, is not counted).

    python -m loadtests.census [--profile embedded|distributed] [--people 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from urne.contracts import wrap
from urne.contracts.commands import CENSUS_ROWS_MAX, Actor, ClaimCensusEntry, ImportCensus
from urne.crypto.keys import IDENTITY_TOKEN_KEY, generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer
from urne.gateway import census
from urne.runtime.registry import IDENTITY
from urne.services.identity.handlers import IdentityHandlers

ORGANISER = Actor(person_id="bench-organiser", role="organiser")


def csv_file(people: int, rng: random.Random) -> tuple[bytes, list[tuple[str, str, str]]]:
    """A census export (semicolons, French dates), and each person's names and birth
    date as they would type them."""
    lines = ["Nom;Prénom;Naissance;Quartier;Courriel"]
    who = []
    for i in range(people):
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(30_000))
        family, given = f"Famille-{i}", f"Prénom{rng.randrange(1000)}"
        lines.append(f"{family};{given};{born:%d/%m/%Y};q{rng.randrange(12)};"
                     f"p{i}@example.org")
        who.append((family, given, born.isoformat()))
    return ("\n".join(lines) + "\n").encode(), who


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("embedded", "distributed"), default="embedded")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="urne-census-"))
    generate_keys(folder / "keys", (IDENTITY_TOKEN_KEY,))
    issuer = TokenIssuer(load_signing_key(folder / "keys", IDENTITY_TOKEN_KEY))
    session: Any = None
    if args.profile == "embedded":
        from urne.storage.sqlite import SqliteDb

        store: Any = IDENTITY.sqlite_store(SqliteDb(folder / "identity.db",
                                                     IDENTITY.migrations.sqlite))
    else:
        from urne.platform.settings import StoreSettings
        from urne.storage.cassandra import connect, ensure_schema

        prefix = f"census_{uuid.uuid4().hex[:8]}_"
        settings = StoreSettings(cassandra_keyspace_prefix=prefix)
        session = connect(settings)
        keyspace = ensure_schema(session, settings, "identity", IDENTITY.migrations.cassandra)
        store = IDENTITY.cassandra_store(session, keyspace)
    core = IdentityHandlers(store=store, sender=None, tokens=issuer,  # type: ignore[arg-type]
                            secret="bench", code_secret="bench-code",
                            organisers=frozenset()).core()
    try:
        data, who = csv_file(args.people, random.Random(args.seed))
        cpu, wall = time.process_time(), time.perf_counter()
        rows = census.read(data, "family_name=Nom,given_name=Prénom,birth_date=Naissance,"
                                 "district=Quartier,email=Courriel")
        read_s, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
        consultation = uuid.uuid4().hex
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(rows), CENSUS_ROWS_MAX):
            reply, _ = core.handle(wrap(ImportCensus(
                consultation_id=consultation, rows=rows[start:start + CENSUS_ROWS_MAX],
                minimum_age=16, age_on=date(2026, 11, 30), actor=ORGANISER), "bench"))
            assert reply["ok"], reply
        import_s, import_cpu = time.perf_counter() - wall, time.process_time() - cpu
        sample = random.Random(args.seed + 1).sample(who, min(args.claims, len(who)))
        tokens = [issuer.access_token(f"person-{i}", "participant")[0]
                  for i in range(len(sample))]
        cpu, wall = time.process_time(), time.perf_counter()
        for (family, given, born), token in zip(sample, tokens, strict=True):
            reply, _ = core.handle(wrap(ClaimCensusEntry(
                consultation_id=consultation, access_token=token, family_name=family.upper(),
                given_name=given, birth_date=date.fromisoformat(born)), "bench"))
            assert reply["ok"], reply
        claim_s, claim_cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(json.dumps({
            "benchmark": "census_import", "profile": args.profile, "people": args.people,
            "csv_bytes": len(data),
            "read_rows_per_s": round(len(rows) / read_s),
            "read_cpu_us_per_row": round(read_cpu / len(rows) * 1e6, 1),
            "import_rows_per_s": round(len(rows) / import_s),
            "import_cpu_us_per_row": round(import_cpu / len(rows) * 1e6, 1),
            "claims": len(sample), "claims_per_s": round(len(sample) / claim_s),
            "claim_cpu_ms": round(claim_cpu / len(sample) * 1e3, 2),
        }, indent=2))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if session is not None:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
            session.cluster.shutdown()


if __name__ == "__main__":
    main()
