"""The vote service's control plane: ballot boxes follow the polls' life cycle.

Ballots themselves do not come through here: they go through ``intake.py``, in
batches, shard by shard. Closing a poll is a message on that same path: the close
marker, which every shard processes in order with its ballots.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from urne.contracts.commands import PurgeBallots
from urne.contracts.events import (
    VOTER_CELLS,
    BallotBoxClosed,
    BallotsMissing,
    PollClosed,
    PollCloseExtended,
    PollOpened,
    ResultPublished,
    voter_cell,
)
from urne.contracts.replies import Purged
from urne.messaging.counting_stream import counting_shard
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.logging import log_fields
from urne.services.vote.domain import BallotBox
from urne.services.vote.intake import as_recorded, recorded_events
from urne.services.vote.ports import VoteStore

log = logging.getLogger(__name__)

# Ballots per event when a poll's ballots are sent again (as an intake batch at most).
REPLAY_CHUNK = 500
# How often the purge looks for polls whose ballots' retention is over.
PURGE_EVERY = timedelta(minutes=10)


@dataclass(frozen=True)
class _Short:
    """What ``ballots.missing`` sends again: the voters of these counting shards, and of
    these (shard, voter cell) pairs among them if the tally counts by cell."""

    counting_shards: int
    shards: set[int]
    cells: set[tuple[int, int]] | None

    def __contains__(self, voter_key: str) -> bool:
        shard = counting_shard(voter_key, self.counting_shards)
        return shard in self.shards if self.cells is None else \
            (shard, voter_cell(voter_key)) in self.cells


@dataclass
class VoteHandlers:
    store: VoteStore
    shards: int = 1  # counting shards: a ballot sent again goes to its voter's stream
    # How long a poll's ballots (voter keys, choices) are kept after its result was
    # signed (URNE_VOTE_BALLOT_DAYS): the tally's copy and its public record hold the
    # result's proof; these rows are only for a recount an appeal may order.
    ballots_keep: timedelta = timedelta(days=90)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _purged_at: datetime | None = field(default=None, init=False, repr=False)

    def on_poll_opened(self, event: PollOpened, ctx: Context) -> None:
        # A late redelivery of "opened" must not reopen a closed box. A box without
        # rules that is not closed was made by an extension that came first.
        box = self.store.ballot_box(event.poll_id)
        if box is None or (box.rules is None and box.status == "open"):
            self.store.save_ballot_box(BallotBox(event.poll_id, event.rules,
                                                 event.rules_hash, "open",
                                                 cross_channel=event.cross_channel))
        if event.closes_at is not None:
            self.store.extend_close(event.poll_id, event.closes_at)

    def on_poll_close_extended(self, event: PollCloseExtended, ctx: Context) -> None:
        # Extensions only move the close later: the latest one kept is the right one,
        # whatever order they (and "opened") come in.
        self.store.extend_close(event.poll_id, event.closes_at)

    def on_poll_closed(self, event: PollClosed, ctx: Context) -> None:
        box = self.store.ballot_box(event.poll_id)
        if box is None:  # closed before it was opened here: it never takes a ballot
            box = BallotBox(event.poll_id, None, None, "closed")
        if box.status != "closed":
            box = replace(box, status="closed")
        self.store.save_ballot_box(box)
        # Sent again on redelivery: shards that passed it already ignore the repeat.
        ctx.emit(BallotBoxClosed(poll_id=event.poll_id, closed_at=event.closed_at))

    def on_ballots_missing(self, event: BallotsMissing, ctx: Context) -> None:
        """The tally lost some of this poll's ballot events: send the stored ballots
        again, in events of ``REPLAY_CHUNK`` (the tally's copy is idempotent), those of
        the voter cells, else the counting shards, it holds fewer of than are stored (all,
        if it does not say, or counts them otherwise)."""
        short = self._short(event)
        sent = 0
        for chunk in self.store.stored_ballots(event.poll_id, REPLAY_CHUNK,
                                               None if short is None else short.__contains__):
            # No stored_at: counted this late, their lag is from their own (minute) time.
            for env in recorded_events([as_recorded(b) for b in chunk], self.shards,
                                       ctx.trace_id):
                ctx.send(env)
            sent += len(chunk)
        log.warning("ballots sent again to the tally", extra=log_fields(
            poll_id=event.poll_id, sent=sent, tally_had=event.received,
            sealed=event.sealed, shards="all" if short is None else sorted(short.shards),
            cells="all" if short is None or short.cells is None else len(short.cells)))

    def _short(self, event: BallotsMissing) -> _Short | None:
        """Where the tally holds fewer ballots than are stored: by (counting shard, voter
        cell) if it counts by ours, else by shard if it counts by ours; None: send every
        ballot (it does not say, or is short of none by its counts: they disagree some
        other way). The stored ballots' voters are read once, for both."""
        by_shard, by_cell = event.received_by_shard, event.received_by_cell
        if by_cell is not None and (len(by_cell) != self.shards
                                    or any(len(c) != VOTER_CELLS for c in by_cell)):
            by_cell = None
        if by_shard is not None and (len(by_shard) != self.shards or self.shards == 1):
            by_shard = None
        if by_cell is None and by_shard is None:
            return None
        stored: Counter[tuple[int, int]] = Counter(
            (counting_shard(key, self.shards), voter_cell(key))
            for key in self.store.ballot_voters(event.poll_id))
        if by_cell is not None:
            cells = {c for c, n in stored.items() if n > by_cell[c[0]][c[1]]}
            if cells:
                return _Short(self.shards, {s for s, _ in cells}, cells)
        if by_shard is not None:
            per_shard: Counter[int] = Counter()
            for (shard, _), n in stored.items():
                per_shard[shard] += n
            shards = {s for s, n in per_shard.items() if n > by_shard[s]}
            if shards:
                return _Short(self.shards, shards, None)
        return None

    def on_result_published(self, event: ResultPublished, ctx: Context) -> None:
        """The tally signed the poll's result: its ballots' retention starts (the same
        time on every delivery: the result's)."""
        self.store.save_result_signed(event.poll_id, event.published_at)

    def purge_ballots(self, cmd: PurgeBallots, ctx: Context) -> Purged:
        """Delete the ballots of each poll whose result was signed more than
        ``ballots_keep`` ago, looking at most every PURGE_EVERY (privacy by default). A
        stop midway: the next look deletes the rest."""
        now = self.clock()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return Purged(removed={})
        self._purged_at = now
        polls = self.store.ballots_to_purge(now - self.ballots_keep)
        for poll_id in polls:
            self.store.purge_ballots(poll_id, now)
            log.info("ballots deleted, their retention over", extra=log_fields(
                poll_id=poll_id))
        return Purged(removed={"polls": len(polls)})

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="vote",
            commands={PurgeBallots: self.purge_ballots},
            subscriptions={PollOpened: self.on_poll_opened, PollClosed: self.on_poll_closed,
                           PollCloseExtended: self.on_poll_close_extended,
                           BallotsMissing: self.on_ballots_missing,
                           ResultPublished: self.on_result_published},
            ping=self.store.ping,
        )
