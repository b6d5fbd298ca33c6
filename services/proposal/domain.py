"""Consultations, proposals and polls, with the poll life cycle. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from urne.contracts.replies import PollStatus
from urne.counting.rules import PollRules, rules_hash
from urne.platform.errors import Conflict

# A poll moves one way only: draft -> open -> closed -> published. Rules may
# change only in draft; from "open" on they are frozen.
NEXT_STATUS: dict[PollStatus, PollStatus] = {"draft": "open", "open": "closed",
                                             "closed": "published"}


@dataclass(frozen=True)
class Consultation:
    consultation_id: str
    title: str
    description: str
    created_by: str
    created_at: datetime


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
