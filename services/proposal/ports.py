"""What the proposal core needs from storage."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from urne.messaging.kernel import RawEnvelope
from urne.services.proposal.creations import Creation
from urne.services.proposal.domain import (
    Changed,
    Consultation,
    Poll,
    Proposal,
    ProposalKey,
    Report,
)
from urne.storage.action_log import ActionLog


class ProposalStore(Protocol):
    @property
    def actions(self) -> ActionLog:
        """What organisers and admins did here: appended, never changed."""
        ...
    def creation(self, creation_id: str) -> Creation | None:
        """The claim of ``creation_id``, if any."""
        ...
    def release_creation(self, creation_id: str, request_digest: str) -> None:
        """Forget the claim of ``creation_id`` if it is for ``request_digest``: its
        request was refused, and created nothing."""
        ...
    def claim_creation(self, creation_id: str, creation: Creation) -> Creation | None:
        """Claim ``creation_id`` (``creations.creation_id``) for ``creation``, first come
        first served however many race: None if this claim is the first, the first one
        if not."""
        ...
    def add_consultation(self, consultation: Consultation) -> None:
        """Store a new consultation; the same one again (a retried creation) changes
        nothing."""
        ...
    def consultation(self, consultation_id: str) -> Consultation | None: ...
    def consultations(self, limit: int,
                      include: Callable[[Consultation], bool] = lambda c: True,
                      ) -> list[Consultation]:
        """The newest ``limit`` consultations among those ``include`` accepts, newest first."""
        ...
    def save_consultation(self, consultation: Consultation, changed: Collection[Changed]
                          ) -> None:
        """Write the ``changed`` fields of a stored consultation, and only those: two
        edits of different fields at once both stay."""
        ...
    def add_organiser(self, consultation: Consultation, person_id: str,
                      added_at: datetime) -> None:
        """Add ``person_id`` to its organisers (no effect if already there); concurrent
        additions all stay."""
        ...
    def add_proposal(self, proposal: Proposal, limit: int | None = None) -> bool:
        """Store a new proposal. With a ``limit``, it counts toward its author's
        submissions to its consultation, and is stored only if they had fewer than
        ``limit`` (exactly, however many of theirs race): False, nothing stored, if not.
        The same proposal again (a retried creation) is True and takes no second slot."""
        ...
    def proposal(self, proposal_id: str) -> Proposal | None: ...
    def proposals(self, consultation_id: str, after: ProposalKey | None = None
                  ) -> Iterator[Proposal]:
        """A consultation's proposals in order (oldest first, then by id), from the one
        after ``after``, read a page at a time as they are iterated."""
        ...
    def replace_proposal(self, proposal: Proposal, expected: Proposal) -> bool:
        """Store ``proposal``'s status and moderation over the stored ones if those are
        still ``expected``'s (compare and set); False, and nothing written, otherwise."""
        ...
    def add_report(self, report: Report) -> bool:
        """Store a report unless its reporter already reported that proposal (False)."""
        ...
    def reports(self, consultation_id: str, proposal_id: str | None = None) -> list[Report]:
        """The reports of a consultation's proposals (of one, if given), oldest first."""
        ...
    def consultations_forgotten_at(self) -> list[tuple[Consultation, datetime | None]]:
        """Every consultation, with when its participation was last forgotten
        (``forget_participation``; None: never)."""
        ...
    def forget_participation(self, consultation_id: str, at: datetime) -> int:
        """Forget who took part in a consultation: its proposals lose their author (the
        empty string) and their place in the author's quota, its reports (reporter and
        reason) go, and the consultation is noted as forgotten at ``at``. Doing it again
        forgets only what came since. Returns how many proposals lost their author."""
        ...
    def add_poll(self, poll: Poll) -> None:
        """Store a new poll; the same one again (a retried creation) changes nothing."""
        ...
    def replace_poll(self, poll: Poll, expected: Poll,
                     announce: Sequence[RawEnvelope] = ()) -> bool:
        """Store ``poll`` over the stored one if that is still ``expected``, the poll it
        was made from (compare and set on its status and its version, which the write
        moves on by one); False, and nothing written, otherwise. ``announce``: the
        events of this change, kept with it in the poll's outbox until ``published``
        (a store whose transport commits events with its writes keeps none)."""
        ...
    def agenda(self) -> list[tuple[Poll, list[RawEnvelope]]]:
        """The polls with a schedule or with events in their outbox, and those events."""
        ...
    def leave_agenda(self, poll_id: str) -> None:
        """Nothing is left to do for this poll: the schedule's run may forget it."""
        ...
    def published(self, events: Sequence[RawEnvelope]) -> None:
        """The broker confirmed these events: out of their polls' outboxes."""
        ...
    def mark_signed(self, poll_id: str, signed_at: datetime) -> None:
        """Record when the tally signed the poll's result, if not recorded yet; nothing
        else of the poll changes (``replace_poll`` never writes it)."""
        ...
    def poll(self, poll_id: str) -> Poll | None: ...
    def polls(self, consultation_id: str) -> list[Poll]: ...
    def ping(self) -> None: ...
