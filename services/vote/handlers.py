"""The vote service's control plane: ballot boxes follow the polls' life cycle.

Ballots themselves do not come through here: they go through ``intake.py``, in
batches, shard by shard. Closing a poll is a message on that same path: the close
marker, which every shard processes in order with its ballots.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from urne.contracts.events import (
    BallotBoxClosed,
    BallotsMissing,
    PollClosed,
    PollCloseExtended,
    PollOpened,
)
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.logging import log_fields
from urne.services.vote.domain import BallotBox
from urne.services.vote.intake import as_recorded, recorded_events
from urne.services.vote.ports import VoteStore

log = logging.getLogger(__name__)

# Ballots per event when a poll's ballots are sent again (as an intake batch at most).
REPLAY_CHUNK = 500


@dataclass
class VoteHandlers:
    store: VoteStore
    shards: int = 1  # counting shards: a ballot sent again goes to its voter's stream

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
        """The tally lost some of this poll's ballot events: send every stored ballot
        again, in events of ``REPLAY_CHUNK`` (the tally's copy is idempotent)."""
        sent = 0
        for chunk in self.store.stored_ballots(event.poll_id, REPLAY_CHUNK):
            # No stored_at: counted this late, their lag is from their own (minute) time.
            for env in recorded_events([as_recorded(b) for b in chunk], self.shards,
                                       ctx.trace_id):
                ctx.send(env)
            sent += len(chunk)
        log.warning("ballots sent again to the tally", extra=log_fields(
            poll_id=event.poll_id, sent=sent, tally_had=event.received,
            sealed=event.sealed))

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="vote",
            commands={},
            subscriptions={PollOpened: self.on_poll_opened, PollClosed: self.on_poll_closed,
                           PollCloseExtended: self.on_poll_close_extended,
                           BallotsMissing: self.on_ballots_missing},
            ping=self.store.ping,
        )
