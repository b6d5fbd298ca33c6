"""What the proposal core needs from storage."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Protocol

from urne.contracts.replies import PollStatus
from urne.services.proposal.domain import Changed, Consultation, Poll, Proposal


class ProposalStore(Protocol):
    def add_consultation(self, consultation: Consultation) -> None: ...
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
    def add_proposal(self, proposal: Proposal) -> None: ...
    def proposals(self, consultation_id: str) -> list[Proposal]: ...
    def add_poll(self, poll: Poll) -> None: ...
    def replace_poll(self, poll: Poll, expected_status: PollStatus) -> bool:
        """Store ``poll`` over the stored one if that is still ``expected_status``
        (compare and set); False, and nothing written, otherwise."""
        ...
    def poll(self, poll_id: str) -> Poll | None: ...
    def polls(self, consultation_id: str) -> list[Poll]: ...
    def ping(self) -> None: ...
