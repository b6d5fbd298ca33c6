"""Counting by shard (ARCHITECTURE.md D7): each shard's partial count of each poll,
checkpointed with the position of the last message it applied.

Two ways in, one way of counting (``domain.ShardCount``):

- **distributed**: a tally worker (``urne tally-worker``) holds a ``ShardCounters`` for
  the counting streams it owns. For each batch of a shard's stream it writes the new
  ballots into the tally's copy (each with its stream offset), then moves the shard's
  checkpoint (the offset after the batch, and the partial counts of the polls the batch
  touched) by compare-and-set on the offset it started from. A worker that restarts, or
  takes the shard over, loads the checkpoint and consumes from its offset: exactly what
  was not applied is applied. The voters' map a partial needs (to remove the ballot a
  revote replaces) is rebuilt, when a poll is first met, from the copy's rows of the
  shard written before the message at hand.
- **embedded**: the tally's event handler (``count_event``) counts an event in the same
  SQLite transaction as its copy rows and the partial: the copy itself says which
  ballots were counted, so no position is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from urne.contracts import unwrap
from urne.contracts.events import BallotsRecorded, RecordedBallot
from urne.counting.rules import PollRules
from urne.messaging.counting_stream import (
    GENERATION_SPAN,
    counting_shard,
    generation_of,
    position_of,
    rotated_to,
)
from urne.messaging.kernel import RawEnvelope
from urne.platform.errors import DomainError
from urne.platform.logging import log_fields
from urne.platform.metrics import COUNTING_POSITION, TALLY_LAG
from urne.services.tally.domain import ShardCount, StoredBallot
from urne.services.tally.ports import TallyStore

log = logging.getLogger(__name__)


class RulesUnknown(DomainError):
    """A ballot of a poll whose rules have not reached the tally yet (``poll.opened``
    travels apart from the ballots): counting waits, it does not guess."""

    def __init__(self, poll_id: str):
        super().__init__(f"the rules of poll {poll_id} have not reached the tally yet",
                         code="rules_unknown", status=503)


def stored(b: RecordedBallot, position: int = 0) -> StoredBallot:
    return StoredBallot(poll_id=b.poll_id, voter_key=b.voter_key, sequence=b.sequence,
                        ballot_id=b.ballot_id, tracker=b.tracker, choice=b.choice,
                        channel=b.channel, recorded_at=b.recorded_at, position=position,
                        agent=b.agent)


def stored_times(event: BallotsRecorded, ballots: list[RecordedBallot]) -> list[datetime]:
    """When each ballot was stored, for the lag: the event's time (the ballots' own are
    to the minute), or theirs from a producer older than ``stored_at``."""
    return [event.stored_at or b.recorded_at for b in ballots]


def observe_lag(times: list[datetime], now: datetime) -> None:
    for at in times:  # the counting lag, as the tally sees it
        TALLY_LAG.observe(max((now - at).total_seconds(), 0.0))


def count_event(store: TallyStore, stream: str, event: BallotsRecorded, shards: int) -> int:
    """Count one ``ballots.recorded`` event without a stream position (embedded: the
    caller's transaction holds the copy rows and the partials together). The ballots a
    voter already has in the copy say what was counted. Returns the new ballots."""
    fresh = 0
    by_shard: dict[tuple[str, int], list[RecordedBallot]] = {}
    for b in event.ballots:
        by_shard.setdefault((b.poll_id, counting_shard(b.voter_key, shards)), []).append(b)
    for (poll_id, shard), ballots in sorted(by_shard.items()):
        sheet = store.sheet(poll_id)
        if sheet is None or sheet.rules is None:
            # Before poll.opened: kept in the copy, counted when the rules come
            # (``count_copy``), since the copy is what says what was counted.
            store.add_ballots([stored(b) for b in ballots])
            continue
        rules = sheet.rules
        state = store.partial(stream, shard, poll_id)
        count = ShardCount.from_state(rules, state) if state else ShardCount(rules)
        for earlier in store.voter_ballots(poll_id, {b.voter_key for b in ballots}):
            count.remember(earlier)
        new = [s for s in map(stored, ballots) if count.add(s)]
        if new:
            store.add_ballots(new)
            store.save_partials(stream, shard, None, 0, {poll_id: count.state()})
            fresh += len(new)
    return fresh


def count_copy(store: TallyStore, stream: str, poll_id: str, rules: PollRules,
               shards: int) -> None:
    """Embedded: the rules came after some ballots, which wait in the copy uncounted;
    count the copy into the partials, once (a poll with partials is counted already)."""
    if store.partials(stream, shards, poll_id):
        return
    counts = {s: ShardCount(rules) for s in range(shards)}
    for b in store.ballots(poll_id):
        counts[counting_shard(b.voter_key, shards)].add(b)
    for shard, count in counts.items():
        if count.received:
            store.save_partials(stream, shard, None, 0, {poll_id: count.state()})


def _rules(store: TallyStore, poll_id: str) -> PollRules:
    sheet = store.sheet(poll_id)
    if sheet is None or sheet.rules is None:
        raise RulesUnknown(poll_id)
    return sheet.rules


@dataclass
class _Shard:
    position: int  # of the next message to apply (counting_stream.position_of)
    states: dict[str, dict]  # checkpointed partials of polls not met yet this session
    counts: dict[str, ShardCount] = field(default_factory=dict)  # polls met


@dataclass
class ShardCounters:
    """The counting shards one tally worker holds (``counting_stream.Counter``)."""

    store: TallyStore
    stream: str
    shards: int
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _held: dict[int, _Shard] = field(default_factory=dict)
    _rules: dict[str, PollRules] = field(default_factory=dict)  # frozen once known

    def take(self, shard: int) -> int:
        position, states = self.store.checkpoint(self.stream, shard)
        self._held[shard] = _Shard(position, dict(states))
        COUNTING_POSITION.labels(str(shard)).set(position % GENERATION_SPAN)
        return position

    def drop(self, shard: int) -> None:
        self._held.pop(shard, None)

    def apply(self, batches: dict[int, list[tuple[int, RawEnvelope]]]) -> set[int]:
        """Count each shard's messages; one write of the copy for all of them, then every
        shard's compare-and-set at once (a Paxos round each: in turn, they made the
        batch's latency). Returns the shards another worker moved first."""
        moves: list[tuple[int, int, int, dict[str, dict]]] = []
        seen: list[datetime] = []  # when each ballot was stored: the lag
        new: list[StoredBallot] = []
        try:
            for shard, items in batches.items():
                held = self._held.get(shard)
                if held is None:  # a failed batch left it unloaded: from its checkpoint
                    self.take(shard)
                    held = self._held[shard]
                todo = [(offset, env) for offset, env in items if offset >= held.position]
                if not todo:
                    continue
                touched: set[str] = set()
                end = todo[-1][0] + 1
                for offset, env in todo:
                    generation = rotated_to(env)
                    if generation is not None:
                        if generation > generation_of(offset):
                            # The stream's end: the next ballot is in the next one.
                            end = position_of(generation)
                            break
                        continue  # the same marker, read in the generation it opened
                    event, mine = self._ballots(shard, offset, env)
                    if event is not None:
                        seen += stored_times(event, mine)
                    for b in mine:
                        s = stored(b, offset)
                        if self._count(held, shard, b.poll_id, offset).add(s):
                            new.append(s)
                            touched.add(b.poll_id)
                moves.append((shard, held.position, end,
                              {p: held.counts[p].state() for p in touched}))
            self.store.add_ballots(new)
            kept = self.store.save_checkpoints(self.stream, moves)
        except BaseException:
            # The partials in memory may be ahead of the checkpoints: the next batch
            # loads these shards from their checkpoints again.
            for shard in batches:
                self._held.pop(shard, None)
            raise
        lost = set()
        for (shard, _, end, _), ok in zip(moves, kept, strict=True):
            if ok:
                self._held[shard].position = end
                COUNTING_POSITION.labels(str(shard)).set(end % GENERATION_SPAN)
            else:
                self.drop(shard)
                lost.add(shard)
        observe_lag(seen, self.clock())
        return lost

    def _count(self, held: _Shard, shard: int, poll_id: str, offset: int) -> ShardCount:
        """The partial of a poll in this shard, as of ``offset``: from the checkpoint,
        with its voters' map rebuilt from the copy's rows written before ``offset`` (rows
        at or after it, left by a worker that died before its checkpoint, are counted
        again from the stream, the same way)."""
        count = held.counts.get(poll_id)
        if count is None:
            rules = self._rules.get(poll_id) or _rules(self.store, poll_id)
            self._rules[poll_id] = rules
            state = held.states.pop(poll_id, None)
            count = ShardCount.from_state(rules, state) if state else ShardCount(rules)
            for b in self.store.shard_ballots(poll_id, shard, self.shards):
                if b.position < offset:
                    count.remember(b)
            held.counts[poll_id] = count
        return count

    def _ballots(self, shard: int, offset: int, env: RawEnvelope
                 ) -> tuple[BallotsRecorded | None, list[RecordedBallot]]:
        """The ballots of one stream message that belong to this shard. A message that
        is not a readable ``ballots.recorded`` can never be counted: it is logged and
        passed over (the seal's count and digest then keep the poll from publishing,
        and say so). A ballot of another shard is passed over the same way: counted
        here, it would escape its own shard's one-ballot-per-voter rule."""
        try:
            _, event = unwrap(env)
            if not isinstance(event, BallotsRecorded):
                raise ValueError(f"a {type(event).__name__} on a counting stream")
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            log.error("unreadable message on a counting stream passed over",
                          extra=log_fields(shard=shard, offset=offset, error=str(exc)[:300]))
            return None, []
        mine = [b for b in event.ballots if counting_shard(b.voter_key, self.shards) == shard]
        if len(mine) != len(event.ballots):
            log.error("ballots of another shard on a counting stream passed over",
                      extra=log_fields(shard=shard, offset=offset,
                                       passed=len(event.ballots) - len(mine)))
        return event, mine
