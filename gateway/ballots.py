"""The gateway's side of the ballot path (ARCHITECTURE.md D4): everything it can check
alone is checked here, without a round trip, before the ballot joins its shard.

- the voting token, with identity's public key (the vote service checks it again);
- the ballot against the poll's rules, cached per poll: rules are frozen once the
  poll is open, so a cached copy can never be stale (one ``poll.get`` per poll and
  gateway process);
- the edge names the ballot (``ballot_id``, ``tracker``, ``received_at``).

Whether the poll is still open is *not* decided here: the close marker decides it,
in the ballot's shard, in order with the ballots (a 201 is given only once stored).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from urne.contracts.commands import CastBallot, CastPaperMark, GetPoll
from urne.contracts.envelope import wrap
from urne.contracts.ids import new_ballot_id, new_tracker
from urne.counting import InvalidBallot, PollRules, validate_choice
from urne.counting.rules import rules_adapter
from urne.crypto.tokens import InvalidToken, TokenVerifier, VotingClaims
from urne.gateway.clients import ServiceClient, ServiceUnavailable
from urne.gateway.problems import ProblemError, reply_data
from urne.gateway.public import ReceiptPublic

CLOSED = "closed"
# The receipt a voter gets: the vote service's reply, public fields only (it is built
# from the service's own model, so it is not validated again on the hot path).
RECEIPT_FIELDS = tuple(ReceiptPublic.model_fields)
# Pauses (seconds) before a ballot refused "poll_opening" is sent again: "poll.opened"
# reaches the ballot box within milliseconds of reaching identity, unless the vote
# service is backed up; past these 1.5 s the client gets the 503 and its Retry-After.
OPENING_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.75)


@dataclass
class RulesCache:
    """poll id -> its frozen rules, or CLOSED once a poll is known to be closed."""

    known: dict[str, PollRules | str] = field(default_factory=dict)
    limit: int = 10_000  # polls; ids come from requests, so the cache is bounded

    def get(self, poll_id: str) -> PollRules | str | None:
        return self.known.get(poll_id)

    def put(self, poll_id: str, value: PollRules | str) -> None:
        if len(self.known) >= self.limit:
            self.known.pop(next(iter(self.known)))  # oldest first
        self.known[poll_id] = value


@dataclass
class BallotDesk:
    client: ServiceClient
    tokens: TokenVerifier
    rules: RulesCache = field(default_factory=RulesCache)

    async def cast(self, poll_id: str, token: str, choice: dict[str, Any],
                   idempotency_key: str | None, trace_id: str) -> dict[str, Any]:
        claims = self._claims(poll_id, token)
        rules = await self._rules(poll_id, trace_id)
        try:
            # Refused here already, without a round trip; the vote service decides again
            # (with the district of the token it checks itself) and stores the normal form.
            validate_choice(rules, choice, district=claims.district)
        except InvalidBallot as exc:
            raise ProblemError(422, "ballot_invalid", str(exc)) from exc
        voters_choice = {k: v for k, v in choice.items() if k != "method"}
        cast = CastBallot(poll_id=poll_id, voting_token=token, choice=voters_choice,
                          ballot_id=new_ballot_id(), tracker=new_tracker(),
                          received_at=datetime.now(UTC), idempotency_key=idempotency_key)
        receipt = await self._send(wrap(cast, "gateway", trace_id), claims.voter_key,
                                   "the ballot was not confirmed in time; send it again with "
                                   "the same Idempotency-Key to learn its outcome")
        return {k: receipt[k] for k in RECEIPT_FIELDS}

    async def mark_paper(self, poll_id: str, token: str, trace_id: str) -> dict[str, Any]:
        """Mark the person the (paper) token names as voting on paper: through their
        shard, like their ballots, which decides it in order with them."""
        claims = self._claims(poll_id, token)
        await self._rules(poll_id, trace_id)  # a closed poll is refused here already
        mark = CastPaperMark(poll_id=poll_id, voting_token=token, mark_id=new_ballot_id(),
                             received_at=datetime.now(UTC))
        return await self._send(wrap(mark, "gateway", trace_id), claims.voter_key,
                                "the mark was not confirmed in time; mark them again (a "
                                "mark made already is the same mark)")

    def _claims(self, poll_id: str, token: str) -> VotingClaims:
        try:
            claims = self.tokens.voting(token)
        except InvalidToken as exc:
            raise ProblemError(401, "voting_token_invalid",
                               f"voting token refused: {exc}") from exc
        if claims.poll_id != poll_id:
            raise ProblemError(403, "voting_token_wrong_poll",
                               "this voting token is for another poll")
        return claims

    async def _send(self, envelope: dict[str, Any], voter_key: str,
                    unconfirmed: str) -> dict[str, Any]:
        """The vote service's answer to a message of the ballot stream (its data, or the
        problem), sent again while the poll's opening is on its way to the box."""
        for pause in (*OPENING_PAUSES, None):
            try:
                reply = await self.client.cast(envelope, voter_key)
            except ServiceUnavailable as exc:
                raise ProblemError(503, "service_unavailable", unconfirmed) from exc
            if pause is None or _error_code(reply) != "poll_opening":
                break
            # The poll has just opened and its rules are on their way to the ballot box:
            # nothing was stored, so the same ballot is sent again after a short pause.
            await asyncio.sleep(pause)
        return reply_data(reply)

    async def rules_of(self, poll_id: str, trace_id: str) -> PollRules:
        """The poll's frozen rules (cached), or the problem a ballot would meet."""
        return await self._rules(poll_id, trace_id)

    async def _rules(self, poll_id: str, trace_id: str) -> PollRules:
        cached = self.rules.get(poll_id)
        if cached is None:
            cached = await self._fetch(poll_id, trace_id)
        if cached == CLOSED:
            raise ProblemError(409, "poll_closed", f"poll {poll_id} is closed")
        assert not isinstance(cached, str)
        return cached

    async def _fetch(self, poll_id: str, trace_id: str) -> PollRules | str:
        try:
            query = GetPoll(poll_id=poll_id)
            reply = await self.client.call(query.OWNER, wrap(query, "gateway", trace_id))
        except ServiceUnavailable as exc:
            raise ProblemError(503, "service_unavailable",
                               "the proposal service is not answering; retry shortly") from exc
        poll = reply_data(reply)
        if poll["status"] == "draft":  # not cached: it may open at any moment
            raise ProblemError(409, "poll_not_open", f"poll {poll_id} is not open for voting")
        value: PollRules | str = (CLOSED if poll["status"] in ("closed", "published")
                                  else rules_adapter.validate_python(poll["rules"]))
        self.rules.put(poll_id, value)
        return value


def _error_code(reply: dict[str, Any]) -> str | None:
    return None if reply.get("ok") else (reply.get("error") or {}).get("code")
