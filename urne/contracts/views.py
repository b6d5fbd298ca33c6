"""Reply payloads returned by commands and queries (and served by the gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from urne.counting.rules import PollRules

PollStatus = Literal["draft", "open", "closed", "published"]


class View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LoginCodeSent(View):
    channel: Literal["email"]
    expires_in: int


class AccessToken(View):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    role: str
    person_id: str


class VotingToken(View):
    poll_id: str
    voting_token: str
    expires_at: datetime


class ProposalView(View):
    id: str
    consultation_id: str
    title: str
    body: str
    created_at: datetime


class PollView(View):
    id: str
    consultation_id: str
    proposal_id: str | None
    rules: PollRules
    status: PollStatus
    rules_hash: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    published_at: datetime | None


class ConsultationView(View):
    id: str
    title: str
    description: str
    created_at: datetime
    proposals: list[ProposalView] = []
    polls: list[PollView] = []


class ConsultationsView(View):
    items: list[ConsultationView]


class Receipt(View):
    poll_id: str
    ballot_id: str
    tracker: str
    sequence: int
    replaces_previous: bool
    recorded_at: datetime


class SignedResult(View):
    """The result document, its Ed25519 signature and the signing key's id."""

    result: dict[str, Any]
    signature: str
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"


class RecordEntry(View):
    tracker: str
    choice: dict[str, Any]


class BallotRecord(View):
    poll_id: str
    size: int
    root: str
    leaf_encoding: str
    entries: list[RecordEntry]


class InclusionProof(View):
    poll_id: str
    tracker: str
    index: int
    size: int
    root: str
    leaf: str
    path: list[str]


class Health(View):
    service: str
    ready: bool
    detail: str = ""
