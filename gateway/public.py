"""Response models of the public API (``…Public``): what the ``/v1`` API promises.

They are the gateway's own, not the services' replies: a service may add a field
to a reply (readers are tolerant, ``extra="ignore"``) without it leaking to the
API, and the API's shape changes only here, reviewed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from urne.contracts.fields import CrossChannel, Electorate, ResultsVisibility
from urne.contracts.replies import ConsultationStatus, PollStatus, ProposalStatus
from urne.contracts.steps import StepKind
from urne.counting.rules import PollRules


class Public(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LoginCodeSentPublic(Public):
    channel: Literal["email", "sms"]
    expires_in: int


class DeskCardPublic(Public):
    """What an agent prints for someone registered at a desk: the code (shown once), and
    the same code as a QR code (SVG) for a kiosk to scan."""

    person_id: str
    desk_code: str
    expires_at: datetime
    qr_svg: str


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
    email: str | None  # null for a person registered by SMS,
    phone: str | None = None  # who has a phone number (E.164) instead (absent: none)
    role: str
    district: str | None
    district_verified: bool


class CensusImportedPublic(Public):
    consultation_id: str
    rows: int  # people added or updated
    eligible: int  # of whom eligible


class CensusClaimPublic(Public):
    consultation_id: str
    district: str | None  # what your voting tokens for its census polls carry
    eligible: bool


class VotingTokenPublic(Public):
    poll_id: str
    voting_token: str
    expires_at: datetime


class ModerationPublic(Public):
    """Why, by whom (a person id) and since when a proposal is hidden."""

    reason: str
    hidden_by: str
    hidden_at: datetime


class ProposalPublic(Public):
    """A proposal. ``body`` is its Markdown as written (escape it if you show it raw);
    ``body_html`` its rendering, sanitised, safe to put in a page. ``author_id`` is a
    person id. ``rejection_reason`` is public; ``moderation`` (while ``hidden``) and
    ``report_count`` are for the organisers of its consultation and admins, null for
    anyone else."""

    id: str
    consultation_id: str
    title: str
    body: str
    body_html: str
    author_id: str
    category: str | None
    district: str | None
    estimated_cost: int | None
    status: ProposalStatus
    rejection_reason: str | None
    status_changed_at: datetime | None
    hidden: bool
    moderation: ModerationPublic | None
    report_count: int | None
    created_at: datetime


class ProposalsPublic(Public):
    """A page of proposals, oldest first. ``next_cursor``: pass it as ``cursor`` for the
    next page; null on the last. A page may hold fewer than ``limit`` (even none) and
    still have a next one: go on until ``next_cursor`` is null."""

    items: list[ProposalPublic]
    next_cursor: str | None


class ReportPublic(Public):
    proposal_id: str
    reporter_id: str
    reason: str
    reported_at: datetime


class ReportsPublic(Public):
    items: list[ReportPublic]


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
    results_visibility: ResultsVisibility
    # Who may get a voting token. Default: a service from before the setting does not
    # send it (its polls are open to anyone signed in).
    electorate: Electorate = "open"
    # Whether a ballot cast in person is final. Default: a service from before the
    # setting does not send it (a later ballot replaced any).
    cross_channel: CrossChannel = "latest_wins"
    result_signed_at: datetime | None
    # Defaults: a service from before the schedule does not send them.
    opens_at: datetime | None = None  # when it opens by itself (null: by hand)
    closes_at: datetime | None = None  # when it closes by itself, extensions included
    amendments: list[AmendmentPublic] = []  # the extensions of its close, oldest first


class AmendmentPublic(Public):
    """A recorded change to an open poll: only its close time, only later."""

    kind: Literal["close_extended"]
    closes_at: datetime
    previous_closes_at: datetime | None
    reason: str
    at: datetime


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
    null for anyone else. ``proposals``: the first 100 you may see, oldest first (all of
    them, filtered and paged, at ``GET /v1/consultations/{id}/proposals``)."""

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


class PaperResultPublic(Public):
    """One paper ballot of a batch: ``status`` 201 with its ``receipt``, or the problem
    that refused it (``status``, ``code``, ``detail``), as the ballot route would give."""

    serial: str
    status: int
    receipt: ReceiptPublic | None = None
    code: str | None = None
    detail: str | None = None


class PaperBatchPublic(Public):
    poll_id: str
    accepted: int
    results: list[PaperResultPublic]  # in the order of the batch


class TurnoutCellPublic(Public):
    district: str | None  # None: voting tokens without a district
    voters: int
    channels: dict[str, int]  # people with a ballot in each channel


class TurnoutPublic(Public):
    """How many people have voted: from the sign-in list, seconds behind the ballots."""

    poll_id: str
    voters: int
    channels: dict[str, int]
    districts: list[TurnoutCellPublic]  # by district name, None last


