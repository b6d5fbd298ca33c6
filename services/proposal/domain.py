"""Consultations, proposals and polls, with their life cycles. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from urne.contracts.replies import ConsultationStatus, PollStatus
from urne.contracts.steps import DEFAULT_TIME_ZONE, Step
from urne.counting.rules import PollRules, rules_hash
from urne.platform.errors import Conflict

# A poll moves one way only: draft -> open -> closed -> published. Rules may
# change only in draft; from "open" on they are frozen.
NEXT_STATUS: dict[PollStatus, PollStatus] = {"draft": "open", "open": "closed",
                                             "closed": "published"}


# What an organiser may change on a consultation, at any time (poll rules are another
# matter: frozen when their poll opens), and what a store writes back after a change.
Changed = Literal["title", "description", "time_zone", "steps", "status", "published_at"]
EDITABLE: tuple[Changed, ...] = ("title", "description", "time_zone", "steps")


@dataclass(frozen=True)
class Consultation:
    consultation_id: str
    title: str
    description: str
    created_by: str
    created_at: datetime
    # Person ids of those who may act on it, in the order they were added: the creator
    # first, always (``__post_init__`` keeps it so).
    organisers: tuple[str, ...] = ()
    status: ConsultationStatus = "draft"
    time_zone: str = DEFAULT_TIME_ZONE  # IANA name, for display only
    steps: tuple[Step, ...] = ()  # in UTC, in order, checked by the contracts
    published_at: datetime | None = None

    def __post_init__(self) -> None:
        others = tuple(o for o in self.organisers if o != self.created_by)
        object.__setattr__(self, "organisers", (self.created_by, *others))

    def edit(self, title: str | None = None, description: str | None = None,
             time_zone: str | None = None, steps: tuple[Step, ...] | None = None,
             ) -> tuple[Consultation, frozenset[Changed]]:
        """The consultation with what is given (None leaves a field as it is), and the
        fields that really changed: a store writes those only, so two organisers editing
        different fields at once do not undo each other."""
        edited = replace(
            self, title=self.title if title is None else title,
            description=self.description if description is None else description,
            time_zone=self.time_zone if time_zone is None else time_zone,
            steps=self.steps if steps is None else steps)
        changed = frozenset(f for f in EDITABLE if getattr(edited, f) != getattr(self, f))
        return edited, changed

    def publish(self, now: datetime) -> Consultation:
        if self.status != "draft":
            raise Conflict(f"consultation {self.consultation_id} is already {self.status}",
                           code=f"consultation_{self.status}")
        return replace(self, status="published", published_at=now)

    def with_organiser(self, person_id: str) -> Consultation:
        if person_id in self.organisers:
            return self
        return replace(self, organisers=(*self.organisers, person_id))

    def current_step(self, now: datetime) -> Step | None:
        """The step ``now`` falls in; None before the first, between two, after the last."""
        return next((s for s in self.steps if s.covers(now)), None)


@dataclass(frozen=True)
class Proposal:
    proposal_id: str
    consultation_id: str
    title: str
    body: str
    author_id: str
    created_at: datetime


@dataclass(frozen=True)
class Poll:
    poll_id: str
    consultation_id: str
    proposal_id: str | None
    rules: PollRules
    status: PollStatus = "draft"
    rules_hash: str | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    published_at: datetime | None = None

    def edit_rules(self, rules: PollRules) -> Poll:
        # Rules edited mid-vote (CONSUL #5321) would make ballots cast under the old
        # ones count under the new: from the opening on, they are frozen.
        if self.status != "draft":
            raise Conflict(f"poll {self.poll_id} is {self.status}: its rules are frozen",
                           code="poll_rules_frozen")
        return replace(self, rules=rules)

    def _ensure_next(self, status: PollStatus) -> None:
        """Raise unless ``status`` is the one that follows the current one."""
        if NEXT_STATUS.get(self.status) != status:
            raise Conflict(f"poll {self.poll_id} is {self.status}; it cannot become {status}",
                           code=f"poll_{self.status}")

    def open(self, now: datetime) -> Poll:
        self._ensure_next("open")
        # Freezing: from here on the rules hash is part of every result.
        return replace(self, status="open", opened_at=now, rules_hash=rules_hash(self.rules))

    def close(self, now: datetime) -> Poll:
        self._ensure_next("closed")
        return replace(self, status="closed", closed_at=now)

    def publish(self, now: datetime) -> Poll:
        self._ensure_next("published")
        return replace(self, status="published", published_at=now)
