"""Vote command and event handlers, and the service core that registers them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from urne.contracts.commands import CastBallot
from urne.contracts.events import BallotBoxSealed, BallotRecorded, PollClosed, PollOpened
from urne.contracts.replies import Receipt
from urne.counting import InvalidBallot, validate_choice
from urne.crypto.tokens import InvalidToken, TokenVerifier
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import Conflict, Forbidden, Invalid, Unauthorized
from urne.platform.metrics import BALLOTS
from urne.record.canonical import ballot_set_digest
from urne.services.vote.domain import Ballot, BallotBox, new_tracker
from urne.services.vote.gate import CloseGate
from urne.services.vote.ports import VoteStore

MAX_SEQUENCE_RETRIES = 5


@dataclass
class VoteHandlers:
    store: VoteStore
    tokens: TokenVerifier
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    gate: CloseGate = field(default_factory=CloseGate)

    def cast_ballot(self, cmd: CastBallot, ctx: Context) -> Receipt:
        with self.gate.casting(cmd.poll_id):
            return self._cast(cmd, ctx)

    def _cast(self, cmd: CastBallot, ctx: Context) -> Receipt:
        try:
            claims = self.tokens.voting(cmd.voting_token)
        except InvalidToken as exc:
            raise Unauthorized(f"voting token refused: {exc}", code="voting_token_invalid") from exc
        if claims.poll_id != cmd.poll_id:
            raise Forbidden("this voting token is for another poll", code="voting_token_wrong_poll")
        poll = self.store.ballot_box(cmd.poll_id)
        if poll is None or poll.rules is None:
            raise Conflict(f"poll {cmd.poll_id} is not open for voting", code="poll_not_open")
        if poll.status != "open":
            raise Conflict(f"poll {cmd.poll_id} is closed", code="poll_closed")
        try:
            choice = validate_choice(poll.rules, cmd.choice)
        except InvalidBallot as exc:
            raise Invalid(str(exc), code="ballot_invalid") from exc

        # One counted ballot per voter: the store refuses a second row with the same
        # (poll, voter, sequence), so two racing requests cannot both become "latest".
        for _ in range(MAX_SEQUENCE_RETRIES):
            sequence = self.store.latest_sequence(cmd.poll_id, claims.voter_key) + 1
            ballot = Ballot(poll_id=cmd.poll_id, voter_key=claims.voter_key, sequence=sequence,
                            ballot_id=uuid.uuid4().hex, tracker=new_tracker(), choice=choice,
                            channel=cmd.channel, recorded_at=self.clock())
            if self.store.insert_ballot(ballot):
                break
        else:
            raise Conflict("another ballot from this voter is being recorded; retry",
                           code="ballot_race")
        BALLOTS.labels(cmd.channel, "revote" if sequence > 1 else "first").inc()
        ctx.emit(BallotRecorded(poll_id=ballot.poll_id, ballot_id=ballot.ballot_id,
                                tracker=ballot.tracker, voter_key=ballot.voter_key,
                                sequence=ballot.sequence, choice=ballot.choice,
                                channel=ballot.channel, recorded_at=ballot.recorded_at))
        return Receipt(poll_id=ballot.poll_id, ballot_id=ballot.ballot_id, tracker=ballot.tracker,
                       sequence=ballot.sequence, replaces_previous=sequence > 1,
                       recorded_at=ballot.recorded_at)

    def on_poll_opened(self, event: PollOpened, ctx: Context) -> None:
        if self.store.ballot_box(event.poll_id) is None:
            box = BallotBox(event.poll_id, event.rules, event.rules_hash, "open")
            self.store.save_ballot_box(box)

    def on_poll_closed(self, event: PollClosed, ctx: Context) -> None:
        with self.gate.closing(event.poll_id):
            self._seal(event, ctx)

    def _seal(self, event: PollClosed, ctx: Context) -> None:
        poll = self.store.ballot_box(event.poll_id)
        if poll is None:
            poll = BallotBox(event.poll_id, None, None, "closed")
        if poll.status != "closed":
            poll = BallotBox(poll.poll_id, poll.rules, poll.rules_hash, "closed")
        self.store.save_ballot_box(poll)
        # Sent again on redelivery, with the same count: the tally treats it idempotently.
        ids = list(self.store.ballot_ids(event.poll_id))
        ctx.emit(BallotBoxSealed(poll_id=event.poll_id, ballots_recorded=len(ids),
                                 ballots_digest=ballot_set_digest(ids), sealed_at=self.clock()))

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="vote",
            commands={CastBallot: self.cast_ballot},
            subscriptions={PollOpened: self.on_poll_opened, PollClosed: self.on_poll_closed},
            ping=self.store.ping,
        )
