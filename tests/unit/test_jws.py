"""The EdDSA JWS check of the ballot path (urne/crypto/jws.py) and libsodium's
signatures (urne/crypto/keys.py), against the RFCs' own vectors and against PyJWT."""

from __future__ import annotations

import base64
import json
import os
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from urne.crypto import jws
from urne.crypto.keys import KeySet, SigningKey, b64url
from urne.crypto.tokens import ISSUER, VOTE_AUDIENCE, InvalidToken, TokenIssuer, TokenVerifier

pytestmark = pytest.mark.unit

# RFC 8037, appendix A.1 (the key) and A.4 (a JWS signed with it), copied from the RFC.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_JWS = ("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
               "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_"
               "MuM0KAg")
# RFC 8032, section 7.1, TEST 1: secret key, public key, signature of the empty message.
RFC8032_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIGNATURE = ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb88215"
                     "90a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def rfc8037_key() -> SigningKey:
    d = base64.urlsafe_b64decode(RFC8037_D + "=")
    return SigningKey("identity-token", Ed25519PrivateKey.from_private_bytes(d))


def test_rfc8032_test_1_signs_and_verifies() -> None:
    key = SigningKey("k", Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_SECRET)))
    assert key.public.raw.hex() == RFC8032_PUBLIC
    assert key.sign(b"").hex() == RFC8032_SIGNATURE
    assert key.public.verify(bytes.fromhex(RFC8032_SIGNATURE), b"")
    assert not key.public.verify(bytes.fromhex(RFC8032_SIGNATURE), b"\x00")


def test_rfc8037_a4_verifies_and_is_signed_the_same() -> None:
    key = rfc8037_key()
    keys = KeySet.of(key.public)
    assert jws.verified_bytes(RFC8037_JWS, keys) == b"Example of Ed25519 signing"
    head, payload, signature = RFC8037_JWS.split(".")
    assert b64url(key.sign(f"{head}.{payload}".encode())) == signature


def test_libsodium_and_openssl_make_the_same_signatures() -> None:
    key = SigningKey("k", Ed25519PrivateKey.generate())
    for size in (0, 1, 64, 1000):
        message = os.urandom(size)
        assert key.sign(message) == key.key.sign(message)  # libsodium, then OpenSSL
        key.public.key.verify(key.sign(message), message)  # OpenSSL accepts libsodium's


@pytest.mark.parametrize("flip", [0, 31, 32, 63])
def test_a_flipped_signature_bit_is_refused(flip: int) -> None:
    keys = KeySet.of(rfc8037_key().public)
    head, payload, signature = RFC8037_JWS.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[flip] ^= 0x01
    with pytest.raises(jws.MalformedToken, match="does not match"):
        jws.verified_bytes(f"{head}.{payload}.{b64url(bytes(raw))}", keys)


def test_a_changed_payload_is_refused() -> None:
    keys = KeySet.of(rfc8037_key().public)
    head, _, signature = RFC8037_JWS.split(".")
    with pytest.raises(jws.MalformedToken, match="does not match"):
        jws.verified_bytes(f"{head}.{b64url(b'Example of Ed25519 signinG')}.{signature}", keys)


@pytest.mark.parametrize("token, why", [
    ("", "three segments"),
    ("a.b", "three segments"),
    ("a.b.c.d", "three segments"),
    (RFC8037_JWS + "=", "base64url"),  # padding is not base64url as JWS writes it
    ("eyJhbGciOiJFZERTQSJ9=.e30.AAAA", "base64url"),
    ("eyJhbGciOiJFZERTQSJ9.e30." + "A" * 84, "not 64 bytes"),  # 63 bytes
    ("e30.e30." + "A" * 86, "algorithm must be EdDSA"),  # {} : no alg
    ("W10.e30." + "A" * 86, "not a JSON object"),  # [] as the header
    ("bm9wZQ.e30." + "A" * 86, "not JSON"),  # "nope"
    ("x" * 9000 + ".e30.e30", "three segments"),  # too large to be ours
    ("eyJhbGciOiJFZERTQSJ9.é30." + "A" * 86, "payload is not base64url"),  # not ASCII
    (b64url(b"[" * 3000) + ".e30." + "A" * 86, "header is not JSON"),  # nested too deep
])
def test_malformed_tokens_say_why(token: str, why: str) -> None:
    with pytest.raises(jws.MalformedToken, match=why):
        jws.verified_bytes(token, KeySet.of(rfc8037_key().public))


