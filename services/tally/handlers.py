"""Tally event handlers and queries, and the service core that registers them."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from urne import __version__
from urne.contracts.commands import (
    CheckPolls,
    GetLiveResult,
    GetRecord,
    GetRecordLines,
    GetResult,
    GetTreeHeads,
    ProveConsistency,
    ProveInclusion,
)
from urne.contracts.events import (
    BallotBoxSealedV2,
    BallotsMissing,
    BallotsRecorded,
    ElectorateCounted,
    ElectorateMissing,
    PollClosed,
    PollOpened,
    PollResultReleased,
    ResultPublished,
)
from urne.contracts.replies import (
    BallotRecord,
    ConsistencyProof,
    InclusionProof,
    LiveResult,
    PollsChecked,
    RecordLines,
    SignedResult,
    TreeHeads,
)
from urne.crypto.keys import SigningKey, b64url
from urne.messaging.kernel import Context, RawEnvelope, ServiceCore
from urne.platform.errors import DomainError, Invalid, NotFound
from urne.platform.logging import log_fields
from urne.platform.metrics import POLLS_AWAITING, RESULTS, RESULTS_WITHHELD
from urne.platform.offload import cpu_bound
from urne.record import log as record_log
from urne.record import merkle, tiles
from urne.record.canonical import ballot_set_digest, canonical_json
from urne.services.tally import domain, shards
from urne.services.tally.domain import LogState, StoredBallot
from urne.services.tally.ports import TallyStore

log = logging.getLogger(__name__)

# A sealed poll still short of its ballots whose count has not moved for this long has
# lost an event on the way: the vote service is asked to send them again (and again,
# as often, until they are all here). A tally that is merely behind keeps counting.
ASK_AFTER = timedelta(seconds=10)
# Asked again while the count still does not move, each time twice as long after the
# last (up to ASK_AT_MOST): when the tally's workers are stopped, rather than events
# lost, every answer sends the poll's every ballot again, and they would pile up in the
# counting streams.
ASK_AT_MOST = timedelta(minutes=5)
# A signed result whose result.published the broker has not confirmed this long after
# the check first saw it is announced again.
RESEND_AFTER = timedelta(seconds=10)
# A sealed poll unpublished this long is an operator's matter (log error; the metric
# urne_tally_polls_awaiting shows how many wait).
ALERT_AFTER = timedelta(minutes=2)
# How often the check looks for copies of ballots whose retention is over.
PURGE_EVERY = timedelta(minutes=10)
# A withheld result is counted again this often, in case what disagreed was still moving.
RECHECK_WITHHELD = timedelta(seconds=30)
# A process appending to a poll's log holds it this long (renewed at each append): one
# writer at a time; another process takes it over only once the hold has run out.
HOLD_LOG = timedelta(seconds=90)


def _announcement(poll_id: str, signed: dict) -> ResultPublished:
    """The result.published of a signed result, the same whenever it is sent."""
    result = signed["result"]
    return ResultPublished(poll_id=poll_id, record_root=result["record"]["root"],
                           ballots_counted=domain.counted_of(result),
                           published_at=datetime.fromisoformat(result["computed_at"]))


@dataclass(frozen=True)
class _Waiting:
    """A sealed poll the check found unpublished: since when, when its count last
    moved (and to what), when its ballots were last asked for again, and how many times
    since the count last moved."""

    since: datetime
    moved_at: datetime
    received: int
    asked_at: datetime | None
    asks: int = 0

    def may_ask(self, now: datetime) -> bool:
        if now - self.moved_at < ASK_AFTER:
            return False  # a tally merely behind counts on
        if self.asked_at is None:
            return True
        return now - self.asked_at >= min(ASK_AFTER * 2 ** max(self.asks - 1, 0), ASK_AT_MOST)


def _disagreement(poll: domain.TallySheet, merged: domain.Merged,
                 ballots: list[StoredBallot], result: dict) -> str | None:
    """Why the counts of a sealed poll disagree, or None: the merged shard counts, the
    recount of the copy and the vote service's seal must tell one story."""
    if merged.received != poll.sealed_count:
        return (f"the shards counted {merged.received} ballots, the vote service "
                f"sealed {poll.sealed_count}")
    if len(ballots) != poll.sealed_count:
        return f"the copy holds {len(ballots)} ballots, the seal {poll.sealed_count}"
    if poll.sealed_digest is None:  # a seal stored from a retired v1 without its digest
        return "the seal carries no digest of the sealed ballots"
    if ballot_set_digest(b.ballot_id for b in ballots) != poll.sealed_digest:
        return "the copy holds other ballots than the sealed set (digest)"
    try:
        streamed = merged.tally.result()
    except ValueError as exc:  # a negative count: a ballot removed, never added
        return f"the merged shard counts are impossible: {exc}"
    if streamed != result["tally"] or merged.tally.ballots != domain.counted_of(result):
        return "the merged shard counts differ from the recount of the copy"
    return None


