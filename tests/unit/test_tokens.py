"""EdDSA JWTs: round trips, expiry, audience, foreign keys and algorithm pinning."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest

from urne.crypto.keys import IDENTITY_TOKEN_KEY, SigningKey, b64url, generate_keys, load_signing_key
from urne.crypto.tokens import (
    API_AUDIENCE,
    ISSUER,
    VOTE_AUDIENCE,
    InvalidToken,
    TokenIssuer,
    TokenVerifier,
    agent_key,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def issuer(identity_key: SigningKey) -> TokenIssuer:
    return TokenIssuer(identity_key)


@pytest.fixture
def verifier(identity_key: SigningKey) -> TokenVerifier:
    return TokenVerifier(identity_key.public)


def craft(header: dict, claims: dict, sign=lambda signing_input: b"") -> str:
    """A JWT assembled by hand, to try what PyJWT would refuse to produce."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    return f"{head}.{body}.{b64url(sign(signing_input))}"


def voting_claims(**extra: object) -> dict:
    now = int(time.time())
    return {"sub": "pseudonym", "poll": "p1", "aud": VOTE_AUDIENCE, "iss": ISSUER,
            "iat": now, "exp": now + 600, **extra}


def test_access_token_round_trip(issuer: TokenIssuer, verifier: TokenVerifier,
                                 identity_key: SigningKey) -> None:
    token, exp = issuer.access_token("person-1", "organiser")
    claims = verifier.access(token)
    assert (claims.person_id, claims.role) == ("person-1", "organiser")
    assert exp - time.time() == pytest.approx(issuer.access_ttl, abs=5)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == identity_key.public.kid


