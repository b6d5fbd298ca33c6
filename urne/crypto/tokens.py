"""EdDSA (Ed25519) JSON Web Tokens: access tokens for the API, voting tokens for one poll.

Made by PyJWT; checked by ``urne.crypto.jws`` (libsodium: they are checked on every
ballot). Only ``EdDSA`` is accepted on verification (no ``none``, no HMAC confusion), and
issuer, audience and expiry are always checked.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from urne.crypto import jws
from urne.crypto.keys import KeySet, PublicKey, SigningKey

ALGORITHMS = ["EdDSA"]
ISSUER = "urne-identity"
API_AUDIENCE = "urne-api"
VOTE_AUDIENCE = "urne-vote"
AGENT_KEY = re.compile(r"[0-9a-f]{32}")


class InvalidToken(Exception):
    pass


REQUIRED = ("exp", "iat", "sub", "aud", "iss")
# Seconds a token may seem issued in the future (identity's clock ahead of the
# checker's); expiry has none, as the remembered tokens' own check.
LEEWAY = 30


def _check_claims(claims: dict[str, Any], audience: str) -> None:
    """RFC 7519's registered claims as urne issues them: every one required, times as
    integers (``exp`` in the future, ``iat`` and ``nbf`` not), our issuer, the audience
    asked for (a string or a list holding it)."""
    missing = [name for name in REQUIRED if name not in claims]
    if missing:
        raise InvalidToken(f"token is missing the {', '.join(missing)} claim")
    now = time.time()
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if name in claims and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidToken(f"the {name} claim must be an integer")
    if claims["exp"] <= now:
        raise InvalidToken("token has expired")
    if claims["iat"] > now + LEEWAY or claims.get("nbf", 0) > now + LEEWAY:
        raise InvalidToken("token is not yet valid")
    if claims["iss"] != ISSUER:
        raise InvalidToken("token has an invalid issuer")
    aud = claims["aud"]
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise InvalidToken("token has an invalid audience")
    if not isinstance(claims["sub"], str):
        raise InvalidToken("the sub claim must be a string")


@dataclass(frozen=True)
class AccessClaims:
    person_id: str
    role: str


@dataclass(frozen=True)
class VotingClaims:
    voter_key: str  # the poll-scoped pseudonym
    poll_id: str
    # The voter's district, for rules with a budget per district; None when the person
    # declared none (or the token predates districts).
    district: str | None = None
    # How the ballot reaches the box: ``online`` (the voter's own), ``desk`` (the voter's
    # own ballot, cast in person at an agent's desk: an assisted vote), or ``paper`` (a
    # paper ballot an agent entered, its voter key derived from the paper's serial). The
    # ballot's channel is the token's, never the request's word.
    channel: str = "online"
    # A token to mark the person as voting on paper (paper_mark.cast.v1), good for that
    # alone: the vote service takes no ballot with it, and no mark without it.
    paper_mark: bool = False
    # The agent who cast a desk ballot or entered a paper one, as the pseudonym anyone
    # who knows the agent's person id recomputes (``agent_key``); None online.
    agent: str | None = None


# The channels a voting token may name (its "channel" claim; absent: online).
CHANNELS = ("online", "desk", "paper")


class TokenIssuer:
    def __init__(self, key: SigningKey, access_ttl: int = 3600, voting_ttl: int = 3 * 3600):
        self.key, self.access_ttl, self.voting_ttl = key, access_ttl, voting_ttl

    def _sign(self, claims: dict[str, Any], ttl: int) -> tuple[str, int]:
        now = int(time.time())
        exp = now + ttl
        token = jwt.encode({**claims, "iss": ISSUER, "iat": now, "exp": exp,
                            "jti": uuid.uuid4().hex},
                           self.key.key, algorithm="EdDSA", headers={"kid": self.key.public.kid})
        return token, exp

    def access_token(self, person_id: str, role: str) -> tuple[str, int]:
        return self._sign({"sub": person_id, "role": role, "aud": API_AUDIENCE}, self.access_ttl)

    def voting_token(self, voter_key: str, poll_id: str, district: str | None = None,
                     channel: str = "online", paper_mark: bool = False,
                     agent: str | None = None) -> tuple[str, int]:
        # Only what the vote service needs: no person, and of the person's attributes
        # only those the rules use: the district (a claim only when there is one); the
        # channel when it is not the usual one.
        claims: dict[str, Any] = {"sub": voter_key, "poll": poll_id, "aud": VOTE_AUDIENCE}
        if district is not None:
            claims["district"] = district
        if channel != "online":
            if channel not in CHANNELS:
                raise ValueError(f"no channel {channel!r}")
            claims["channel"] = channel
        if paper_mark:
            claims |= {"channel": "paper", "paper_mark": True}
        if agent is not None:
            if not AGENT_KEY.fullmatch(agent):
                raise ValueError(f"not an agent key: {agent!r}")
            claims["agent"] = agent
        return self._sign(claims, self.voting_ttl)


def agent_key(person_id: str, poll_id: str) -> str:
    """The agent's name in a poll's ballots and signed reconciliation: the first 32 hex
    digits of SHA-256("urne.agent" 0x00 person_id 0x00 poll_id). Not keyed: whoever
    knows the agent's person id recomputes it: the agent (``GET /v1/me``), the admins
    (the action log names agents by person id), and anyone if the agent wrote a
    published proposal (its ``author_id``): docs/privacy.md."""
    return hashlib.sha256(f"urne.agent\x00{person_id}\x00{poll_id}".encode()
                          ).hexdigest()[:32]


class TokenVerifier:
    """Checks tokens; remembers the ones it has checked.

    An Ed25519 verification is the costliest step of a ballot (a voter's revotes, and
    in the embedded profile the gateway and the vote service, present the same token),
    so a token verified once is remembered, by its exact text, until it expires: the
    same bytes cannot verify differently, and expiry is checked on every use.
    """

    def __init__(self, public: PublicKey | KeySet, remember: int = 100_000):
        # Selected by the token's kid: a token signed before a rotation stays valid until
        # it expires, one signed with a revoked key is refused.
        self.keys = public if isinstance(public, KeySet) else KeySet.of(public)
        self.remember = remember
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}

    def _decode(self, token: str, audience: str) -> dict[str, Any]:
        known = self._verified.get((audience, token))
        if known is not None:
            if known["exp"] > time.time():
                return known
            del self._verified[(audience, token)]
        try:
            claims = jws.verified_payload(token, self.keys)
        except jws.MalformedToken as exc:
            raise InvalidToken(str(exc)) from exc
        _check_claims(claims, audience)
        if len(self._verified) >= self.remember:
            self._verified.pop(next(iter(self._verified)))  # the oldest
        self._verified[(audience, token)] = claims
        return claims

    def access(self, token: str) -> AccessClaims:
        claims = self._decode(token, API_AUDIENCE)
        return AccessClaims(person_id=str(claims["sub"]), role=str(claims.get("role", "")))

    def voting(self, token: str) -> VotingClaims:
        claims = self._decode(token, VOTE_AUDIENCE)
        if not isinstance(claims.get("poll"), str):
            raise InvalidToken("voting token names no poll")
        # Tolerant of tokens without a district (absent or null: none), not of a
        # district that is no name.
        district = claims.get("district")
        if district is not None and not isinstance(district, str):
            raise InvalidToken("voting token's district is not a string")
        channel = claims.get("channel", "online")
        if channel not in CHANNELS:
            raise InvalidToken("voting token names no known channel")
        agent = claims.get("agent")
        if agent is not None and not (isinstance(agent, str) and AGENT_KEY.fullmatch(agent)):
            raise InvalidToken("voting token's agent is not an agent key")
        return VotingClaims(voter_key=str(claims["sub"]), poll_id=claims["poll"],
                            district=district, channel=channel,
                            paper_mark=claims.get("paper_mark") is True, agent=agent)
