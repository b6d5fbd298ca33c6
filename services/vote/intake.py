"""Ballot intake: a batch of the ballot stream (ballots and close markers, each tagged
with its shard, in order within each shard) in, replies and events out.

Both profiles run this same code: the embedded profile's group commit hands it what
arrived in the last few milliseconds (one shard), a distributed vote worker what its
shard queues delivered since its last batch (one round of reads and one of writes for
all of it, whatever the number of shards). The caller commits what ``record`` wrote,
then sends the replies and publishes the events; a 201 therefore means stored. If
anything fails, nothing is replied and the caller redelivers the batch: every write is
idempotent (``domain.admit``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from urne.contracts import unwrap, wrap
from urne.contracts.commands import CastBallot, CastPaperMark
from urne.contracts.envelope import Envelope
from urne.contracts.events import (
    BallotBoxClosed,
    BallotBoxSealedV2,
    BallotsRecorded,
    RecordedBallot,
    SignInListEntry,
    SignInListMarked,
)
from urne.contracts.replies import PaperMarked, Receipt
from urne.counting import InvalidBallot, validate_choice
from urne.crypto.tokens import InvalidToken, TokenVerifier, VotingClaims
from urne.messaging.counting_stream import counting_shard
from urne.messaging.kernel import RawEnvelope, RawReply, failed, ok
from urne.platform.errors import DomainError
from urne.platform.logging import log_fields
from urne.platform.metrics import BALLOTS
from urne.record.canonical import ballot_set_digest
from urne.services.vote import domain
from urne.services.vote.domain import Admitted, Ballot, BallotBox, Request, Seal
from urne.services.vote.ports import VoteStore

log = logging.getLogger(__name__)

PRODUCER = "vote"
SEAL_CHUNK = 500  # voters read at once while sealing
SIGN_IN_CHUNK = 1_000  # voters in one sign_in_list.marked event


@dataclass
class Outcome:
    """``replies[i]`` answers ``items[i]`` (None for a close marker); ``events`` are
    published after the caller committed."""

    replies: list[RawReply | None]
    events: list[RawEnvelope]


@dataclass
class _Cast:
    index: int
    env: Envelope
    cmd: CastBallot | CastPaperMark
    claims: VotingClaims


@dataclass
class _Batch:
    """What one batch learnt and will write."""

    store: VoteStore
    boxes: dict[str, BallotBox | None] = field(default_factory=dict)
    closed: dict[str, set[int]] = field(default_factory=dict)
    stored: dict[tuple[str, str], list[Ballot]] = field(default_factory=dict)
    to_write: list[Ballot] = field(default_factory=list)
    # Ballots (and marks) found stored: their index rows are written again (add_ballots).
    again: list[Ballot] = field(default_factory=list)
    to_close: dict[str, set[int]] = field(default_factory=dict)
    refreshed: set[str] = field(default_factory=set)  # boxes read again (refresh)
    # For identity's sign-in list: the people (not the papers) with a ballot here.
    voters: dict[tuple[str, str, str], SignInListEntry] = field(default_factory=dict)

    def box(self, poll_id: str) -> BallotBox | None:
        if poll_id not in self.boxes:
            self.boxes[poll_id] = self.store.ballot_box(poll_id)
        return self.boxes[poll_id]

    def refresh(self, poll_id: str) -> BallotBox | None:
        """The box as stored now (its close time may have moved since it was read)."""
        self.boxes[poll_id] = self.store.ballot_box(poll_id)
        self.refreshed.add(poll_id)
        return self.boxes[poll_id]

    def known(self, boxes: dict[str, BallotBox]) -> None:
        """Boxes whose rules an earlier batch read: rules never change once set."""
        for poll_id, box in boxes.items():
            self.boxes.setdefault(poll_id, box)

    def close_time(self, poll_id: str, closes_at: datetime | None) -> None:
        """The close time as stored now, over a box an earlier batch read: an extension
        may have set or moved it since."""
        box = self.boxes.get(poll_id)
        if box is not None:
            self.boxes[poll_id] = replace(box, closes_at=closes_at)

    def closed_shards(self, poll_id: str) -> set[int]:
        # Read once per batch, never cached across batches: after a shard moved to
        # another worker and back, only the store knows what was closed meanwhile.
        if poll_id not in self.closed:
            self.closed[poll_id] = self.store.closed_shards(poll_id)
        return self.closed[poll_id]


@dataclass
class BallotIntake:
    store: VoteStore
    tokens: TokenVerifier
    shards: int  # how many shards the ballot stream is split into (1 when embedded)
    counting_shards: int  # how many counting streams the recorded ballots go to
    max_ballots: int  # per voter and poll: the first ballot and the revotes
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Ballot boxes with their rules, kept across batches: rules are frozen once set.
    _open_boxes: dict[str, BallotBox] = field(default_factory=dict)

    def record(self, items: list[RawEnvelope], shard: int | list[int],
               fence: Callable[[], None] = lambda: None) -> Outcome:
        """``shard``: the shard of every item, or of each item. ``fence`` is called right
        before the writes, and raises if the caller may no longer write (a vote worker
        that stalled: ``ballot_stream.Stalled``)."""
        shards = [shard] * len(items) if isinstance(shard, int) else shard
        replies: list[RawReply | None] = [None] * len(items)
        events: list[RawEnvelope] = []
        recorded: list[RecordedBallot] = []
        batch = _Batch(self.store)
        batch.known(self._open_boxes)
        casts = self._parse(items, replies)
        self._load_voters(casts, batch)
        by_index = {c.index: c for c in casts}
        for index, raw in enumerate(items):
            if index in by_index:
                replies[index] = self._decide(by_index[index], shards[index], batch, recorded)
            elif replies[index] is None:
                self._marker(raw, shards[index], batch)
        self._open_boxes.update({p: b for p, b in batch.boxes.items()
                                 if b is not None and b.rules is not None})
        for poll_id in batch.refreshed - {p for p, b in batch.boxes.items() if b is not None}:
            self._open_boxes.pop(poll_id, None)
        fence()
        written = {b.ballot_id for b in batch.to_write}  # a ballot sent twice in one batch
        self.store.add_ballots(batch.to_write,
                               again=[b for b in batch.again if b.ballot_id not in written])
        # Also ballots already stored: their first event may be the one a crash lost.
        events += recorded_events(recorded, self.counting_shards,
                                  casts[0].env.trace_id if len(casts) == 1 else None,
                                  stored_at=self.clock())
        events += sign_in_events(list(batch.voters.values()))
        for poll_id, closing in batch.to_close.items():
            self.store.close_shards(poll_id, closing)
        for poll_id in batch.to_close:
            self._seal_if_complete(poll_id, events)
        return Outcome(replies, events)

    # --- steps ---------------------------------------------------------------
    def _parse(self, items: list[RawEnvelope], replies: list[RawReply | None]) -> list[_Cast]:
        casts = []
        for index, raw in enumerate(items):
            if isinstance(raw, dict) and raw.get("type") == BallotBoxClosed.TYPE:
                continue  # a marker: handled in order, in record()
            try:
                env, cmd = unwrap(raw)
                if not isinstance(cmd, CastBallot | CastPaperMark):
                    raise DomainError(f"the ballot stream does not take {env.type!r}",
                                      code="unknown_message_type")
                claims = self._claims(cmd)
            except (ValidationError, KeyError) as exc:
                replies[index] = failed(DomainError(f"invalid ballot message: {exc}"[:300],
                                                    code="invalid_message", status=422))
            except DomainError as exc:
                replies[index] = failed(exc)
            else:
                casts.append(_Cast(index, env, cmd, claims))
        return casts

    def _claims(self, cmd: CastBallot | CastPaperMark) -> VotingClaims:
        # The vote service checks the identity-signed token itself, whoever relayed it.
        try:
            claims = self.tokens.voting(cmd.voting_token)
        except InvalidToken as exc:
            raise DomainError(f"voting token refused: {exc}", code="voting_token_invalid",
                              status=401) from exc
        if claims.poll_id != cmd.poll_id:
            raise DomainError("this voting token is for another poll",
                              code="voting_token_wrong_poll", status=403)
        return claims

    def _load_voters(self, casts: list[_Cast], batch: _Batch) -> None:
        wanted: dict[str, set[str]] = {}
        for c in casts:
            wanted.setdefault(c.cmd.poll_id, set()).add(c.claims.voter_key)
        for poll_id, keys in wanted.items():
            found, closed, closes_at = self.store.voters_and_box(poll_id, keys)
            batch.closed.setdefault(poll_id, closed)  # read at the start of each batch
            batch.close_time(poll_id, closes_at)
            for key in keys:
                batch.stored[(poll_id, key)] = list(found.get(key, []))

    def _decide(self, cast: _Cast, shard: int, batch: _Batch,
                recorded: list[RecordedBallot]) -> RawReply:
        opened = self._open_box(cast.cmd, shard, batch)
        box = opened if isinstance(opened, BallotBox) else batch.boxes.get(cast.cmd.poll_id)
        closed = None if isinstance(opened, BallotBox) else opened
        if box is None or box.rules is None:
            assert closed is not None  # _open_box gives only a box with rules
            return closed  # refused: not open (yet), or closed before it opened here
        # Past the close (marker or time), a ballot or mark already stored is still
        # answered as it was: a batch retried after its ballots were stored, or a
        # client's retry with the same Idempotency-Key, gets its receipt, not a refusal,
        # and its events go again. Anything new gets ``closed``.
        if isinstance(cast.cmd, CastPaperMark):
            return self._mark_paper(cast, cast.cmd, batch, closed)
        return self._ballot(cast, cast.cmd, box, batch, recorded, closed)

    def _open_box(self, cmd: CastBallot | CastPaperMark, shard: int,
                  batch: _Batch) -> BallotBox | RawReply:
        """The poll's box if it takes this ballot (or mark) now, else the refusal."""
        box = batch.box(cmd.poll_id)
        if box is None or box.rules is None:
            if box is not None and box.status == "closed":  # closed before it opened here
                return failed(DomainError(f"poll {cmd.poll_id} is closed", code="poll_closed",
                                          status=409))
            # The voting token is valid, so identity saw the poll open, but "poll.opened"
            # has not reached this box yet (each service takes it from its own queue):
            # not now rather than no. Nothing is stored; the same ballot may come again.
            return failed(DomainError(
                f"the opening of poll {cmd.poll_id} has not reached the ballot box yet; "
                "send the ballot again shortly with the same Idempotency-Key",
                code="poll_opening", status=503))
        if shard in batch.closed_shards(cmd.poll_id):
            return failed(DomainError(f"poll {cmd.poll_id} is closed", code="poll_closed",
                                      status=409))
        if box.closes_at is not None and cmd.received_at > box.closes_at:
            # Past the close time, by the gateway's clock when the ballot came in, even if
            # the close marker has not come yet. An extension may have moved the time:
            # read the box again before refusing (rare: near the close only).
            fresh = batch.refresh(cmd.poll_id)
            if fresh is None or fresh.rules is None or (
                    fresh.closes_at is not None and cmd.received_at > fresh.closes_at):
                return failed(DomainError(
                    f"poll {cmd.poll_id} closed at {box.closes_at.isoformat()}; this ballot "
                    f"came in at {cmd.received_at.isoformat()}", code="poll_closed",
                    status=409))
            box = fresh
        return box

    def _mark_paper(self, cast: _Cast, cmd: CastPaperMark, batch: _Batch,
                    closed: RawReply | None) -> RawReply:
        if not cast.claims.paper_mark:
            return closed or failed(DomainError("a paper mark takes a paper-mark token",
                                                code="forbidden", status=403))
        voter_key = cast.claims.voter_key
        stored = batch.stored.setdefault((cmd.poll_id, voter_key), [])
        decision = domain.mark_paper(cmd.poll_id, voter_key, stored, cmd.mark_id,
                                     cmd.received_at)
        if closed is not None and not (isinstance(decision, Admitted) and not decision.new):
            return closed
        if not isinstance(decision, Admitted):
            return failed(DomainError(decision.detail, code=decision.code,
                                      status=decision.status))
        if decision.new:
            stored.append(decision.ballot)
            batch.to_write.append(decision.ballot)
        else:
            batch.again.append(decision.ballot)
        # A person, on paper: on the sign-in list (a paper ballot's key is not).
        batch.voters[(cmd.poll_id, voter_key, "paper")] = SignInListEntry(
            poll_id=cmd.poll_id, voter_key=voter_key, channel="paper",
            district=cast.claims.district)
        return ok(PaperMarked(poll_id=cmd.poll_id, recorded_at=decision.ballot.recorded_at))

    def _ballot(self, cast: _Cast, cmd: CastBallot, box: BallotBox, batch: _Batch,
                recorded: list[RecordedBallot], closed: RawReply | None) -> RawReply:
        if cast.claims.paper_mark:
            return closed or failed(DomainError("a paper-mark token casts no ballot",
                                                code="forbidden", status=403))
        voter_key = cast.claims.voter_key
        try:
            # The district, for a budget per district, is the token's: never the voter's word.
            rules = box.rules
            assert rules is not None  # checked above, on the box first read or on the fresh one
            choice = validate_choice(rules, cmd.choice, district=cast.claims.district)
        except InvalidBallot as exc:
            return closed or failed(DomainError(str(exc), code="ballot_invalid", status=422))
        # The channel is the identity-signed token's (a paper ballot's token says so).
        channel = cast.claims.channel
        request = Request(ballot_id=cmd.ballot_id, tracker=cmd.tracker, choice=choice,
                          channel=channel, received_at=cmd.received_at,
                          idempotency_key=cmd.idempotency_key,
                          digest=domain.request_digest(choice, channel),
                          agent=cast.claims.agent)
        stored = batch.stored.setdefault((cmd.poll_id, voter_key), [])
        decision = domain.admit(cmd.poll_id, voter_key, stored, request, self.max_ballots,
                                box.cross_channel)
        if closed is not None and not (isinstance(decision, Admitted) and not decision.new):
            return closed
        if not isinstance(decision, Admitted):
            return failed(DomainError(decision.detail, code=decision.code,
                                      status=decision.status))
        ballot = decision.ballot
        if decision.new:
            stored.append(ballot)
            batch.to_write.append(ballot)
            BALLOTS.labels(ballot.channel, "revote" if ballot.sequence > 1 else "first").inc()
        else:
            batch.again.append(ballot)
        recorded.append(as_recorded(ballot))
        if channel != "paper":  # a paper's voter key is the paper's, not a person's
            batch.voters[(cmd.poll_id, voter_key, channel)] = SignInListEntry(
                poll_id=cmd.poll_id, voter_key=voter_key, channel=channel,
                district=cast.claims.district)
        return ok(Receipt(poll_id=ballot.poll_id, ballot_id=ballot.ballot_id,
                          tracker=ballot.tracker, sequence=ballot.sequence,
                          replaces_previous=ballot.sequence > 1,
                          recorded_at=ballot.recorded_at))

    def _marker(self, raw: Any, shard: int, batch: _Batch) -> None:
        try:
            _, marker = unwrap(raw)
        except (ValidationError, KeyError):
            log.error("unreadable close marker dropped", extra=log_fields(marker=str(raw)[:300]))
            return
        assert isinstance(marker, BallotBoxClosed)
        batch.closed_shards(marker.poll_id).add(shard)  # ballots behind it are refused
        batch.to_close.setdefault(marker.poll_id, set()).add(shard)

    def _seal_if_complete(self, poll_id: str, events: list[RawEnvelope]) -> None:
        waiting = set(range(self.shards)) - self.store.closed_shards(poll_id)
        if waiting:
            log.info("close marker passed; waiting for other shards",
                     extra=log_fields(poll_id=poll_id, waiting=len(waiting)))
            return
        # Every shard has passed the marker, so every ballot admitted before it is
        # stored (each shard commits its ballots before its marker). Another worker may
        # seal at the same time: the first seal stored is the one both publish.
        # Counted from the voters' own rows, which is what the tally receives and what
        # ``ballots.missing`` sends again (the id index may hold an id no row has: the
        # store logs it).
        ids = [b.ballot_id for chunk in self.store.stored_ballots(poll_id, SEAL_CHUNK)
               for b in chunk]
        seal = self.store.save_seal(Seal(poll_id, len(ids), ballot_set_digest(ids),
                                         self.clock()))
        events.append(wrap(BallotBoxSealedV2(poll_id=poll_id,
                                             ballots_recorded=seal.ballots_recorded,
                                             ballots_digest=seal.ballots_digest,
                                             sealed_at=seal.sealed_at), PRODUCER))