def test_voting_token_round_trip(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token, exp = issuer.voting_token("abc123", "poll-9")
    claims = verifier.voting(token)
    assert claims.voter_key == "abc123"
    assert claims.poll_id == "poll-9"
    assert exp - time.time() == pytest.approx(issuer.voting_ttl, abs=5)


def test_an_agents_name_travels_in_the_token_and_nothing_else_does(
        issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    agent = agent_key("agent-1", "poll-9")
    assert agent == hashlib.sha256(b"urne.agent\x00agent-1\x00poll-9").hexdigest()[:32]
    desk = verifier.voting(issuer.voting_token("k", "poll-9", channel="desk", agent=agent)[0])
    assert (desk.channel, desk.agent) == ("desk", agent)
    assert verifier.voting(issuer.voting_token("k", "poll-9")[0]).agent is None
    with pytest.raises(ValueError, match="not an agent key"):
        issuer.voting_token("k", "poll-9", channel="desk", agent="agent-1")  # a person id
    for claim in ("agent-1", 7, "A" * 32):  # signed, but not an agent's name
        forged, _ = issuer._sign({"sub": "k", "poll": "poll-9", "aud": VOTE_AUDIENCE,
                                  "channel": "desk", "agent": claim}, 60)
        with pytest.raises(InvalidToken, match="agent"):
            verifier.voting(forged)


def test_tokens_are_unique_per_issue(issuer: TokenIssuer) -> None:
    assert issuer.voting_token("k", "p")[0] != issuer.voting_token("k", "p")[0]


def test_expired_tokens_are_refused(identity_key: SigningKey, verifier: TokenVerifier) -> None:
    expired = TokenIssuer(identity_key, access_ttl=-10, voting_ttl=-10)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.access(expired.access_token("person-1", "participant")[0])
    with pytest.raises(InvalidToken, match="expired"):
        verifier.voting(expired.voting_token("k", "p1")[0])


def test_a_token_signed_by_another_key_is_refused(tmp_path: Path, identity_key: SigningKey,
                                                  verifier: TokenVerifier) -> None:
    generate_keys(tmp_path / "other", names=(IDENTITY_TOKEN_KEY,))
    other = load_signing_key(tmp_path / "other", IDENTITY_TOKEN_KEY)
    assert other.public.kid != identity_key.public.kid
    forged = TokenIssuer(other)
    with pytest.raises(InvalidToken):
        verifier.access(forged.access_token("person-1", "organiser")[0])
    with pytest.raises(InvalidToken):
        verifier.voting(forged.voting_token("k", "p1")[0])


def test_audiences_do_not_mix(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    access, _ = issuer.access_token("person-1", "participant")
    voting, _ = issuer.voting_token("k", "p1")
    with pytest.raises(InvalidToken, match=r"[Aa]udience"):
        verifier.voting(access)
    with pytest.raises(InvalidToken, match=r"[Aa]udience"):
        verifier.access(voting)


def test_wrong_issuer_and_missing_claims_are_refused(identity_key: SigningKey,
                                                    verifier: TokenVerifier) -> None:
    def signed(claims: dict) -> str:
        return jwt.encode(claims, identity_key.key, algorithm="EdDSA")

    with pytest.raises(InvalidToken):
        verifier.voting(signed(voting_claims(iss="someone-else")))
    for missing in ("exp", "iat", "sub", "aud", "iss"):
        claims = voting_claims()
        del claims[missing]
        with pytest.raises(InvalidToken):
            verifier.voting(signed(claims))
    claims = voting_claims()
    del claims["poll"]
    with pytest.raises(InvalidToken, match="no poll"):
        verifier.voting(signed(claims))


def test_a_genuine_hand_made_token_verifies(identity_key: SigningKey,
                                            verifier: TokenVerifier) -> None:
    # Checks the crafting helper itself, so the refusals below are meaningful.
    token = craft({"alg": "EdDSA", "typ": "JWT"}, voting_claims(), identity_key.sign)
    assert verifier.voting(token).voter_key == "pseudonym"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(alg: str, verifier: TokenVerifier) -> None:
    token = craft({"alg": alg, "typ": "JWT"}, voting_claims())
    with pytest.raises(InvalidToken):
        verifier.voting(token)
    with pytest.raises(InvalidToken):  # "none" with a junk signature either
        verifier.voting(token + "c2lnbmF0dXJl")


def test_alg_tampered_on_a_real_signature_is_refused(identity_key: SigningKey,
                                                     verifier: TokenVerifier) -> None:
    genuine = craft({"alg": "EdDSA", "typ": "JWT"}, voting_claims(), identity_key.sign)
    _, body, sig = genuine.split(".")
    for alg in ("none", "HS256", "ES256", "RS256"):
        head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        with pytest.raises(InvalidToken):
            verifier.voting(f"{head}.{body}.{sig}")


@pytest.mark.parametrize("secret", ["pem", "raw", "kid"])
def test_hs256_with_the_public_key_as_secret_is_refused(secret: str,
                                                         verifier: TokenVerifier) -> None:
    # The classic key-confusion attack: HMAC "signed" with what the verifier holds.
    public = verifier.keys.current
    key = {"pem": public.pem().encode(), "raw": public.raw_b64url().encode(),
           "kid": public.kid.encode()}[secret]
    token = craft({"alg": "HS256", "typ": "JWT"}, voting_claims(),
                  lambda signing_input: hmac.new(key, signing_input, hashlib.sha256).digest())
    with pytest.raises(InvalidToken):
        verifier.voting(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b"])
def test_malformed_tokens_are_refused(token: str, verifier: TokenVerifier) -> None:
    with pytest.raises(InvalidToken):
        verifier.voting(token)
    with pytest.raises(InvalidToken):
        verifier.access(token)


def test_issuer_claims(issuer: TokenIssuer) -> None:
    token, _ = issuer.access_token("person-1", "participant")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["aud"] == API_AUDIENCE
    assert set(claims) >= {"sub", "role", "iat", "exp", "jti"}


def test_a_remembered_token_still_expires(identity_key: SigningKey,
                                          verifier: TokenVerifier) -> None:
    expired, exp = TokenIssuer(identity_key, voting_ttl=-5).voting_token("k", "p1")
    # As if it had been verified (and remembered) while it was still valid:
    verifier._verified[(VOTE_AUDIENCE, expired)] = {"sub": "k", "poll": "p1", "exp": exp}
    with pytest.raises(InvalidToken):
        verifier.voting(expired)
    assert (VOTE_AUDIENCE, expired) not in verifier._verified


def test_a_verified_token_is_remembered(issuer: TokenIssuer, verifier: TokenVerifier,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    token, _ = issuer.voting_token("k", "p1")
    assert verifier.voting(token).voter_key == "k"
    monkeypatch.setattr(verifier, "keys", None)  # no key: only memory can answer now
    assert verifier.voting(token).voter_key == "k"


def test_a_refused_token_is_not_remembered(identity_key: SigningKey,
                                           verifier: TokenVerifier) -> None:
    token = TokenIssuer(identity_key).voting_token("k", "p1")[0]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.voting(tampered)
    assert verifier.voting(token).poll_id == "p1"
    # Remembered per audience: a voting token is still no access token.
    with pytest.raises(InvalidToken):
        verifier.access(token)


# --- the district claim -----------------------------------------------------------------


def test_a_voting_token_carries_the_district_it_was_issued_with(
        issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token, _ = issuer.voting_token("k", "p1", "north")
    assert jwt.decode(token, options={"verify_signature": False})["district"] == "north"
    claims = verifier.voting(token)
    assert (claims.voter_key, claims.poll_id, claims.district) == ("k", "p1", "north")
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_without_a_district_the_token_has_no_district_claim(
        issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    for token in (issuer.voting_token("k", "p1")[0], issuer.voting_token("k", "p1", None)[0]):
        assert "district" not in jwt.decode(token, options={"verify_signature": False})
        assert verifier.voting(token).district is None


def test_a_district_claim_is_read_tolerantly(identity_key: SigningKey,
                                           verifier: TokenVerifier) -> None:
    def signed(**extra: object) -> str:
        return jwt.encode(voting_claims(**extra), identity_key.key, algorithm="EdDSA")

    assert verifier.voting(signed()).district is None  # a token from before districts
    assert verifier.voting(signed(district=None)).district is None
    assert verifier.voting(signed(district="sud")).district == "sud"


@pytest.mark.parametrize("district", [7, 1.5, True, ["north"], {"name": "north"}])
def test_a_district_that_is_not_a_string_makes_the_token_invalid(
        identity_key: SigningKey, verifier: TokenVerifier, district: object) -> None:
    token = jwt.encode(voting_claims(district=district), identity_key.key, algorithm="EdDSA")
    for _ in range(2):  # refused again when its signature is already known to be good
        with pytest.raises(InvalidToken, match="district"):
            verifier.voting(token)


def test_a_remembered_token_keeps_its_district(issuer: TokenIssuer, verifier: TokenVerifier,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    token, _ = issuer.voting_token("k", "p1", "north")
    assert verifier.voting(token).district == "north"
    monkeypatch.setattr(verifier, "keys", None)  # only memory can answer now
    assert verifier.voting(token) == verifier.voting(token)
    assert verifier.voting(token).district == "north"


def test_a_district_claim_does_not_survive_tampering(identity_key: SigningKey,
                                                     verifier: TokenVerifier) -> None:
    genuine = craft({"alg": "EdDSA", "typ": "JWT"}, voting_claims(district="north"),
                    identity_key.sign)
    head, _, sig = genuine.split(".")
    moved = b64url(json.dumps(voting_claims(district="south")).encode())
    with pytest.raises(InvalidToken):
        verifier.voting(f"{head}.{moved}.{sig}")
    assert verifier.voting(genuine).district == "north"


# --- the channel claim ------------------------------------------------------------------


def test_a_paper_ballots_token_says_paper_and_an_online_one_says_nothing(
        issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    paper = issuer.voting_token("k", "p1", channel="paper")[0]
    assert jwt.decode(paper, options={"verify_signature": False})["channel"] == "paper"
    assert verifier.voting(paper).channel == "paper"
    online = issuer.voting_token("k", "p1")[0]
    assert "channel" not in jwt.decode(online, options={"verify_signature": False})
    assert verifier.voting(online).channel == "online"
    with pytest.raises(ValueError, match="channel"):
        issuer.voting_token("k", "p1", channel="carrier-pigeon")


@pytest.mark.parametrize("channel", ["carrier-pigeon", "", 7, None, ["paper"]])
def test_a_channel_no_one_issues_makes_the_token_invalid(
        identity_key: SigningKey, verifier: TokenVerifier, channel: object) -> None:
    token = jwt.encode(voting_claims(channel=channel), identity_key.key, algorithm="EdDSA")
    with pytest.raises(InvalidToken, match="channel"):
        verifier.voting(token)
