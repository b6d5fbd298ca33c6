"""The voting token's check, the building block a ballot pays twice in the distributed
profile (gateway and vote worker): PyJWT with OpenSSL against urne's own check with
libsodium (``urne/crypto/jws.py``), and the raw Ed25519 operations under both, measured
with the process's own CPU clock in one run. Prints JSON.

    python -m loadtests.tokens [--tokens 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from urne.crypto import jws
from urne.crypto.keys import KeySet, SigningKey
from urne.crypto.tokens import ALGORITHMS, ISSUER, VOTE_AUDIENCE, TokenIssuer


def cpu_us(fn: Callable[[Any], object], items: list[Any]) -> float:
    started = time.process_time()
    for item in items:
        fn(item)
    return round((time.process_time() - started) / len(items) * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()
    key = SigningKey("identity-token", Ed25519PrivateKey.generate())
    issuer, keys = TokenIssuer(key), KeySet.of(key.public)
    # Distinct tokens shaped as urne's (a pseudonym, a poll, a district), none remembered.
    tokens = [issuer.voting_token(os.urandom(32).hex(), "01JDZQ4R8X7P2N5K3M6V9T0W1Y",
                                  "Centre")[0] for _ in range(args.tokens)]
    messages = [os.urandom(200) for _ in range(args.tokens)]
    signed = [(key.sign(m), m) for m in messages]

    def pyjwt(token: str) -> object:
        return jwt.decode(token, key.public.key, algorithms=ALGORITHMS, audience=VOTE_AUDIENCE,
                          issuer=ISSUER, options={"require": ["exp", "iat", "sub", "aud"]})

    report = {
        "benchmark": "voting_token_check",
        "tokens": args.tokens,
        "token_check_us": {
            "pyjwt_openssl": cpu_us(pyjwt, tokens),
            "urne_jws_libsodium": cpu_us(lambda t: jws.verified_payload(t, keys), tokens),
        },
        "ed25519_us": {
            "verify_openssl": cpu_us(lambda s: key.public.key.verify(*s), signed),
            "verify_libsodium": cpu_us(lambda s: key.public.verify(*s), signed),
            "sign_openssl": cpu_us(key.key.sign, messages),
            "sign_libsodium": cpu_us(key.sign, messages),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
