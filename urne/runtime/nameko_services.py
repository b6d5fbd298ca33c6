"""The four services as nameko services (distributed profile), in nameko-examples style.

Each class names its service, declares its dependency providers and exposes its
entrypoints: one RPC ``handle`` for the commands and queries its core registers,
and one event handler per event its core subscribes to (a test keeps the two in
step). The bodies are one line each: the work is in the transport-free core.
Importing this module needs eventlet patched (``urne/__main__.py`` does it).
"""

from __future__ import annotations

from typing import Any

from nameko.events import EventDispatcher, event_handler
from nameko.rpc import rpc
from nameko.timer import timer

from urne.contracts.commands import CheckPolls, PurgeBallots, PurgeExpired, RunSchedule
from urne.contracts.envelope import wrap
from urne.contracts.events import (
    BallotBoxSealedV2,
    BallotsMissing,
    ElectorateCounted,
    ElectorateMissing,
    PollClosed,
    PollCloseExtended,
    PollOpened,
    PollResultReleased,
    ResultPublished,
    SignInListMarked,
)
from urne.messaging.kernel import RawEnvelope, RawReply
from urne.messaging.nameko_adapter import (
    BallotTopology,
    CoreProvider,
    DeadLetters,
    Trust,
    consume_event,
    counting_publisher,
    routed,
    serve_command,
    serve_rpc,
)
from urne.runtime.distributed import running_core
from urne.runtime.registry import IDENTITY, PROPOSAL, SCHEDULE_INTERVAL_SECONDS, TALLY, VOTE


class IdentityService:
    name = "identity"

    core: Any = CoreProvider(lambda settings: running_core(IDENTITY, settings))
    dispatch: Any = EventDispatcher()
    dead_letters: Any = DeadLetters()
    trust: Any = Trust()

    @rpc
    def handle(self, envelope: RawEnvelope) -> RawReply:
        return serve_rpc(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(PollOpened.PRODUCER, PollOpened.TYPE, requeue_on_error=True)
    def on_poll_opened(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(PollClosed.PRODUCER, PollClosed.TYPE, requeue_on_error=True)
    def on_poll_closed(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(SignInListMarked.PRODUCER, SignInListMarked.TYPE, requeue_on_error=True)
    def on_sign_in_list_marked(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(ElectorateMissing.PRODUCER, ElectorateMissing.TYPE, requeue_on_error=True)
    def on_electorate_missing(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @timer(interval=SCHEDULE_INTERVAL_SECONDS)
    def purge_expired(self) -> None:
        """Expired sign-in codes and counters go (at most every ten minutes: the core
        decides; on Cassandra their TTL has done it already)."""
        serve_command(self.core, self.dispatch, self.trust, wrap(PurgeExpired(), "identity"))


class ProposalService:
    name = "proposal"

    core: Any = CoreProvider(lambda settings: running_core(PROPOSAL, settings))
    dispatch: Any = EventDispatcher()
    dead_letters: Any = DeadLetters()
    trust: Any = Trust()

    @rpc
    def handle(self, envelope: RawEnvelope) -> RawReply:
        return serve_rpc(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(ResultPublished.PRODUCER, ResultPublished.TYPE,
                   requeue_on_error=True)
    def on_result_published(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @timer(interval=SCHEDULE_INTERVAL_SECONDS)
    def run_schedule(self) -> None:
        """Polls open and close at their times; events a crash held back go again.
        Every proposal process runs it: a poll's compare-and-set lets one of them act."""
        serve_command(self.core, self.dispatch, self.trust, wrap(RunSchedule(), "proposal"))


class VoteService:
    """The vote service's control plane: ballot boxes follow the polls, and a closed
    poll sends its close marker through every ballot shard. Ballots do not come here:
    the vote workers (``urne vote-worker``) take them from their shards."""

    name = "vote"

    core: Any = CoreProvider(lambda settings: running_core(VOTE, settings))
    dispatch: Any = EventDispatcher()
    counting: Any = counting_publisher()
    dead_letters: Any = DeadLetters()
    trust: Any = Trust()
    ballot_topology: Any = BallotTopology()

    @rpc
    def handle(self, envelope: RawEnvelope) -> RawReply:
        return serve_rpc(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(PollOpened.PRODUCER, PollOpened.TYPE, requeue_on_error=True)
    def on_poll_opened(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(PollClosed.PRODUCER, PollClosed.TYPE, requeue_on_error=True)
    def on_poll_closed(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(PollCloseExtended.PRODUCER, PollCloseExtended.TYPE,
                   requeue_on_error=True)
    def on_poll_close_extended(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(BallotsMissing.PRODUCER, BallotsMissing.TYPE, requeue_on_error=True)
    def on_ballots_missing(self, envelope: RawEnvelope) -> None:
        # The ballots go again to their counting streams.
        consume_event(self.core, routed(self.dispatch, self.counting), self.trust,
                      self.dead_letters, envelope)

    @event_handler(ResultPublished.PRODUCER, ResultPublished.TYPE, requeue_on_error=True)
    def on_result_published(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @timer(interval=SCHEDULE_INTERVAL_SECONDS)
    def purge_ballots(self) -> None:
        """The ballots of polls whose retention is over go (at most every ten minutes:
        the core decides)."""
        serve_command(self.core, self.dispatch, self.trust, wrap(PurgeBallots(), "vote"))


class TallyService:
    """The tally's control plane: rules, seals, releases, the check, the queries.
    Ballots do not come here: the tally workers (``urne tally-worker``) count them from
    the counting streams."""

    name = "tally"

    core: Any = CoreProvider(lambda settings: running_core(TALLY, settings))
    dispatch: Any = EventDispatcher()
    dead_letters: Any = DeadLetters()
    trust: Any = Trust()

    @rpc
    def handle(self, envelope: RawEnvelope) -> RawReply:
        return serve_rpc(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(PollOpened.PRODUCER, PollOpened.TYPE, requeue_on_error=True)
    def on_poll_opened(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(BallotBoxSealedV2.PRODUCER, BallotBoxSealedV2.TYPE,
                   requeue_on_error=True)
    def on_ballot_box_sealed_v2(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(PollClosed.PRODUCER, PollClosed.TYPE, requeue_on_error=True)
    def on_poll_closed(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(PollResultReleased.PRODUCER, PollResultReleased.TYPE,
                   requeue_on_error=True)
    def on_poll_result_released(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @event_handler(ElectorateCounted.PRODUCER, ElectorateCounted.TYPE, requeue_on_error=True)
    def on_electorate_counted(self, envelope: RawEnvelope) -> None:
        consume_event(self.core, self.dispatch, self.trust, self.dead_letters, envelope)

    @timer(interval=SCHEDULE_INTERVAL_SECONDS)
    def check_polls(self) -> None:
        """Sealed polls publish even if the piece that completed them came to another
        process; one short of ballots asks the vote service for them again."""
        serve_command(self.core, self.dispatch, self.trust, wrap(CheckPolls(), "tally"))


NAMEKO_SERVICES: dict[str, type] = {
    cls.name: cls for cls in (IdentityService, ProposalService, VoteService, TallyService)
}