@pytest.mark.parametrize("head", [
    {"alg": "EdDSA", "crit": ["exp"]},
    {"alg": "eddsa"},
    {"alg": "Ed25519"},
    {"alg": "none"},
    {"alg": "HS256"},
])
def test_only_plain_eddsa_headers_are_taken(head: dict) -> None:
    key = rfc8037_key()
    signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(b'{}')}"
    token = f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"  # genuinely signed
    with pytest.raises(jws.MalformedToken):
        jws.verified_bytes(token, KeySet.of(key.public))


def test_a_token_that_is_not_text_is_refused() -> None:
    with pytest.raises(jws.MalformedToken):
        jws.verified_bytes(b"a.b.c", KeySet.of(rfc8037_key().public))  # type: ignore[arg-type]


def test_the_payload_of_a_good_signature_must_be_a_json_object() -> None:
    with pytest.raises(jws.MalformedToken, match="payload is not JSON"):
        jws.verified_payload(RFC8037_JWS, KeySet.of(rfc8037_key().public))


def test_pyjwt_and_this_check_agree_on_issued_tokens() -> None:
    key = SigningKey("identity-token", Ed25519PrivateKey.generate())
    issuer, verifier = TokenIssuer(key), TokenVerifier(key.public)
    for n in range(20):
        token, _ = issuer.voting_token(f"voter-{n}", "poll-é", district=None if n % 2 else "Nord")
        ours = jws.verified_payload(token, KeySet.of(key.public))
        theirs = jwt.decode(token, key.public.key, algorithms=["EdDSA"], audience=VOTE_AUDIENCE,
                            issuer=ISSUER)
        assert ours == theirs
        assert verifier.voting(token).voter_key == f"voter-{n}"


@pytest.mark.parametrize("claims, why", [
    ({"exp": "soon"}, "exp claim must be an integer"),
    ({"exp": True}, "exp claim must be an integer"),
    ({"iat": 1.5}, "iat claim must be an integer"),
    ({"iat": "now"}, "iat claim must be an integer"),
    ({"iat_ahead": 3600}, "not yet valid"),
    ({"nbf_ahead": 3600}, "not yet valid"),
    ({"aud": ["urne-api"]}, "audience"),
    ({"aud": None}, "audience"),
    ({"sub": 42}, "sub claim must be a string"),
])
def test_claims_are_checked_as_rfc7519_registers_them(claims: dict, why: str) -> None:
    key = SigningKey("identity-token", Ed25519PrivateKey.generate())
    now = int(time.time())
    body = {"sub": "k", "poll": "p", "aud": VOTE_AUDIENCE, "iss": ISSUER, "iat": now,
            "exp": now + 600}
    if "iat_ahead" in claims:
        body["iat"] = now + claims.pop("iat_ahead")
    if "nbf_ahead" in claims:
        body["nbf"] = now + claims.pop("nbf_ahead")
    token = jwt.encode({**body, **claims}, key.key, algorithm="EdDSA")
    with pytest.raises(InvalidToken, match=why):
        TokenVerifier(key.public).voting(token)


def test_an_audience_list_holding_ours_is_taken() -> None:
    key = SigningKey("identity-token", Ed25519PrivateKey.generate())
    now = int(time.time())
    token = jwt.encode({"sub": "k", "poll": "p", "aud": ["other", VOTE_AUDIENCE],
                        "iss": ISSUER, "iat": now, "exp": now + 60}, key.key, algorithm="EdDSA")
    assert TokenVerifier(key.public).voting(token).poll_id == "p"
