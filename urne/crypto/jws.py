"""Checking an EdDSA JSON Web Token (RFC 7519) on the ballot path, with libsodium.

Every ballot's voting token is checked twice in the distributed profile (by the gateway
and by the vote worker that stores it), and PyJWT's decode took about 0.27 ms of CPU a
check on this machine, of which OpenSSL's Ed25519 verification was 0.15 ms and PyJWT's
generality (options merging, algorithm lookup, key preparation) most of the rest.
libsodium verifies in 0.06 ms (``python -m loadtests.tokens``). Tokens are still *made*
by PyJWT (``TokenIssuer``); this module only checks the one form urne issues, and
refuses everything else:

- exactly three base64url segments (RFC 7515 compact serialisation, no padding);
- a protected header that is a JSON object whose ``alg`` is ``EdDSA`` (RFC 8037) and
  nothing else: no ``none``, no HMAC, so no key confusion; no ``crit`` (no extension
  is understood, RFC 7515 §4.1.11);
- a 64-byte Ed25519 signature over the ASCII ``header.payload`` by the key the ``kid``
  names (the current key when there is none), checked before the payload is parsed;
- a payload that is a JSON object (its claims are checked by ``TokenVerifier``).

Golden vector: RFC 8037, appendix A.4 (``tests/unit/test_jws.py``).
"""

from __future__ import annotations

import binascii
import re
from typing import Any

from urne.crypto.keys import KeySet, PublicKey, b64url_decode
from urne.platform import jsonbytes

ALGORITHM = "EdDSA"
# base64url without padding (RFC 7515 §2): anything else in a segment is refused.
SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
MAX_TOKEN = 8192  # urne's tokens are under 1 kB; a larger one is not ours


class MalformedToken(ValueError):
    """The token is not a well-formed, correctly signed EdDSA JWS: ``str`` says why."""


def _segment(text: str, what: str) -> bytes:
    if not SEGMENT.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedToken(f"the {what} is not base64url")
    try:
        return b64url_decode(text)
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken(f"the {what} is not base64url") from exc


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = jsonbytes.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # deep nesting too
        raise MalformedToken(f"the {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise MalformedToken(f"the {what} is not a JSON object")
    return value


def header(token: str) -> dict[str, Any]:
    """The protected header, unverified (to choose the key)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 2:
        raise MalformedToken("not a compact JWS (three segments)")
    return _object(_segment(token.split(".", 1)[0], "header"), "header")


def key_for(head: dict[str, Any], keys: KeySet) -> PublicKey:
    """The key the header names: by ``kid``, else the current one; never a revoked one."""
    if head.get("alg") != ALGORITHM:
        raise MalformedToken(f"the algorithm must be {ALGORITHM}, not "
                             f"{str(head.get('alg'))[:20]!r}")
    if "crit" in head:
        raise MalformedToken("critical header extensions are not supported")
    kid = head.get("kid")
    if kid is None:
        return keys.current
    key = keys.trusted(str(kid))
    if key is None:
        raise MalformedToken(f"signed with {keys.status(str(kid)) or 'an unknown'} key "
                             f"{str(kid)[:40]!r}")
    return key


def verified_payload(token: str, keys: KeySet) -> dict[str, Any]:
    """The claims of ``token`` once its signature is checked; ``MalformedToken`` else."""
    return _object(verified_bytes(token, keys), "payload")


def verified_bytes(token: str, keys: KeySet) -> bytes:
    """The payload of ``token`` once its signature is checked; ``MalformedToken`` else."""
    key = key_for(header(token), keys)
    head, payload, signature = token.split(".")
    # Decoded before the check, so the signing input is known to be ASCII; parsed after.
    raw_payload = _segment(payload, "payload")
    raw_signature = _segment(signature, "signature")
    if len(raw_signature) != 64:
        raise MalformedToken("the signature is not 64 bytes")
    if not key.verify(raw_signature, f"{head}.{payload}".encode("ascii")):
        raise MalformedToken("the signature does not match")
    return raw_payload
