"""Tally event handlers and queries, and the service core that registers them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from urne import __version__
from urne.contracts.commands import GetRecord, GetResult, ProveInclusion
from urne.contracts.events import BallotBoxSealed, BallotsRecorded, PollOpened, ResultPublished
from urne.contracts.replies import BallotRecord, InclusionProof, RecordEntry, SignedResult
from urne.crypto.keys import SigningKey, b64url
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import Conflict, NotFound
from urne.platform.logging import log_fields
from urne.platform.metrics import RESULTS
from urne.record import merkle
from urne.record.canonical import ballot_set_digest, canonical_json
from urne.services.tally import domain
from urne.services.tally.domain import StoredBallot, TallySheet
from urne.services.tally.ports import TallyStore

log = logging.getLogger(__name__)


@dataclass
class TallyHandlers:
    store: TallyStore
    signer: SigningKey
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # --- events -----------------------------------------------------------
    def on_poll_opened(self, event: PollOpened, ctx: Context) -> None:
        known = self.store.sheet(event.poll_id)
        sealed = (known.sealed_count, known.sealed_digest) if known else (None, None)
        self.store.save_sheet(TallySheet(event.poll_id, event.rules, event.rules_hash, *sealed))
        self._try_publish(event.poll_id, ctx)

    def on_ballots_recorded(self, event: BallotsRecorded, ctx: Context) -> None:
        self.store.add_ballots([StoredBallot(
            poll_id=b.poll_id, voter_key=b.voter_key, sequence=b.sequence,
            ballot_id=b.ballot_id, tracker=b.tracker, choice=b.choice, channel=b.channel,
            recorded_at=b.recorded_at) for b in event.ballots])
        for poll_id in sorted({b.poll_id for b in event.ballots}):
            self._try_publish(poll_id, ctx)

    def on_ballot_box_sealed(self, event: BallotBoxSealed, ctx: Context) -> None:
        known = self.store.sheet(event.poll_id) or TallySheet(event.poll_id, None, None)
        self.store.save_sheet(replace(known, sealed_count=event.ballots_recorded,
                                     sealed_digest=event.ballots_digest))
        self._try_publish(event.poll_id, ctx)

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
        stored = self.store.result(poll_id)
        if stored is None:
            if self.store.sheet(poll_id) is None:
                raise NotFound(f"no poll {poll_id} is known to the tally", code="poll_not_found")
            # Embargo: nothing about the ballots is shown before publication.
            raise Conflict("the result of this poll is not published yet",
                           code="result_not_published")
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

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="tally",
            commands={GetResult: self.get_result, GetRecord: self.get_record,
                      ProveInclusion: self.prove_inclusion},
            subscriptions={PollOpened: self.on_poll_opened,
                           BallotsRecorded: self.on_ballots_recorded,
                           BallotBoxSealed: self.on_ballot_box_sealed},
            ping=self.store.ping,
        )
