"""Tally event handlers and queries, and the service core that registers them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from urne import __version__
from urne.contracts.commands import GetLiveResult, GetRecord, GetResult, ProveInclusion
from urne.contracts.events import (
    BallotBoxSealed,
    BallotsRecorded,
    PollOpened,
    PollResultReleased,
    ResultPublished,
)
from urne.contracts.replies import (
    BallotRecord,
    InclusionProof,
    LiveResult,
    RecordEntry,
    SignedResult,
)
from urne.crypto.keys import SigningKey, b64url
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import NotFound
from urne.platform.logging import log_fields
from urne.platform.metrics import RESULTS
from urne.record import merkle
from urne.record.canonical import ballot_set_digest, canonical_json
from urne.services.tally import domain
from urne.services.tally.domain import StoredBallot
from urne.services.tally.ports import TallyStore

log = logging.getLogger(__name__)


@dataclass
class TallyHandlers:
    store: TallyStore
    signer: SigningKey
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Live counts are recounted from the stored ballots at most this often per poll
    # (and process): a reader asking more often gets the last count, with its as_of.
    live_max_age: timedelta = timedelta(seconds=1)
    _live: dict[str, LiveResult] = field(default_factory=dict, init=False, repr=False)

    # --- events -----------------------------------------------------------
    # Each event writes its own part of the poll's sheet and nothing else, so they may
    # come in any order, again, or at once, and none undoes another.
    def on_poll_opened(self, event: PollOpened, ctx: Context) -> None:
        self.store.save_rules(event.poll_id, event.rules, event.rules_hash,
                              event.results_visibility)
        self._try_publish(event.poll_id, ctx)

    def on_ballots_recorded(self, event: BallotsRecorded, ctx: Context) -> None:
        self.store.add_ballots([StoredBallot(
            poll_id=b.poll_id, voter_key=b.voter_key, sequence=b.sequence,
            ballot_id=b.ballot_id, tracker=b.tracker, choice=b.choice, channel=b.channel,
            recorded_at=b.recorded_at) for b in event.ballots])
        for poll_id in sorted({b.poll_id for b in event.ballots}):
            self._try_publish(poll_id, ctx)

    def on_ballot_box_sealed(self, event: BallotBoxSealed, ctx: Context) -> None:
        self.store.save_seal(event.poll_id, event.ballots_recorded, event.ballots_digest)
        self._try_publish(event.poll_id, ctx)

    def on_poll_result_released(self, event: PollResultReleased, ctx: Context) -> None:
        """Lift the embargo. Signing is another matter (``_try_publish``, at the close):
        a release may come before the seal, even before the poll's rules, and is kept
        until the result is signed; after that, it shows the result at once. Nothing is
        emitted: the result was announced (result.published) when it was signed."""
        self.store.release(event.poll_id, event.released_at)

    def _try_publish(self, poll_id: str, ctx: Context) -> None:
        """Publish once the poll is sealed and every sealed ballot has arrived.

        Events may arrive in any order (ballots after the seal, the seal before
        "opened"), so every handler ends here and only the last piece publishes.
        """
        poll = self.store.sheet(poll_id)
        if poll is None or poll.rules is None or poll.sealed_count is None:
            return
        if self.store.result(poll_id) is not None:
            return
        received = self.store.count_ballots(poll_id)
        if received < poll.sealed_count:
            log.info("waiting for ballots", extra=log_fields(
                poll_id=poll_id, received=received, sealed=poll.sealed_count))
            return
        if received > poll.sealed_count:
            # More ballots than the vote service sealed: never publish a count that
            # disagrees with the ballot store; an operator must look (metric + log).
            log.error("more ballots than sealed", extra=log_fields(
                poll_id=poll_id, received=received, sealed=poll.sealed_count))
            return
        ballots = list(self.store.ballots(poll_id))
        digest = ballot_set_digest(b.ballot_id for b in ballots)
        if poll.sealed_digest is not None and digest != poll.sealed_digest:
            # Same number, other ballots: the copy disagrees with the ballot store.
            log.error("ballots differ from the sealed set", extra=log_fields(
                poll_id=poll_id, received=received, digest=digest, sealed=poll.sealed_digest))
            return
        result = domain.build_result(poll, ballots, __version__, self.clock())
        signed = SignedResult(result=result, signature=b64url(self.signer.sign(
            canonical_json(result))), key_id=self.signer.public.kid)
        if self.store.save_result(poll_id, signed.model_dump(mode="json")):
            RESULTS.inc()
            ctx.emit(ResultPublished(poll_id=poll_id, record_root=result["record"]["root"],
                                     ballots_counted=result["record"]["size"],
                                     published_at=self.clock()))

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

    def _entries(self, poll_id: str) -> list[dict]:
        self._published(poll_id)
        return domain.record_entries(self.store.ballots(poll_id))

    def get_record(self, q: GetRecord, ctx: Context) -> BallotRecord:
        entries = self._entries(q.poll_id)
        return BallotRecord(poll_id=q.poll_id, size=len(entries),
                            root=merkle.root(domain.leaf_hashes(entries)).hex(),
                            leaf_encoding=domain.LEAF_ENCODING,
                            entries=[RecordEntry(**e) for e in entries])

    def prove_inclusion(self, q: ProveInclusion, ctx: Context) -> InclusionProof:
        entries = self._entries(q.poll_id)
        index = next((i for i, e in enumerate(entries) if e["tracker"] == q.tracker), None)
        if index is None:
            raise NotFound("no counted ballot has this tracker (a replaced ballot is not counted)",
                           code="tracker_not_found")
        leaves = domain.leaf_hashes(entries)
        return InclusionProof(poll_id=q.poll_id, tracker=q.tracker, index=index,
                              size=len(leaves), root=merkle.root(leaves).hex(),
                              leaf=leaves[index].hex(),
                              path=[h.hex() for h in merkle.inclusion_proof(index, leaves)])

    def get_live_result(self, q: GetLiveResult, ctx: Context) -> LiveResult:
        """Running counts of a live poll, recounted from the stored ballots (never from
        counters, D5) at most every ``live_max_age``; ``as_of`` says when."""
        rules = domain.check_live(self.store.sheet(q.poll_id), q.poll_id)
        now = self.clock()
        last = self._live.get(q.poll_id)
        if last is not None and now - last.as_of < self.live_max_age:
            return last
        live = domain.LiveCount(rules)
        for b in self.store.ballots(q.poll_id):
            live.add(b)
        reply = LiveResult(poll_id=q.poll_id, tally=live.result(), ballots=live.ballots,
                           ballots_received=live.received, as_of=now)
        self._live[q.poll_id] = reply
        return reply

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="tally",
            commands={GetResult: self.get_result, GetRecord: self.get_record,
                      ProveInclusion: self.prove_inclusion, GetLiveResult: self.get_live_result},
            subscriptions={PollOpened: self.on_poll_opened,
                           BallotsRecorded: self.on_ballots_recorded,
                           BallotBoxSealed: self.on_ballot_box_sealed,
                           PollResultReleased: self.on_poll_result_released},
            ping=self.store.ping,
        )
