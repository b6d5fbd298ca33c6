"""Response models of the public API (``…Public``): what the ``/v1`` API promises.

They are the gateway's own, not the services' replies: a service may add a field
to a reply (readers are tolerant, ``extra="ignore"``) without it leaking to the
API, and the API's shape changes only here, reviewed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from urne.contracts.replies import ConsultationStatus, PollStatus
from urne.contracts.steps import StepKind
from urne.counting.rules import PollRules


class Public(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LoginCodeSentPublic(Public):
    channel: Literal["email"]
    expires_in: int


class AccessTokenPublic(Public):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    role: str
    person_id: str


class PersonPublic(Public):
    """The signed-in person. ``district`` is the one they declared (null until they do);
    ``district_verified`` stays false until districts are checked against a census."""

    person_id: str
    email: str
    role: str
    district: str | None
    district_verified: bool


class VotingTokenPublic(Public):
    poll_id: str
    voting_token: str
    expires_at: datetime


class ProposalPublic(Public):
    id: str
    consultation_id: str
    title: str
    body: str
    created_at: datetime


class PollPublic(Public):
    id: str
    consultation_id: str
    proposal_id: str | None
    rules: PollRules
    status: PollStatus
    rules_hash: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    published_at: datetime | None


class StepPublic(Public):
    """A step of a consultation, from ``starts_at`` (included) to ``ends_at`` (excluded), UTC."""

    kind: StepKind
    starts_at: datetime
    ends_at: datetime


class ConsultationSummaryPublic(Public):
    """A consultation in a listing (its proposals and polls are on its own page).
    ``current_step``: the kind of the step under way now, null outside every step;
    ``time_zone``: where its times are to be shown (IANA name)."""

    id: str
    title: str
    description: str
    status: ConsultationStatus
    time_zone: str
    steps: list[StepPublic]
    current_step: StepKind | None
    created_at: datetime
    published_at: datetime | None


class ConsultationPublic(ConsultationSummaryPublic):
    """A consultation with its proposals and polls (the draft polls for its organisers
    only); ``organisers`` (person ids, the creator first) for its organisers and admins,
    null for anyone else."""

    organisers: list[str] | None
    proposals: list[ProposalPublic]
    polls: list[PollPublic]


class ConsultationsPublic(Public):
    items: list[ConsultationSummaryPublic]


class ReceiptPublic(Public):
    poll_id: str
    ballot_id: str
    tracker: str
    sequence: int
    replaces_previous: bool
    recorded_at: datetime


class ResultPublic(Public):
    poll_id: str
    tally: dict[str, Any]
    record_root: str
    ballots_counted: int
    rules_hash: str
    computed_at: str


class SignedResultPublic(Public):
    """The result document, its Ed25519 signature and the signing key's id."""

    result: dict[str, Any]
    signature: str
    key_id: str
    algorithm: Literal["Ed25519"]


class RecordEntryPublic(Public):
    tracker: str
    choice: dict[str, Any]


class BallotRecordPublic(Public):
    poll_id: str
    size: int
    root: str
    leaf_encoding: str
    entries: list[RecordEntryPublic]


class InclusionProofPublic(Public):
    poll_id: str
    tracker: str
    index: int
    size: int
    root: str
    leaf: str
    path: list[str]


class FrozenRulesPublic(Public):
    poll_id: str
    rules: PollRules
    rules_hash: str
    opened_at: datetime


class PublicKeyPublic(Public):
    name: str
    kid: str
    algorithm: Literal["Ed25519"]
    public_key: str
    pem: str


class PublicKeysPublic(Public):
    keys: list[PublicKeyPublic]