def _prepare(poll: domain.TallySheet, merged: domain.Merged, ballots: list[StoredBallot],
             now: datetime, logged: domain.Logged | None = None,
             signed_heads: list[dict] | None = None, min_cell: int = 1
             ) -> tuple[domain.Publication, str | None]:
    """The publication of a sealed poll from the copy and the log written during the
    vote, and why it may not be signed (or None). CPU-bound: the recount, the record and
    its tree."""
    publication = domain.publication(poll, ballots, __version__, now, logged=logged,
                                     min_cell=min_cell)
    reason = _disagreement(poll, merged, ballots, publication.result)
    if reason is None and publication.entries is not None:
        assert poll.rules_hash is not None and publication.leaves is not None
        record = publication.result["record"]
        reason = domain.log_disagreement(poll.rules_hash, publication.entries, record["root"],
                                         record["heads"], signed_heads or [],
                                         publication.leaves)
    return publication, reason


def _reader(pieces: dict[Any, bytes], missing: Callable[[Any], bytes]) -> Callable[..., bytes]:
    """A reader of pieces read ahead (so the CPU-bound work reads nothing)."""
    def read(*key: Any) -> bytes:
        k = key[0] if len(key) == 1 else key
        return pieces[k] if k in pieces else missing(k)
    return read


def _no_tile(key: Any) -> bytes:
    raise KeyError(key)