class SignInStatusPublic(Public):
    """Whether a person has voted in a poll, through which channels; never what."""

    poll_id: str
    person_id: str
    voted: bool
    channels: list[str]


class ResultPublic(Public):
    poll_id: str
    tally: dict[str, Any]
    record_root: str
    ballots_counted: int
    rules_hash: str
    computed_at: str


class LiveResultPublic(Public):
    """Running counts of a live poll: ``tally`` as if it closed at ``as_of``, over
    ``ballots`` counted (one per voter, their last) of ``ballots_received`` stored."""

    poll_id: str
    tally: dict[str, Any]
    ballots: int
    ballots_received: int
    as_of: datetime


class ResultsExportPublic(Public):
    """The published tally as flat rows (the CSV export's, as JSON): ``columns`` names
    the keys of every row, in the CSV's order."""

    format: Literal["urne.results-export.v1"]
    poll_id: str
    method: str
    question: str
    ballots: int
    outcome: str
    winners: list[str]
    rules_hash: str
    record_root: str
    computed_at: str
    columns: list[str]
    rows: list[dict[str, Any]]


class SignedResultPublic(Public):
    """The result document, its Ed25519 signature and the signing key's id."""

    result: dict[str, Any]
    signature: str
    key_id: str
    algorithm: Literal["Ed25519"]


class TreeHeadPublic(Public):
    """A tree head of a poll's log (urne.tree_head.v1): the log's size and Merkle root
    when it was signed."""

    format: Literal["urne.tree_head.v1"]
    poll_id: str
    rules_hash: str
    size: int
    root: str
    issued_at: str  # to the minute


class SignedTreeHeadPublic(Public):
    head: TreeHeadPublic
    signature: str
    key_id: str
    algorithm: Literal["Ed25519"]


class TreeHeadsPublic(Public):
    poll_id: str
    heads: list[SignedTreeHeadPublic]


class RecordEntryPublic(Public):
    """An entry of the record: {tracker, choice} in a record of urne.record.v1; in one of
    urne.record.v2 (a log), also its height, parent and channel, and what it supersedes.
    Served with the members it has (no nulls): its canonical
    JSON is its Merkle leaf."""

    sparse: ClassVar[bool] = True  # the optional members are absent, not null

    tracker: str
    choice: dict[str, Any]
    height: int | None = None
    parent: str | None = None
    channel: str | None = None
    supersedes: str | None = None


class BallotRecordPublic(Public):
    poll_id: str
    size: int
    root: str
    leaf_encoding: str
    entries: list[RecordEntryPublic]
    start: int  # the position of the first entry of this page
    next: str | None  # the next page's address; null on the last page


class InclusionProofPublic(Public):
    poll_id: str
    tracker: str
    index: int
    size: int
    root: str
    leaf: str
    path: list[str]


class ConsistencyProofPublic(Public):
    poll_id: str
    first: int
    second: int
    second_root: str
    path: list[str]


class FrozenRulesPublic(Public):
    """The rules frozen at opening, their hash, and when the results may be seen (frozen
    with them, but not hashed: it decides when a result is shown, never what it is)."""

    poll_id: str
    rules: PollRules
    rules_hash: str
    opened_at: datetime
    results_visibility: ResultsVisibility
    # Who could get a voting token, frozen with the rules (not hashed either): anyone
    # signed in, or the consultation's census only.
    electorate: Electorate = "open"
    # Whether a ballot cast at a desk is final, frozen likewise: what decides which of a
    # voter's ballots the record marks replaced.
    cross_channel: CrossChannel = "latest_wins"


class ActionPublic(Public):
    """What an organiser or admin did: when, who (person id, role), which command, on
    what (its fields, less its actor), and which service carried it out."""

    service: str
    at: datetime
    id: str
    actor: str
    role: str
    action: str
    subject: dict[str, Any]


class ActionLogPublic(Public):
    month: str
    actions: list[ActionPublic]
    next: str | None  # the ``after`` of the next page; None: this was the last


class PublicKeyPublic(Public):
    """A JSON Web Key (RFC 7517, OKP Ed25519 as in RFC 8037) with urne's members."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str  # the raw public key, base64url without padding
    kid: str
    use: Literal["sig"]
    alg: Literal["EdDSA"]
    name: str  # tally-result (signs results) or identity-token (signs tokens)
    # current: signs now; retired: signed before a rotation, still verifies; revoked:
    # withdrawn, nothing it signed is to be trusted.
    status: Literal["current", "retired", "revoked"]
    algorithm: Literal["Ed25519"]
    public_key: str  # = x (served before the JWK members were)
    pem: str


class PublicKeysPublic(Public):
    """A JWK Set (RFC 7517 section 5): every key, current, retired and revoked."""

    keys: list[PublicKeyPublic]
