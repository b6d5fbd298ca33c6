"""Reply payloads returned by commands and queries (and served by the gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from urne.contracts.steps import Step, StepKind
from urne.counting.rules import PollRules

PollStatus = Literal["draft", "open", "closed", "published"]
ConsultationStatus = Literal["draft", "published"]


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LoginCodeSent(Reply):
    channel: Literal["email"]
    expires_in: int


class AccessToken(Reply):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    role: str
    person_id: str


class VotingToken(Reply):
    poll_id: str
    voting_token: str
    expires_at: datetime


class SyntheticVotingTokens(Reply):
    poll_id: str
    voting_tokens: list[str]


class PersonView(Reply):
    """A person as they see themselves. ``district`` is what they declared (None until
    they do); ``district_verified`` stays false until the electorate issue checks it
    against a census."""

    person_id: str
    email: str
    role: str
    district: str | None
    district_verified: bool = False


class ProposalView(Reply):
    id: str
    consultation_id: str
    title: str
    body: str
    created_at: datetime


class PollView(Reply):
    id: str
    consultation_id: str
    proposal_id: str | None
    rules: PollRules
    status: PollStatus
    rules_hash: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    published_at: datetime | None


class ConsultationView(Reply):
    """A consultation as its reader may see it: ``organisers`` (person ids, the creator
    first) only for its organisers and admins, None for anyone else; ``polls`` without
    the drafts, except for them; ``current_step`` as of the reply (None between steps)."""

    id: str
    title: str
    description: str
    status: ConsultationStatus
    time_zone: str
    steps: list[Step]
    current_step: StepKind | None
    created_at: datetime
    published_at: datetime | None
    organisers: list[str] | None = None
    proposals: list[ProposalView] = []
    polls: list[PollView] = []


class ConsultationsView(Reply):
    items: list[ConsultationView]


class Receipt(Reply):
    poll_id: str
    ballot_id: str
    tracker: str
    sequence: int
    replaces_previous: bool
    recorded_at: datetime


class SignedResult(Reply):
    """The result document, its Ed25519 signature and the signing key's id."""

    result: dict[str, Any]
    signature: str
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"


class RecordEntry(Reply):
    tracker: str
    choice: dict[str, Any]


class BallotRecord(Reply):
    poll_id: str
    size: int
    root: str
    leaf_encoding: str
    entries: list[RecordEntry]


class InclusionProof(Reply):
    poll_id: str
    tracker: str
    index: int
    size: int
    root: str
    leaf: str
    path: list[str]


class Health(Reply):
    service: str
    ready: bool
    detail: str = ""