@dataclass
class TallyHandlers:
    store: TallyStore
    signer: SigningKey
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Live counts are recounted from the stored ballots at most this often per poll
    # (and process): a reader asking more often gets the last count, with its as_of.
    live_max_age: timedelta = timedelta(seconds=1)
    # Whose checkpoints are this tally's partials: the broker's virtual host (its
    # counting streams), or "embedded"; and how many counting shards there are.
    stream: str = "embedded"
    shards: int = 1
    # Distributed: ballots reach the tally through its workers' counting streams, not
    # through this core's event handler.
    counted_by_workers: bool = False
    # Where CPU-bound work runs (the recount and the record of a large poll): off the
    # event loop under eventlet (urne/platform/offload.py).
    offload: Callable[..., Any] = cpu_bound
    # The log grows during the vote: an interval (and its signed tree head) at most this
    # often per poll, once at least ``head_min`` ballots wait, so an interval never holds
    # so few that its time would tell when someone voted. The rest: at publication.
    head_every: timedelta = timedelta(minutes=5)
    head_min: int = 10
    # How long the copy of a published poll's ballots is kept after its result was
    # signed (URNE_TALLY_COPY_DAYS); looked for at most every PURGE_EVERY.
    copy_keep: timedelta = timedelta(days=90)
    # The fewest ballots an agent's line in the signed reconciliation may count, per
    # channel, to be published alone (URNE_MIN_CELL); smaller ones are pooled.
    min_cell: int = 5
    _purged_at: datetime | None = field(default=None, init=False, repr=False)
    _holder: str = field(default_factory=lambda: uuid.uuid4().hex, init=False, repr=False)
    _log_lock: Any = field(default_factory=threading.Lock, init=False, repr=False)
    _grown_at: dict[str, datetime] = field(default_factory=dict, init=False, repr=False)
    _live: dict[str, LiveResult] = field(default_factory=dict, init=False, repr=False)
    # Sealed polls seen waiting by check_polls (in this process).
    _waiting: dict[str, _Waiting] = field(default_factory=dict, init=False, repr=False)
    _alerted: set[str] = field(default_factory=set, init=False, repr=False)
    _electorate_asked: dict[str, datetime] = field(default_factory=dict, init=False,
                                                   repr=False)
    _alerted_withheld: set[str] = field(default_factory=set, init=False, repr=False)
    _withheld_checked: dict[str, datetime] = field(default_factory=dict, init=False,
                                                   repr=False)

    # --- events -----------------------------------------------------------
    # Each event writes its own part of the poll's sheet and nothing else, so they may
    # come in any order, again, or at once, and none undoes another.
    def on_poll_opened(self, event: PollOpened, ctx: Context) -> None:
        self.store.save_rules(event.poll_id, event.rules, event.rules_hash,
                              event.results_visibility, event.electorate)
        if not self.counted_by_workers:  # ballots that came first wait in the copy
            shards.count_copy(self.store, self.stream, event.poll_id, event.rules,
                              self.shards)
        self._try_publish(event.poll_id, ctx)

    def on_ballots_recorded(self, event: BallotsRecorded, ctx: Context) -> None:
        """Embedded: count the ballots into the partials, in the transaction of the copy
        (a redelivered event finds its ballots in the copy and changes nothing)."""
        shards.count_event(self.store, self.stream, event, self.shards)
        shards.observe_lag(shards.stored_times(event, event.ballots), self.clock())
        for poll_id in sorted({b.poll_id for b in event.ballots}):
            self._try_publish(poll_id, ctx)

    def on_poll_closed(self, event: PollClosed, ctx: Context) -> None:
        """The organiser's service closed the poll: with the vote service's seal, the
        second of the two facts signing needs (neither service alone can make the tally
        sign; issue 10)."""
        self.store.close(event.poll_id, event.closed_at)
        self._try_publish(event.poll_id, ctx)

    def on_electorate_counted(self, event: ElectorateCounted, ctx: Context) -> None:
        """Identity counted a census poll's eligible people at its close: the third fact
        a census poll's signing needs (its reconciliation names the number)."""
        self.store.save_eligible(event.poll_id, event.eligible)
        self._try_publish(event.poll_id, ctx)

    def on_ballot_box_sealed(self, event: BallotBoxSealedV2, ctx: Context) -> None:
        self.store.save_seal(event.poll_id, event.ballots_recorded, event.ballots_digest)
        self._try_publish(event.poll_id, ctx)

    def on_poll_result_released(self, event: PollResultReleased, ctx: Context) -> None:
        """Lift the embargo. Signing is another matter (``_try_publish``, at the close):
        a release may come before the seal, even before the poll's rules, and is kept
        until the result is signed; after that, it shows the result at once. Nothing is
        emitted: the result was announced (result.published) when it was signed."""
        self.store.release(event.poll_id, event.released_at)

    def check_polls(self, cmd: CheckPolls, ctx: Context) -> PollsChecked:
        """The sealed polls not published yet: publish those that can be (a piece came
        while another worker was busy with it); for one still short of its seal whose
        count has not moved for ``ASK_AFTER`` (a tally merely behind keeps counting),
        ask the vote service for its ballots again, then twice as long after each ask
        while the count stays where it was (``ASK_AT_MOST`` at most). A poll
        waiting longer than ``ALERT_AFTER`` is logged as an error, once."""
        now = self.clock()
        self._grow_logs(now)
        self._purge_copies(now)
        published, asked, waiting, withheld = [], [], 0, 0
        away: list[DomainError] = []  # for each poll the store did not answer for
        polls = self.store.awaiting()
        for poll_id in polls:
            try:
                state = self._check_poll(poll_id, now, ctx)
            except DomainError as exc:
                if exc.status != 503:
                    raise
                # The store did not answer for this poll (a long read timed out): the
                # others are checked all the same, and what their checks sent is kept;
                # the next check tries this one again.
                away.append(exc)
                waiting += 1
                log.warning("checking a sealed poll: the store did not answer",
                            extra=log_fields(poll_id=poll_id, error=str(exc)[:300]))
                continue
            except Exception:  # one poll's fault must not stop the others' checks
                if poll_id not in self._alerted:
                    self._alerted.add(poll_id)
                    log.exception("checking a sealed poll failed", extra=log_fields(
                        poll_id=poll_id))
                continue
            if state == "signed":
                published.append(poll_id)
            elif state == "asked":
                asked.append(poll_id)
            if state != "signed":
                waiting += 1
            withheld += state == "withheld"
        POLLS_AWAITING.set(waiting)
        RESULTS_WITHHELD.set(withheld)
        if away and len(away) == len(polls):
            raise away[0]  # no poll could be checked: the store is away, say so
        return PollsChecked(published=published, asked=asked, waiting=waiting)

    def _purge_copies(self, now: datetime) -> None:
        """Delete the copy of the ballots of each poll whose result was signed more than
        ``copy_keep`` ago (privacy by default: voter keys and choices are kept no longer
        than the appeal period needs). A stop midway: the next look deletes the rest."""
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = now
        for poll_id in self.store.copies_to_purge(now - self.copy_keep):
            self.store.purge_copy(poll_id, now, self.stream, self.shards)
            log.info("copy of the ballots deleted, its retention over", extra=log_fields(
                poll_id=poll_id))

    def _check_poll(self, poll_id: str, now: datetime, ctx: Context
                    ) -> Literal["signed", "asked", "waiting", "withheld"]:
        """One sealed poll of ``check_polls``."""
        signed_now = self._try_publish(poll_id, ctx, quiet=True)
        stored = self.store.result(poll_id)
        if stored is not None:
            # Signed, but its result.published not confirmed yet (the transport clears
            # it from the list once confirmed): sent again RESEND_AFTER after this
            # check first saw it, then as often, until confirmed. Without an outbox of
            # its own (SQLite: the bus's), a store lists no signed poll.
            if signed_now or poll_id not in self._waiting:
                self._waiting[poll_id] = _Waiting(now, now, -1, now)  # as if just sent
            sent = self._waiting[poll_id]
            if sent.asked_at is not None and now - sent.asked_at >= RESEND_AFTER:
                ctx.emit(_announcement(poll_id, stored))
                self._waiting[poll_id] = replace(sent, asked_at=now)
                log.warning("result.published sent again", extra=log_fields(
                    poll_id=poll_id))
            return "signed"
        sheet = self.store.sheet(poll_id)
        if sheet is not None and sheet.withheld is not None:
            return "withheld"  # _try_publish alerted; it signs once the counts agree
        by_shard, by_cell = self._received(sheet) if sheet and sheet.rules \
            else (None, None)
        received = sum(by_shard) if by_shard else 0
        sealed = sheet.sealed_count if sheet and sheet.sealed_count is not None else 0
        seen = self._waiting.get(poll_id)
        if seen is None or seen.received != received:
            seen = _Waiting(seen.since if seen else now, now, received,
                            seen.asked_at if seen else None)
        state: Literal["asked", "waiting"] = "waiting"
        if received < sealed and seen.may_ask(now):
            ctx.emit(BallotsMissing(poll_id=poll_id, received=received, sealed=sealed,
                                    received_by_shard=by_shard, received_by_cell=by_cell))
            seen = replace(seen, asked_at=now, asks=seen.asks + 1)
            state = "asked"
            log.warning("ballots missing; asked the vote service for them again",
                        extra=log_fields(poll_id=poll_id, received=received,
                                         sealed=sealed))
        if sheet is not None and sheet.closed_at is not None and sheet.electorate_missing:
            state = self._ask_electorate(poll_id, now, seen.since, ctx) or state
        self._waiting[poll_id] = seen
        if now - seen.since >= ALERT_AFTER and poll_id not in self._alerted:
            self._alerted.add(poll_id)
            log.error("sealed poll still unpublished", extra=log_fields(
                poll_id=poll_id, received=received, sealed=sealed,
                rules=bool(sheet and sheet.rules), waiting_s=(now - seen.since).seconds))
        return state

    def _ask_electorate(self, poll_id: str, now: datetime, since: datetime, ctx: Context
                        ) -> Literal["asked"] | None:
        """A closed, sealed census poll still without its count of eligible people
        ASK_AFTER after the check first saw it waiting: identity is asked for it again,
        at most every ASK_AFTER (electorate.counted lost, or identity stopped between
        its count and the sending)."""
        asked = self._electorate_asked.get(poll_id)
        if now - since < ASK_AFTER or (asked is not None and now - asked < ASK_AFTER):
            return None
        ctx.emit(ElectorateMissing(poll_id=poll_id))
        self._electorate_asked[poll_id] = now
        log.warning("the census count is missing; asked identity for it again",
                    extra=log_fields(poll_id=poll_id))
        return "asked"

    def _received(self, sheet: domain.TallySheet
                           ) -> tuple[list[int], list[list[int]] | None]:
        """The ballots each shard has counted (its checkpointed partial's), and each
        shard's by voter cell (None if a partial does not say)."""
        assert sheet.rules is not None
        states = self.store.partials(self.stream, self.shards, sheet.poll_id)
        counts = [domain.ShardCount.from_state(sheet.rules, states[s]) if s in states
                  else domain.ShardCount(sheet.rules) for s in range(self.shards)]
        cells = [c.cells for c in counts]
        return [c.received for c in counts], \
            None if any(c is None for c in cells) else [list(c or ()) for c in cells]

    def _merged(self, sheet: domain.TallySheet) -> domain.Merged:
        assert sheet.rules is not None
        return domain.merge(sheet.rules, self.store.partials(self.stream, self.shards,
                                                             sheet.poll_id).values())

    def _try_publish(self, poll_id: str, ctx: Context, quiet: bool = False) -> bool:
        """Publish once the poll is sealed and every shard has counted every sealed
        ballot, if the merged shard counts equal a full recount of the tally's copy and
        the copy is the sealed set; otherwise withhold it, with an alert.

        Events may arrive in any order (ballots after the seal, the seal before
        "opened"), so every handler ends here and only the last piece publishes.
        True if this call signed the result. ``quiet``: the check's call, every second,
        which logs nothing of what the events' calls already logged.
        """
        poll = self.store.sheet(poll_id)
        if poll is None or poll.rules is None or poll.sealed_count is None:
            return False
        if poll.closed_at is None:
            if not quiet:
                log.info("sealed; waiting for poll.closed", extra=log_fields(poll_id=poll_id))
            return False
        if self.store.result(poll_id) is not None:
            return False
        if poll.electorate_missing:
            if not quiet:
                log.info("closed and sealed; waiting for the count of the census",
                         extra=log_fields(poll_id=poll_id))
            return False
        if poll.withheld is not None and quiet:
            # Counted again (a full recount) at most every RECHECK_WITHHELD, not every
            # check: it disagreed, and an operator was told.
            last = self._withheld_checked.get(poll_id)
            if last is not None and self.clock() - last < RECHECK_WITHHELD:
                return False
            self._withheld_checked[poll_id] = self.clock()
        merged = self._merged(poll)
        if merged.received < poll.sealed_count:
            if not quiet:
                log.info("waiting for ballots", extra=log_fields(
                    poll_id=poll_id, received=merged.received, sealed=poll.sealed_count))
            return False
        # Every shard has counted as many ballots as were sealed: recount the copy, and
        # finish the log with what it does not hold yet.
        with self._log_lock:
            now = self.clock()
            if not self.store.hold_log(poll_id, self._holder, now + HOLD_LOG, now):
                return False  # another process appends to it: its next check publishes
            state = self.store.log_state(poll_id)
            ballots = list(self.store.ballots(poll_id))
            logged = self._logged(poll_id, state) if state is not None else None
            publication, reason = self.offload(_prepare, poll, merged, ballots, now, logged,
                                               self.store.tree_heads(poll_id), self.min_cell)
            if reason is not None:
                self._withhold(poll, reason, quiet)
                return False
            if publication.entries is not None:
                assert poll.rules_hash is not None
                before = state or LogState.empty(poll.rules_hash)
                final = domain.Appended([], publication.chunks, publication.tiles,
                                       publication.trackers, LogState(
                                           publication.size, publication.root,
                                           before.parent, tuple(publication.result["record"]
                                                                ["heads"]), before.cursor))
                if not self.store.append_log(poll_id, self._holder, before.size, final):
                    return False  # the log moved meanwhile: the next check starts again
                # The head at the close, before the result (a stop in between: the next
                # check appends nothing and signs it).
                self._sign_head(poll_id, poll.rules_hash, final.state, now,
                                only_if_missing=True)
        if poll.withheld is not None:
            self.store.withhold(poll_id, None)
            log.warning("withheld result now agrees; signing", extra=log_fields(
                poll_id=poll_id, was=poll.withheld))
        # The record first, whole, then the result that commits to it: whoever sees the
        # result finds the record (written again if this stops in between: same bytes).
        self._save_record(poll_id, publication)
        result = publication.result
        signed = SignedResult(result=result, signature=b64url(self.signer.sign(
            canonical_json(result))), key_id=self.signer.public.kid)
        if self.store.save_result(poll_id, signed.model_dump(mode="json")):
            RESULTS.inc()
            ctx.emit(_announcement(poll_id, signed.model_dump(mode="json")))
            return True
        return False

    def _logged(self, poll_id: str, state: LogState) -> domain.Logged:
        """The log written during the vote, read ahead for the publication."""
        chunks = self.store.record_chunks(poll_id, domain.chunk_span(0, state.size))
        return domain.Logged(state, *domain.parse_lines(chunks, state.size),
                             *self._append_readers(poll_id, state.size, chunks))

    def _append_readers(self, poll_id: str, size: int, chunks: list[bytes] | None = None
                        ) -> tuple[Callable[..., bytes], Callable[..., bytes]]:
        """Readers of what appending to a log of ``size`` entries reads (its partial chunk
        and partial tiles), read ahead so the CPU-bound append reads nothing; ``chunks``:
        the log's chunks if already read."""
        chunk, tile_keys = domain.partial_reads(size)
        ahead: dict[Any, bytes] = {}
        if chunk is not None:
            ahead[chunk] = (chunks[chunk] if chunks is not None else
                            b"".join(self.store.record_chunks(poll_id, range(chunk, chunk + 1))))
        tiles_ahead = {key: self.store.record_tile(poll_id, *key) for key in tile_keys}
        return _reader(ahead, lambda _: b""), _reader(tiles_ahead, _no_tile)

    # --- the log, growing during the vote -----------------------------------
    def _grow_logs(self, now: datetime) -> None:
        for poll_id in self.store.logging():
            last = self._grown_at.get(poll_id)
            if last is not None and now - last < self.head_every:
                continue
            self._grown_at[poll_id] = now
            try:
                self._grow(poll_id, now)
            except DomainError as exc:
                if exc.status != 503:
                    raise
                # The store did not answer for this poll: the next check tries it again
                # (not head_every later), and the other polls' logs grow meanwhile.
                self._grown_at.pop(poll_id, None)
                log.warning("growing a poll's log: the store did not answer",
                            extra=log_fields(poll_id=poll_id, error=str(exc)[:300]))
            except Exception:  # one poll's fault must not stop the others'
                log.exception("growing a poll's log failed", extra=log_fields(
                    poll_id=poll_id))

    def _grow(self, poll_id: str, now: datetime) -> None:
        """Append the ballots counted since the last interval to the poll's log, and sign
        its new tree head; or, with fewer than ``head_min`` ready, sign the current head
        if a stop between an append and its signature left it unsigned."""
        with self._log_lock:
            # Read under the lock: once sealed, only the publication appends (its last
            # interval is everything not logged yet).
            sheet = self.store.sheet(poll_id)
            if sheet is None or sheet.rules_hash is None or sheet.sealed_count is not None \
                    or self.store.result(poll_id):
                return
            if not self.store.hold_log(poll_id, self._holder, now + HOLD_LOG, now):
                return
            state = self.store.log_state(poll_id) or LogState.empty(sheet.rules_hash)
            new, cursor = self.store.log_pending(poll_id, state.cursor, self.stream,
                                                 self.shards)
            ready = self._ready(poll_id, new)
            if len(ready) < self.head_min:
                self._sign_head(poll_id, sheet.rules_hash, state, now, only_if_missing=True)
                return
            appended = self.offload(domain.append_interval, state, ready,
                                    *self._append_readers(poll_id, state.size), cursor)
            if self.store.append_log(poll_id, self._holder, state.size, appended):
                self._sign_head(poll_id, sheet.rules_hash, appended.state, now)

    def _ready(self, poll_id: str, new: list[StoredBallot]) -> list[record_log.Ballot]:
        """The new ballots that may enter the log now, each naming the ballot it
        replaces: a voter's first, and a revote whose voter's earlier ballots are all in
        the copy (one of them late stays out until they are, or until publication)."""
        revoters = {b.voter_key for b in new if b.sequence > 1}
        chains: dict[str, dict[int, StoredBallot]] = {}
        for b in [*(self.store.voter_ballots(poll_id, revoters) if revoters else []), *new]:
            chains.setdefault(b.voter_key, {})[b.sequence] = b
        ready = []
        for b in new:
            chain = chains.get(b.voter_key, {})
            if all(s in chain for s in range(1, b.sequence)):
                before = chain.get(b.sequence - 1)
                ready.append(record_log.Ballot(b.tracker, b.choice, b.channel,
                                               before.tracker if before else None))
        return ready

    def _sign_head(self, poll_id: str, rules_hash: str, state: LogState, now: datetime,
                   only_if_missing: bool = False) -> None:
        if state.size == 0:
            return
        if only_if_missing:
            heads = self.store.tree_heads(poll_id)
            if heads and int(heads[-1]["head"]["size"]) >= state.size:
                return
        head = domain.tree_head(poll_id, rules_hash, state, now)
        self.store.save_tree_head(poll_id, state.size, {
            "head": head, "signature": b64url(self.signer.sign(canonical_json(head))),
            "key_id": self.signer.public.kid, "algorithm": "Ed25519"})
        log.info("tree head signed", extra=log_fields(poll_id=poll_id, size=state.size))

    def _heads_shown(self, poll_id: str) -> list[dict[str, Any]]:
        """The signed tree heads of a poll's log, during the vote and after: they show
        how many ballots were logged, and when, never what they hold. Hidden, as the
        rest, under an embargo."""
        sheet = self.store.sheet(poll_id)
        if sheet is None:
            raise NotFound(f"no poll {poll_id} is known to the tally", code="poll_not_found")
        if sheet.embargoed:
            domain.check_shown(sheet, poll_id, signed=False)
        return self.store.tree_heads(poll_id)

    def get_tree_heads(self, q: GetTreeHeads, ctx: Context) -> TreeHeads:
        return TreeHeads(poll_id=q.poll_id, heads=self._heads_shown(q.poll_id))

    def _save_record(self, poll_id: str, publication: domain.Publication) -> None:
        self.store.save_record(poll_id, publication.chunks, publication.tiles,
                               publication.trackers, publication.size, publication.root)

    def _withhold(self, poll: domain.TallySheet, reason: str, quiet: bool) -> None:
        if poll.withheld != reason:
            self.store.withhold(poll.poll_id, reason)
        if poll.poll_id not in self._alerted_withheld or not quiet:
            self._alerted_withheld.add(poll.poll_id)
            log.error("result withheld: the counts disagree", extra=log_fields(
                poll_id=poll.poll_id, reason=reason))

    # --- queries ----------------------------------------------------------
    def _published(self, poll_id: str) -> dict:
        """The signed result, if it may be shown: every query that shows anything about
        the ballots (result, record, proofs; the gateway's exports use the result) asks
        here, so the tally enforces the visibility itself, whatever asks."""
        stored = self.store.result(poll_id)
        domain.check_shown(self.store.sheet(poll_id), poll_id, signed=stored is not None)
        assert stored is not None
        return stored

    def get_result(self, q: GetResult, ctx: Context) -> SignedResult:
        return SignedResult.model_validate(self._published(q.poll_id))

    def _record(self, poll_id: str) -> tuple[int, str]:
        """The published record's size and root. A result whose record is not stored
        (signed before records were stored) gets it stored now, from the copy, if it is
        the record the result commits to."""
        signed = self._published(poll_id)
        head = self.store.record_head(poll_id)
        if head is not None:
            return head
        result = signed["result"]
        sheet = self.store.sheet(poll_id)
        assert sheet is not None and sheet.rules is not None
        publication = self.offload(domain.publication, sheet, list(self.store.ballots(poll_id)),
                                   result["software_version"],
                                   datetime.fromisoformat(result["computed_at"]),
                                   result["format"])
        if (publication.size, publication.root) != (result["record"]["size"],
                                                    result["record"]["root"]):
            log.error("the tally's copy is not the record its signed result commits to",
                      extra=log_fields(poll_id=poll_id, signed=result["record"]["root"],
                                       copy=publication.root))
            raise DomainError("the record cannot be served: the stored ballots differ from "
                              "the record the signed result commits to",
                              code="record_unavailable", status=503)
        self._save_record(poll_id, publication)
        log.warning("record stored from the copy", extra=log_fields(
            poll_id=poll_id, size=publication.size))
        return publication.size, publication.root

    def _lines(self, poll_id: str, size: int, start: int, limit: int
               ) -> tuple[list[bytes], int | None]:
        """Lines [start, start + limit) of the record, and where the next page starts."""
        stop = min(start + limit, size)
        span = domain.chunk_span(start, stop)
        lines = domain.chunk_lines(self.store.record_chunks(poll_id, span), span.start,
                                   start, stop) if span else []
        return lines, stop if stop < size else None

    def get_record(self, q: GetRecord, ctx: Context) -> BallotRecord:
        size, root = self._record(q.poll_id)
        lines, next_start = self._lines(q.poll_id, size, q.start, q.limit)
        encoding = self._published(q.poll_id)["result"]["record"]["leaf_encoding"]
        return BallotRecord(poll_id=q.poll_id, size=size, root=root, leaf_encoding=encoding,
                            entries=[json.loads(line) for line in lines],
                            start=q.start, next=next_start)

    def get_record_lines(self, q: GetRecordLines, ctx: Context) -> RecordLines:
        size, root = self._record(q.poll_id)
        lines, next_start = self._lines(q.poll_id, size, q.start, q.limit)
        return RecordLines(poll_id=q.poll_id, size=size, root=root, start=q.start,
                           next=next_start,
                           lines=b"".join(line + b"\n" for line in lines).decode())

    def prove_inclusion(self, q: ProveInclusion, ctx: Context) -> InclusionProof:
        """From the stored tree: a few tiles read, whatever the record's size."""
        size, root = self._record(q.poll_id)
        index = self.store.tracker_position(q.poll_id, q.tracker)
        if index is None or index >= size:
            raise NotFound("no ballot of the record has this tracker", code="tracker_not_found")
        tree = tiles.TiledTree(size, partial(self.store.record_tile, q.poll_id))
        try:
            proof = InclusionProof(poll_id=q.poll_id, tracker=q.tracker, index=index,
                                   size=size, root=root, leaf=tree.leaf(index).hex(),
                                   path=[h.hex() for h in tree.inclusion_proof(index)])
            whole = tree.root().hex() == root
        except (KeyError, ValueError):  # a tile missing or shorter than the tree
            whole = False
        if not whole:
            log.error("the stored tree's root is not the record's", extra=log_fields(
                poll_id=q.poll_id, size=size))
            raise DomainError("the inclusion proof cannot be served: the stored tree "
                              "disagrees with the record's root",
                              code="record_unavailable", status=503)
        return proof

    def prove_consistency(self, q: ProveConsistency, ctx: Context) -> ConsistencyProof:
        """Between two signed sizes of the log (tree heads, and the published record),
        from the stored tiles: whoever saved an earlier head checks, without downloading
        the record, that the log still begins with what was signed then. Checked here
        too before it is served: a log that no longer extends a head it signed is an
        operator's alarm, not a proof."""
        roots = {int(h["head"]["size"]): str(h["head"]["root"])
                 for h in self._heads_shown(q.poll_id)}
        if self.store.result(q.poll_id) is not None:
            size, root = self._record(q.poll_id)
            roots[size] = root
        second = q.second if q.second is not None else max(roots, default=q.first)
        for size in (q.first, second):
            if size not in roots:
                signed = ", ".join(map(str, sorted(roots))) or "none yet"
                raise NotFound(f"no tree head of this poll's log is at {size} entries (heads "
                               f"signed at: {signed})", code="tree_head_not_found")
        if q.first > second:
            raise Invalid(f"first ({q.first}) is after second ({second}): a proof runs from "
                          "an earlier head to a later one", code="invalid_request")
        tree = tiles.TiledTree(second, partial(self.store.record_tile, q.poll_id))
        try:
            path = tree.consistency_proof(q.first)
            whole = tree.root().hex() == roots[second] and merkle.verify_consistency(
                q.first, second, path, bytes.fromhex(roots[q.first]),
                bytes.fromhex(roots[second]))
        except (KeyError, ValueError):  # a tile missing or shorter than the tree
            whole = False
        if not whole:
            log.error("the stored log does not extend its signed tree heads", extra=log_fields(
                poll_id=q.poll_id, first=q.first, second=second))
            raise DomainError("the consistency proof cannot be served: the stored log "
                              "disagrees with its signed tree heads",
                              code="record_unavailable", status=503)
        return ConsistencyProof(poll_id=q.poll_id, first=q.first, second=second,
                                second_root=roots[second], path=[h.hex() for h in path])

    def get_live_result(self, q: GetLiveResult, ctx: Context) -> LiveResult:
        """Running counts of a live poll: the shards' checkpointed partials, merged (the
        counts of immutable rows, D5, never counters), at most every ``live_max_age``;
        ``as_of`` says when."""
        sheet = self.store.sheet(q.poll_id)
        domain.check_live(sheet, q.poll_id)
        assert sheet is not None
        now = self.clock()
        last = self._live.get(q.poll_id)
        if last is not None and now - last.as_of < self.live_max_age:
            return last
        merged = self._merged(sheet)
        reply = LiveResult(poll_id=q.poll_id, tally=merged.tally.result(),
                           ballots=merged.tally.ballots, ballots_received=merged.received,
                           as_of=now)
        self._live[q.poll_id] = reply
        return reply

    def published(self, events: list[RawEnvelope]) -> None:
        """The broker confirmed these events: a signed poll whose announcement went out
        leaves the check's list."""
        for env in events:
            if env.get("type") == ResultPublished.TYPE:
                poll_id = env["payload"]["poll_id"]
                self.store.done_awaiting(poll_id)
                self._waiting.pop(poll_id, None)
                self._electorate_asked.pop(poll_id, None)

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="tally",
            commands={CheckPolls: self.check_polls,
                      GetResult: self.get_result, GetRecord: self.get_record,
                      GetRecordLines: self.get_record_lines, GetTreeHeads: self.get_tree_heads,
                      ProveInclusion: self.prove_inclusion,
                      ProveConsistency: self.prove_consistency,
                      GetLiveResult: self.get_live_result},
            subscriptions={PollOpened: self.on_poll_opened, PollClosed: self.on_poll_closed,
                           **({} if self.counted_by_workers else
                              {BallotsRecorded: self.on_ballots_recorded}),
                           BallotBoxSealedV2: self.on_ballot_box_sealed,
                           ElectorateCounted: self.on_electorate_counted,
                           PollResultReleased: self.on_poll_result_released},
            ping=self.store.ping,
            published=self.published,
        )
