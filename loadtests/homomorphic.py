"""What the Belenios-style alternative to plain-choice receipts would cost: encrypted
ballots (exponential ElGamal on the Ed25519 group, libsodium's through PyNaCl), each
answer proven to be 0 or 1 and the ballot to choose exactly one answer (disjunctive and
plain Chaum-Pedersen proofs, Fiat-Shamir with SHA-512), counted homomorphically and
decrypted once. Prints JSON: the cost per ballot of encrypting and proving (the voter's
device), of checking (the vote service at intake, and every auditor), of adding it to
the encrypted tally, and the projection to 1,000,000 ballots beside the plain-record
verifier urne has (docs/performance.md, "Verifying a published result offline").

    python -m loadtests.homomorphic [--ballots 2000] [--answers 3]

A measurement prototype, not urne's cryptography: one trustee, no threshold
decryption, no ballot signature or credential, no weeding of duplicate ciphertexts. A
real deployment would add those (Belenios, Cortier et al.); each adds to the figures,
none removes from them. Why it matters: a tracker paired with a plain choice lets a
voter prove their vote to a buyer (docs/auditing.md, "What a receipt proves").
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import time
from dataclasses import dataclass

import nacl.bindings as sodium

ORDER = 2**252 + 27742317777372353535851937790883648493  # of the Ed25519 prime subgroup
PLAIN_VERIFIER_S_PER_MILLION = 17.09  # urne audit verify --bundle, 1,000,952 ballots


def scalar(n: int) -> bytes:
    return (n % ORDER).to_bytes(32, "little")


def random_scalar() -> bytes:
    return sodium.crypto_core_ed25519_scalar_reduce(os.urandom(64))


def base(k: bytes) -> bytes:
    return sodium.crypto_scalarmult_ed25519_base_noclamp(k)


def mul(k: bytes, point: bytes) -> bytes:
    return sodium.crypto_scalarmult_ed25519_noclamp(k, point)


add, sub = sodium.crypto_core_ed25519_add, sodium.crypto_core_ed25519_sub
s_add, s_sub, s_mul = (sodium.crypto_core_ed25519_scalar_add,
                       sodium.crypto_core_ed25519_scalar_sub,
                       sodium.crypto_core_ed25519_scalar_mul)
G = base(scalar(1))


def challenge(*parts: bytes) -> bytes:
    return sodium.crypto_core_ed25519_scalar_reduce(hashlib.sha512(b"".join(parts)).digest())


@dataclass(frozen=True)
class Ciphertext:
    a: bytes  # r·G
    b: bytes  # m·G + r·Y


@dataclass(frozen=True)
class Ballot:
    answers: list[Ciphertext]
    bits: list[tuple[bytes, bytes, bytes, bytes]]  # (c0, c1, s0, s1) per answer
    overall: tuple[bytes, bytes]  # (c, s): the answers add up to exactly one

    def size(self) -> int:
        """Bytes as JSON with base64url fields, the way urne writes documents."""
        def b64(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return len(json.dumps({
            "answers": [[b64(c.a), b64(c.b)] for c in self.answers],
            "proofs": [[b64(x) for x in p] for p in self.bits],
            "overall": [b64(x) for x in self.overall]}, separators=(",", ":")))


def shifted(c: Ciphertext, m: int) -> bytes:
    """B - m·G: the point a proof that ``c`` encrypts ``m`` is about."""
    return c.b if m == 0 else sub(c.b, G) if m == 1 else sub(c.b, base(scalar(m)))


def encrypt(public: bytes, choice: int, answers: int) -> Ballot:
    return encrypt_bits(public, [int(i == choice) for i in range(answers)])


def encrypt_bits(public: bytes, bits: list[int]) -> Ballot:
    """A ballot whose answers encrypt ``bits`` (an honest one has a single 1)."""
    ciphertexts, proofs, nonces = [], [], []
    for m in bits:
        r = random_scalar()
        c = Ciphertext(base(r), add(G, mul(r, public)) if m else mul(r, public))
        # Disjunctive proof: the real branch m, the other one simulated.
        fake, w = 1 - m, random_scalar()
        c_fake, s_fake = random_scalar(), random_scalar()
        commit = {m: (base(w), mul(w, public)),
                  fake: (sub(base(s_fake), mul(c_fake, c.a)),
                         sub(mul(s_fake, public), mul(c_fake, shifted(c, fake))))}
        total = challenge(public, c.a, c.b, *commit[0], *commit[1])
        c_real = s_sub(total, c_fake)
        s_real = s_add(w, s_mul(c_real, r))
        cs, ss = {m: c_real, fake: c_fake}, {m: s_real, fake: s_fake}
        ciphertexts.append(c)
        proofs.append((cs[0], cs[1], ss[0], ss[1]))
        nonces.append(r)
    # Overall: (ΣA, ΣB - G) encrypts 0 under the nonce Σr.
    total_r = nonces[0]
    for r in nonces[1:]:
        total_r = s_add(total_r, r)
    sum_a, sum_b = summed(ciphertexts)
    w = random_scalar()
    c = challenge(public, sum_a, sum_b, base(w), mul(w, public))
    return Ballot(ciphertexts, proofs, (c, s_add(w, s_mul(c, total_r))))


def summed(ciphertexts: list[Ciphertext]) -> tuple[bytes, bytes]:
    a, b = ciphertexts[0].a, ciphertexts[0].b
    for c in ciphertexts[1:]:
        a, b = add(a, c.a), add(b, c.b)
    return a, b


def valid(public: bytes, ballot: Ballot) -> bool:
    """What the vote service and every auditor check, for every ballot."""
    try:
        for c, (c0, c1, s0, s1) in zip(ballot.answers, ballot.bits, strict=True):
            if not (sodium.crypto_core_ed25519_is_valid_point(c.a)
                    and sodium.crypto_core_ed25519_is_valid_point(c.b)):
                return False
            commits = []
            for j, cj, sj in ((0, c0, s0), (1, c1, s1)):
                commits += [sub(base(sj), mul(cj, c.a)),
                            sub(mul(sj, public), mul(cj, shifted(c, j)))]
            if s_add(c0, c1) != challenge(public, c.a, c.b, *commits):
                return False
        sum_a, sum_b = summed(ballot.answers)
        c, s = ballot.overall
        a = sub(base(s), mul(c, sum_a))
        b = sub(mul(s, public), mul(c, sub(sum_b, G)))
        return c == challenge(public, sum_a, sum_b, a, b)
    except (RuntimeError, ValueError):  # libsodium refuses an invalid or small-order point
        return False


IDENTITY = bytes([1]) + bytes(31)  # the neutral point's encoding


def discrete_log(point: bytes, most: int) -> int:
    """m with m·G = point, 0 <= m <= most (baby steps, giant steps)."""
    step = int(most ** 0.5) + 1
    table, current = {IDENTITY: 0}, G
    for j in range(1, step):
        table[current] = j
        current = add(current, G)
    giant = base(scalar(-step))
    remaining = point
    for i in range(step + 1):
        if remaining in table:
            return i * step + table[remaining]
        remaining = add(remaining, giant)
    raise ValueError(f"no discrete logarithm up to {most}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=2000)
    parser.add_argument("--answers", type=int, default=3, help="yes, no, abstain: 3")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    secret = random_scalar()
    public = base(secret)
    choices = [rng.randrange(args.answers) for _ in range(args.ballots)]

    started = time.process_time()
    ballots = [encrypt(public, choice, args.answers) for choice in choices]
    encrypt_s = time.process_time() - started
    started = time.process_time()
    checked = [valid(public, b) for b in ballots]
    verify_s = time.process_time() - started
    started = time.process_time()
    totals = [summed([b.answers[i] for b in ballots]) for i in range(args.answers)]
    aggregate_s = time.process_time() - started
    started = time.process_time()
    counts = [discrete_log(sub(b, mul(secret, a)), args.ballots) for a, b in totals]
    decrypt_s = time.process_time() - started

    # Self-checks: the decrypted counts are the plain ones; a ballot that gives two
    # answers (each a proven 0 or 1, but they add up to 2), or whose proof was touched,
    # is refused.
    doubled = encrypt_bits(public, [1, 1, *[0] * (args.answers - 2)])
    honest = encrypt(public, 0, args.answers)
    c0, c1, s0, s1 = honest.bits[0]
    touched = Ballot(honest.answers, [(c0, c1, s_add(s0, scalar(1)), s1), *honest.bits[1:]],
                     honest.overall)
    per_ballot_verify_ms = verify_s / args.ballots * 1000
    million_s = per_ballot_verify_ms * 1_000_000 / 1000
    print(json.dumps({
        "ballots": args.ballots, "answers": args.answers,
        "all_valid": all(checked),
        "counts_match": counts == [choices.count(i) for i in range(args.answers)],
        "refuses_two_answers": not valid(public, doubled),
        "refuses_a_touched_proof": not valid(public, touched),
        "encrypt_and_prove_ms": round(encrypt_s / args.ballots * 1000, 3),
        "verify_ms": round(per_ballot_verify_ms, 3),
        "aggregate_us": round(aggregate_s / args.ballots * 1e6, 1),
        "decrypt_s": round(decrypt_s, 3),
        "ballot_bytes": ballots[0].size(),
        "million_verify_cpu_s": round(million_s, 1),
        "million_verify_s_on_2_cores": round(million_s / 2, 1),
        "plain_verifier_s_per_million": PLAIN_VERIFIER_S_PER_MILLION,
        "ratio_to_plain": round(million_s / PLAIN_VERIFIER_S_PER_MILLION, 1),
    }))


if __name__ == "__main__":
    main()
