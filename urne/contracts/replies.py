"""Reply payloads returned by commands and queries (and served by the gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from urne.contracts.fields import CrossChannel, Electorate, ResultsVisibility
from urne.contracts.steps import Step, StepKind
from urne.counting.rules import PollRules

PollStatus = Literal["draft", "open", "closed", "published"]
ConsultationStatus = Literal["draft", "published"]
ProposalStatus = Literal["submitted", "published", "rejected", "selected", "implemented"]


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LoginCodeSent(Reply):
    channel: Literal["email", "sms"]
    expires_in: int


class DeskCodeIssued(Reply):
    """A desk code for the agent to print: the only time it is in clear."""

    person_id: str
    code: str
    expires_at: datetime


class PaperVotingTokens(Reply):
    poll_id: str
    voting_tokens: list[str]  # in the order of the serials asked


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


class Purged(Reply):
    """Rows deleted, by table (none when the last purge was too recent to run again)."""

    removed: dict[str, int]


class CensusImported(Reply):
    consultation_id: str
    rows: int  # entries added or updated
    eligible: int  # of which eligible


class CensusClaim(Reply):
    """The entry the person holds: what their voting tokens for the consultation's
    census polls will carry."""

    consultation_id: str
    district: str | None
    eligible: bool


class TurnoutCell(Reply):
    """People who have voted, in one district (None: a token without a district), and
    how many had a ballot in each channel (one person may count in two channels)."""

    district: str | None
    voters: int
    channels: dict[str, int]


class Turnout(Reply):
    poll_id: str
    voters: int
    channels: dict[str, int]
    districts: list[TurnoutCell]  # by district name, None last


class SignInStatus(Reply):
    """Whether a person has voted in a poll, and through which channels; never what."""

    poll_id: str
    person_id: str
    voted: bool
    channels: list[str]


class SyntheticVotingTokens(Reply):
    poll_id: str
    voting_tokens: list[str]


class PersonDeleted(Reply):
    person_id: str


class PersonView(Reply):
    """A person as they see themselves. ``district`` is what they declared (None until
    they do); ``district_verified`` stays false until the electorate issue checks it
    against a census."""

    person_id: str
    # How they sign in: an e-mail address, or (registered by SMS) a phone number in
    # E.164 form and no e-mail.
    email: str | None
    role: str
    district: str | None
    district_verified: bool = False
    phone: str | None = None


class ActionView(Reply):
    """One entry of an action log: when, who (person id and role), which command, on
    what (the command's fields, less its actor)."""

    at: datetime
    id: str
    actor: str
    role: str
    action: str
    subject: dict[str, Any]


class ActionLogView(Reply):
    service: str
    month: str
    actions: list[ActionView]


class ModerationView(Reply):
    """Why and by whom a proposal is hidden: for its moderators only."""

    reason: str
    hidden_by: str
    hidden_at: datetime


class ProposalView(Reply):
    """A proposal as its reader may see it. ``body`` is the Markdown as written;
    ``body_html`` its rendering, sanitised (no script, no raw HTML, safe links only).
    ``rejection_reason`` is public; ``moderation`` and ``report_count`` are for the
    organisers of its consultation and admins (None for anyone else)."""

    id: str
    consultation_id: str
    title: str
    body: str
    created_at: datetime
    body_html: str = ""
    author_id: str = ""
    category: str | None = None
    district: str | None = None
    estimated_cost: int | None = None
    status: ProposalStatus = "published"
    rejection_reason: str | None = None
    status_changed_at: datetime | None = None
    hidden: bool = False
    moderation: ModerationView | None = None
    report_count: int | None = None


class ProposalsView(Reply):
    """A page of proposals; ``next_cursor`` None on the last one. A page may hold fewer
    than asked, even none, and still not be the last: follow ``next_cursor`` to the end."""

    items: list[ProposalView]
    next_cursor: str | None


class ReportView(Reply):
    proposal_id: str
    reporter_id: str
    reason: str
    reported_at: datetime


class ReportsView(Reply):
    items: list[ReportView]


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
    results_visibility: ResultsVisibility = "after_close"
    electorate: Electorate = "open"  # who may get a voting token
    cross_channel: CrossChannel = "latest_wins"  # whether a ballot cast in person is final
    result_signed_at: datetime | None = None  # when the tally signed its result
    opens_at: datetime | None = None  # when it opens by itself (None: by hand)
    closes_at: datetime | None = None  # when it closes by itself, amendments included
    amendments: list[Amendment] = []  # oldest first


class Amendment(Reply):
    """A change made to an open poll: only its close time may move, and only later."""

    kind: Literal["close_extended"]
    closes_at: datetime
    previous_closes_at: datetime | None
    reason: str
    at: datetime


class PollsChecked(Reply):
    """What one check of the sealed, unpublished polls did (``tally.check_polls.v1``)."""

    published: list[str]
    asked: list[str]  # polls whose missing ballots were asked for again (ballots.missing)
    waiting: int  # sealed polls still unpublished after the check


class ScheduleRun(Reply):
    """What one run of the schedule did (``poll.run_schedule.v1``)."""

    opened: list[str]
    closed: list[str]
    resent: int  # poll events sent again, a crash having perhaps kept them from the broker


class ConsultationView(Reply):
    """A consultation as its reader may see it: ``organisers`` (person ids, the creator
    first) only for its organisers and admins, None for anyone else; ``polls`` without
    the drafts, except for them; ``current_step`` as of the reply (None between steps);
    ``proposals``: the first ones (oldest first) the reader may see, up to 100 (all of
    them, filtered and a page at a time: ``proposal.list.v1``)."""

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


class PaperMarked(Reply):
    """A person marked as voting on paper in a poll (the minute, as for ballots)."""

    poll_id: str
    recorded_at: datetime


class Receipt(Reply):
    poll_id: str
    ballot_id: str
    tracker: str
    sequence: int
    replaces_previous: bool
    recorded_at: datetime


class TreeHeads(Reply):
    """The signed tree heads of a poll's log (``tree_heads.get.v1``), by size: each
    ``{"head": urne.tree_head.v1, "signature", "key_id", "algorithm"}``."""

    poll_id: str
    heads: list[dict[str, Any]]


class SignedResult(Reply):
    """The result document, its Ed25519 signature and the signing key's id."""

    result: dict[str, Any]
    signature: str
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"


class LiveResult(Reply):
    """The running counts of a live poll: ``tally`` (the published format, as if the
    poll closed at ``as_of``) over ``ballots`` counted ballots (one per voter, the last
    one each cast), out of ``ballots_received`` stored (revotes included)."""

    poll_id: str
    tally: dict[str, Any]
    ballots: int
    ballots_received: int
    as_of: datetime


class BallotRecord(Reply):
    poll_id: str
    size: int
    root: str
    leaf_encoding: str
    # Each entry as stored, the JSON object whose canonical bytes are its Merkle leaf:
    # {tracker, choice} (urne.record.v1) or a log entry (urne.record.v2).
    entries: list[dict[str, Any]]
    start: int = 0  # the position of the first entry
    next: int | None = None  # the start of the next page; None at the end


class RecordLines(Reply):
    poll_id: str
    size: int
    root: str
    start: int
    next: int | None
    lines: str  # NDJSON: an entry's canonical JSON per line


class InclusionProof(Reply):
    poll_id: str
    tracker: str
    index: int
    size: int
    root: str
    leaf: str
    path: list[str]


class ConsistencyProof(Reply):
    """RFC 9162 §2.1.4 consistency proof between the log at ``first`` and at ``second``
    entries, whose root is ``second_root``; ``path`` is empty when they are equal."""

    poll_id: str
    first: int
    second: int
    second_root: str
    path: list[str]


class Health(Reply):
    service: str
    ready: bool
    detail: str = ""
