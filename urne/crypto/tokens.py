"""EdDSA (Ed25519) JSON Web Tokens: access tokens for the API, voting tokens for one poll.

Only ``EdDSA`` is accepted on verification (no ``none``, no HMAC confusion), and
issuer, audience and expiry are always checked.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from urne.crypto.keys import KeySet, PublicKey, SigningKey

ALGORITHMS = ["EdDSA"]
ISSUER = "urne-identity"
API_AUDIENCE = "urne-api"
VOTE_AUDIENCE = "urne-vote"


class InvalidToken(Exception):
    pass


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

    def voting_token(self, voter_key: str, poll_id: str,
                     district: str | None = None) -> tuple[str, int]:
        # Only what the vote service needs: no person, and of the person's attributes
        # only those the rules use: the district (a claim only when there is one).
        claims = {"sub": voter_key, "poll": poll_id, "aud": VOTE_AUDIENCE}
        if district is not None:
            claims["district"] = district
        return self._sign(claims, self.voting_ttl)


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
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.current if kid is None else self.keys.trusted(str(kid))
            if key is None:
                raise InvalidToken(f"signed with {self.keys.status(str(kid)) or 'an unknown'} "
                                   f"key {str(kid)[:40]!r}")
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS,
                                audience=audience, issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "aud"]})
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
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
        return VotingClaims(voter_key=str(claims["sub"]), poll_id=claims["poll"],
                            district=district)
