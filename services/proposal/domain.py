"""Consultations, proposals and polls, with the poll life cycle. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from urne.counting.rules import PollRules, rules_hash
from urne.shared.errors import Conflict

# draft -> open -> closed -> published; rules may change only in draft.
TRANSITIONS = {"open": "draft", "closed": "open", "published": "closed"}


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
    status: str = "draft"
    rules_hash: str | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    published_at: datetime | None = None

    def _moved(self, to: str) -> None:
        if TRANSITIONS[to] != self.status:
            raise Conflict(f"poll {self.poll_id} is {self.status}; it cannot become {to}",
                           code=f"poll_{self.status}")

    def open(self, now: datetime) -> Poll:
        self._moved("open")
        # Freezing: from here on the rules hash is part of every result.
        return replace(self, status="open", opened_at=now, rules_hash=rules_hash(self.rules))

    def close(self, now: datetime) -> Poll:
        self._moved("closed")
        return replace(self, status="closed", closed_at=now)

    def publish(self, now: datetime) -> Poll:
        self._moved("published")
        return replace(self, status="published", published_at=now)