def recorded_events(ballots: list[RecordedBallot], shards: int,
                    trace_id: str | None = None, stored_at: datetime | None = None
                    ) -> list[RawEnvelope]:
    """``ballots.recorded`` events for these ballots: one per counting shard, each to
    travel on its shard's counting stream (``counting_stream.counting_shard``)."""
    by_shard: dict[int, list[RecordedBallot]] = {}
    for b in ballots:
        by_shard.setdefault(counting_shard(b.voter_key, shards), []).append(b)
    return [wrap(BallotsRecorded(ballots=chunk, shard=shard, stored_at=stored_at), PRODUCER,
                 trace_id)
            for shard, chunk in sorted(by_shard.items())]


def sign_in_events(voters: list[SignInListEntry]) -> list[RawEnvelope]:
    """``sign_in_list.marked`` events for identity, at most ``SIGN_IN_CHUNK`` voters each;
    no trace id: the event must not be matched with any one ballot's request."""
    return [wrap(SignInListMarked(voters=voters[start:start + SIGN_IN_CHUNK]), PRODUCER)
            for start in range(0, len(voters), SIGN_IN_CHUNK)]


def coalesce(events: list[RawEnvelope]) -> list[RawEnvelope]:
    """Several batches' events as few messages, for a vote worker that sends its events
    less often than it answers (``ballot_stream.ShardWorker``, ``events_every``): one
    ``ballots.recorded`` per counting shard, its ballots in the order they came (a ballot
    sent twice, once), stamped with the earliest batch's ``stored_at`` so the tally's lag
    still counts from the first store; one ``sign_in_list.marked`` per ``SIGN_IN_CHUNK``
    voters; any other event as it was, after them. Each message costs the broker, the
    tally and identity about the same whatever it holds."""
    if len(events) <= 1:
        return events
    recorded: dict[int | None, dict[str, RecordedBallot]] = {}
    stored_at: dict[int | None, datetime | None] = {}
    voters: dict[tuple[str, str, str], SignInListEntry] = {}
    others: list[RawEnvelope] = []
    for raw in events:
        kind = raw.get("type")
        if kind == BallotsRecorded.TYPE:
            _, batch = unwrap(raw)
            assert isinstance(batch, BallotsRecorded)
            ballots = recorded.setdefault(batch.shard, {})
            for b in batch.ballots:
                ballots.setdefault(b.ballot_id, b)
            earliest = stored_at.get(batch.shard, batch.stored_at)
            stored_at[batch.shard] = (min(earliest, batch.stored_at)
                                      if earliest and batch.stored_at else None)
        elif kind == SignInListMarked.TYPE:
            _, marked = unwrap(raw)
            assert isinstance(marked, SignInListMarked)
            for v in marked.voters:
                voters.setdefault((v.poll_id, v.voter_key, v.channel), v)
        else:
            others.append(raw)
    merged = [wrap(BallotsRecorded(ballots=list(ballots.values()), shard=shard,
                                   stored_at=stored_at[shard]), PRODUCER)
              for shard, ballots in recorded.items()]
    return merged + sign_in_events(list(voters.values())) + others


def as_recorded(b: Ballot) -> RecordedBallot:
    return RecordedBallot(poll_id=b.poll_id, ballot_id=b.ballot_id, tracker=b.tracker,
                          voter_key=b.voter_key, sequence=b.sequence, choice=b.choice,
                          channel=b.channel, recorded_at=b.recorded_at, agent=b.agent)
