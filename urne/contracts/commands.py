"""Commands and queries, grouped by the service that handles them (``OWNER``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from urne.contracts.envelope import Command, Query, message
from urne.contracts.fields import (
    PAPER_BATCH_MAX,
    BallotId,
    Category,
    ClientAddress,
    CrossChannel,
    Cursor,
    Description,
    DeskCodeText,
    District,
    Electorate,
    EstimatedCost,
    Id,
    IdempotencyKey,
    LoginCodeText,
    PageLimit,
    PaperSerial,
    PersonName,
    PhoneNumber,
    ProposalBody,
    ProposalPageLimit,
    Reason,
    RecordPageLimit,
    RecordStart,
    ResultsVisibility,
    SearchText,
    Title,
    Tracker,
    VotingTokenText,
)
from urne.contracts.replies import ProposalStatus
from urne.contracts.roles import Role
from urne.contracts.steps import DEFAULT_TIME_ZONE, Steps, TimeZone, UtcDateTime
from urne.counting.rules import MAX_OPTIONS, PollRules


# --- identity --------------------------------------------------------------
class _Identity(Command):
    OWNER = "identity"


@message("login_code.request.v1")
class RequestLoginCode(_Identity):
    email: EmailStr
    # The asker's IP address as the gateway saw it (after trusted proxies): what the
    # per-client sign-in limits count, keyed; None when unknown.
    client: ClientAddress | None = None


@message("login_code.verify.v1")
class VerifyLoginCode(_Identity):
    email: EmailStr
    code: LoginCodeText
    client: ClientAddress | None = None


@message("sms_code.request.v1")
class RequestSmsCode(_Identity):
    """A sign-in code by SMS, for people without an e-mail address."""

    phone: PhoneNumber
    client: ClientAddress | None = None


@message("sms_code.verify.v1")
class VerifySmsCode(_Identity):
    phone: PhoneNumber
    code: LoginCodeText
    client: ClientAddress | None = None


@message("voting_token.issue.v1")
class IssueVotingToken(_Identity):
    """Retired: identity refuses it (``access_token_required``). Anyone who could send
    RPC could name any person; ``voting_token.issue.v2`` carries the proof instead."""

    person_id: Id
    poll_id: Id


@message("voting_token.issue.v2")
class IssueVotingTokenV2(_Identity):
    """A voting token for the person whose access token this is: identity checks the
    token itself (its own signature), so neither the gateway nor anyone on the broker
    can ask for a voting token in someone else's name."""

    poll_id: Id
    access_token: VotingTokenText


@message("voting_token.issue_synthetic.v1")
class IssueSyntheticVotingTokens(_Identity):
    """Voting tokens for made-up voters, for load tests: refused by identity outside
    development and test (it would mint ballots for people who do not exist)."""

    poll_id: Id
    count: int = Field(ge=1, le=1000)
    # Made-up voters are spread round-robin over these (none: no district in the
    # tokens), so load tests can exercise a budget per district.
    districts: list[District] = Field(default_factory=list, max_length=MAX_OPTIONS)


@message("person.declare_district.v1")
class DeclareDistrict(_Identity):
    """The district a person says they live in, stored as declared (unverified): it goes
    into their voting tokens from then on. Declaring again replaces it."""

    person_id: Id
    district: District


@message("person.delete.v1")
class DeletePerson(_Identity):
    """A person deletes their account: their address, phone number and district go; a
    keyed hash of the address stays with their id, so that signing in with it again
    gives them the same id (and voter keys). Sent by the gateway for the person its
    access token names."""

    person_id: Id


class _IdentityQuery(Query):
    OWNER = "identity"


@message("identity.purge_expired.v1")
class PurgeExpired(_Identity):
    """Delete what has expired in identity's stores (sign-in codes no longer pending,
    limit counters past their window): sent by identity's own timer, never over the
    broker (no sender may)."""

    SENDERS: ClassVar[frozenset[str]] = frozenset()


@message("person.get.v1")
class GetPerson(_IdentityQuery):
    person_id: Id


# --- proposal --------------------------------------------------------------
class Actor(BaseModel):
    """Who asks: the person and role of the access token the gateway verified. The
    proposal service decides from it alone what they may see and do (their role, and
    whether they are one of the consultation's organisers)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    person_id: Id
    role: Role


class _Proposal(Command):
    OWNER = "proposal"


# Every proposal command carries its ``actor`` (required): added before the first
# release, so within v1. The creator (``consultation.create``) and the author
# (``proposal.add``) are the actor.
@message("consultation.create.v1")
class CreateConsultation(_Proposal):
    """A consultation in draft, seen only by its organisers (the actor, first) and
    admins until it is published."""

    title: Title
    description: Description = ""
    time_zone: TimeZone = DEFAULT_TIME_ZONE
    steps: Steps = ()
    actor: Actor
    # The client's ``Idempotency-Key`` (optional, added within v1): the same actor and
    # key create one consultation; another body with it is refused.
    idempotency_key: IdempotencyKey | None = None


@message("consultation.update.v1")
class UpdateConsultation(_Proposal):
    """Change what is given (a field left out, or null, stays as it is); ``steps``
    replaces the whole calendar."""

    consultation_id: Id
    title: Title | None = None
    description: Description | None = None
    time_zone: TimeZone | None = None
    steps: Steps | None = None
    actor: Actor


@message("consultation.publish.v1")
class PublishConsultation(_Proposal):
    consultation_id: Id
    actor: Actor


@message("consultation.add_organiser.v1")
class AddOrganiser(_Proposal):
    """Make ``person_id`` one of the consultation's organisers (the gateway has checked
    with identity that they are an organiser or an admin)."""

    consultation_id: Id
    person_id: Id
    actor: Actor


@message("proposal.add.v1")
class AddProposal(_Proposal):
    """A proposal to a consultation. Its organisers (and admins) add one at any time,
    published at once; anyone else who may see it submits one while its current step is
    ``proposals``, up to a number per person, and it waits, ``submitted``, for them.
    ``body`` is Markdown, stored as written. The fields after ``body`` were added, optional,
    within v1."""

    consultation_id: Id
    title: Title
    body: ProposalBody = ""
    actor: Actor
    category: Category | None = None
    district: District | None = None
    estimated_cost: EstimatedCost | None = None
    idempotency_key: IdempotencyKey | None = None  # as consultation.create's


# A proposal's status, moved by its consultation's organisers (and admins) only:
# submitted -> published | rejected; published -> selected | rejected; selected ->
# implemented. A rejection gives its reason, shown to everyone who sees the proposal.
@message("proposal.publish.v1")
class PublishProposal(_Proposal):
    proposal_id: Id
    actor: Actor


@message("proposal.reject.v1")
class RejectProposal(_Proposal):
    proposal_id: Id
    reason: Reason
    actor: Actor


@message("proposal.select.v1")
class SelectProposal(_Proposal):
    proposal_id: Id
    actor: Actor


@message("proposal.implement.v1")
class ImplementProposal(_Proposal):
    proposal_id: Id
    actor: Actor


# Moderation, by the organisers of its consultation (and admins): a hidden proposal is
# kept, but only they (and its author) see it; the reason is theirs only.
@message("proposal.hide.v1")
class HideProposal(_Proposal):
    proposal_id: Id
    reason: Reason
    actor: Actor


@message("proposal.unhide.v1")
class UnhideProposal(_Proposal):
    proposal_id: Id
    actor: Actor


@message("proposal.report.v1")
class ReportProposal(_Proposal):
    """Anyone who sees a proposal may report it to its moderators, once."""

    proposal_id: Id
    reason: Reason
    actor: Actor


@message("poll.create.v1")
class CreatePoll(_Proposal):
    consultation_id: Id
    proposal_id: Id | None = None
    rules: PollRules
    actor: Actor
    # When its results may be seen; frozen with the rules when the poll opens.
    results_visibility: ResultsVisibility = "after_close"
    # Who may get a voting token; frozen with the rules when the poll opens.
    electorate: Electorate = "open"
    # Whether a ballot cast in person is final; frozen with the rules when it opens.
    cross_channel: CrossChannel = "latest_wins"
    # When it opens and closes by itself (None: by hand only); see ``poll.extend.v1``.
    opens_at: UtcDateTime | None = None
    closes_at: UtcDateTime | None = None
    idempotency_key: IdempotencyKey | None = None  # as consultation.create's


@message("poll.update.v1")
class UpdatePoll(_Proposal):
    """New rules for a poll still in draft (frozen from its opening on), and, when
    given, its results visibility, electorate and cross-channel policy (None:
    unchanged)."""

    poll_id: Id
    rules: PollRules
    actor: Actor
    results_visibility: ResultsVisibility | None = None
    electorate: Electorate | None = None
    cross_channel: CrossChannel | None = None
    # Its schedule, while a draft: each one given replaces the stored one; ``clear``
    # names those to remove ("opens_at", "closes_at").
    opens_at: UtcDateTime | None = None
    closes_at: UtcDateTime | None = None
    clear: frozenset[Literal["opens_at", "closes_at"]] = frozenset()


@message("poll.open.v1")
class OpenPoll(_Proposal):
    poll_id: Id
    actor: Actor


@message("poll.close.v1")
class ClosePoll(_Proposal):
    poll_id: Id
    actor: Actor


@message("poll.extend.v1")
class ExtendPoll(_Proposal):
    """Move the close of an open poll later, before it comes: a recorded and published
    amendment (``poll.close_extended.v1``) that changes nothing but the close time."""

    poll_id: Id
    closes_at: UtcDateTime
    reason: Reason
    actor: Actor


@message("poll.run_schedule.v1")
class RunSchedule(_Proposal):
    """Open and close the polls whose time has come, and send again the poll events a
    crash may have kept from the broker. Sent by the proposal service's own timer,
    never over the broker (no sender may)."""

    SENDERS: ClassVar[frozenset[str]] = frozenset()


@message("poll.publish.v1")
class PublishPoll(_Proposal):
    """Release the embargoed result of a closed poll (``results_visibility`` embargoed):
    the poll becomes ``published`` and the tally shows its result from then on. Again,
    once published: nothing changes, and the release is sent again."""

    poll_id: Id
    actor: Actor


class _ProposalQuery(Query):
    OWNER = "proposal"


# Queries take an optional ``actor``: without one (anonymous), drafts do not exist.
@message("consultation.get.v1")
class GetConsultation(_ProposalQuery):
    consultation_id: Id
    actor: Actor | None = None


@message("consultation.list.v1")
class ListConsultations(_ProposalQuery):
    limit: PageLimit = 50
    actor: Actor | None = None


@message("poll.get.v1")
class GetPoll(_ProposalQuery):
    poll_id: Id
    actor: Actor | None = None


@message("proposal.get.v1")
class GetProposal(_ProposalQuery):
    proposal_id: Id
    actor: Actor | None = None


@message("proposal.list.v1")
class ListProposals(_ProposalQuery):
    """The proposals of a consultation its reader may see, oldest first, filtered (every
    filter given must hold; ``q``: a case-insensitive substring of the title or the body),
    a page at a time: ``cursor`` is the previous page's ``next_cursor``."""

    consultation_id: Id
    status: ProposalStatus | None = None
    category: Category | None = None
    district: District | None = None
    q: SearchText | None = None
    limit: ProposalPageLimit = 20
    cursor: Cursor | None = None
    actor: Actor | None = None


@message("proposal.list_reports.v1")
class ListProposalReports(_ProposalQuery):
    """The reports of a proposal, for the organisers of its consultation (and admins)."""

    proposal_id: Id
    actor: Actor


# --- vote ------------------------------------------------------------------
@message("ballot.cast.v2")
class CastBallot(Command):
    """Cast or replace the ballot of the voter the token names.

    v2 (v1 was never released): the edge that takes the request names the ballot
    (``ballot_id``, ``tracker``, ``received_at``), so whoever records it, and however
    often it is redelivered, writes the very same row; ``idempotency_key`` makes a
    client's retry return the first receipt instead of casting again. ``choice`` is
    the voter's, as sent, without ``method``: the vote service checks it against the
    frozen rules, with the district of the voting token, and stores its normal form.
    """

    OWNER = "vote"
    poll_id: Id
    voting_token: VotingTokenText
    choice: dict[str, Any]
    # Kept for older readers; the ballot's channel is its voting token's (identity signs
    # ``paper`` into the tokens of paper ballots), never the request's word.
    channel: Literal["online"] = "online"
    ballot_id: BallotId
    tracker: Tracker
    received_at: datetime
    idempotency_key: IdempotencyKey | None = None


@message("paper_mark.cast.v1")
class CastPaperMark(Command):
    """Mark, in the sign-in list, the person an agent sees voting on paper: the voter the
    token names (identity signs a ``paper`` token with the person's own voter key) may
    cast no ballot in the poll afterwards, and is refused if they have one already (a
    paper cannot replace a ballot, nor be replaced). It travels the ballot stream, in the
    voter's shard, so it is decided in order with their ballots. Named at the edge, like
    a ballot: the same mark redelivered is the same mark."""

    OWNER = "vote"
    poll_id: Id
    voting_token: VotingTokenText
    mark_id: BallotId
    received_at: datetime


@message("vote.purge_ballots.v1")
class PurgeBallots(Command):
    """Delete the ballots of the polls whose result was signed longer ago than their
    retention (URNE_VOTE_BALLOT_DAYS): sent by the vote service's own timer, never over
    the broker (no sender may)."""

    OWNER = "vote"
    SENDERS: ClassVar[frozenset[str]] = frozenset()


# --- tally -----------------------------------------------------------------
class _TallyQuery(Query):
    OWNER = "tally"


@message("tally.check_polls.v1")
class CheckPolls(Command):
    """Publish the sealed polls that can be, and ask the vote service again for the
    ballots of those still short of their seal (``ballots.missing.v1``). Sent by the
    tally's own timer, never over the broker (no sender may)."""

    OWNER = "tally"
    SENDERS: ClassVar[frozenset[str]] = frozenset()


@message("result.get.v1")
class GetResult(_TallyQuery):
    poll_id: Id


@message("tree_heads.get.v1")
class GetTreeHeads(_TallyQuery):
    """The signed tree heads of a poll's log, by size."""

    poll_id: Id


@message("record.get.v1")
class GetRecord(_TallyQuery):
    """A page of the record: its entries from position ``start`` (the record only grows,
    so a position is a stable cursor)."""

    poll_id: Id
    start: RecordStart = 0
    limit: RecordPageLimit = 1000


@message("record.lines.get.v1")
class GetRecordLines(_TallyQuery):
    """Entries of the record as stored, canonical JSON a line each (the leaves' bytes):
    what the NDJSON download streams, page after page, without decoding anything."""

    poll_id: Id
    start: RecordStart = 0
    limit: RecordPageLimit = 4096


@message("live_result.get.v1")
class GetLiveResult(_TallyQuery):
    """The running counts of a poll whose results are ``live``."""

    poll_id: Id


@message("record.prove_inclusion.v1")
class ProveInclusion(_TallyQuery):
    poll_id: Id
    tracker: Tracker


@message("record.prove_consistency.v1")
class ProveConsistency(_TallyQuery):
    """Proof that the poll's log at ``first`` entries is a prefix of the log at
    ``second`` (RFC 9162 §2.1.4): both sizes of signed tree heads (or of the published
    record); ``second`` unset is the latest."""

    poll_id: Id
    first: Annotated[int, Field(ge=1, le=2**40)]
    second: Annotated[int, Field(ge=1, le=2**40)] | None = None


# --- accountable operators (issue 10) --------------------------------------
MonthText = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


@message("person.role.set.v1")
class SetRole(_Identity):
    """An admin grants a role to the person with this e-mail address (made a person
    now if they never signed in: the role awaits them), or takes it back
    (``participant``). Access tokens carry the new role from the next sign-in."""

    actor: Actor
    email: EmailStr
    role: Literal["participant", "organiser", "moderator", "agent", "admin"]


@message("desk.person.register.v1")
class RegisterAtDesk(_Identity):
    """An agent registers someone who has no e-mail address and no phone, and gets
    their first desk code to print. ``person_id`` is chosen by the gateway: the same
    command again (a retry after a lost answer) registers no second person, it gives
    the same person a new code."""

    # Identity checks the agent's own access token (and their role as it stands now):
    # the gateway's word is not enough for what lets someone vote. Never logged.
    NOT_LOGGED: ClassVar[frozenset[str]] = frozenset({"access_token"})

    actor: Actor
    access_token: VotingTokenText
    person_id: Id
    district: District | None = None


@message("desk.code.issue.v1")
class IssueDeskCode(_Identity):
    """An agent gives a person registered at a desk a new code (a lost card, a later
    poll); their previous code stops working."""

    # Identity checks the agent's own access token (and their role as it stands now):
    # the gateway's word is not enough for what lets someone vote. Never logged.
    NOT_LOGGED: ClassVar[frozenset[str]] = frozenset({"access_token"})

    actor: Actor
    access_token: VotingTokenText
    person_id: Id


@message("desk_voting_token.issue.v1")
class IssueDeskVotingToken(_Identity):
    """An agent asks a voting token for the person in front of them, who votes at the
    desk with the agent's help (an assisted vote): the person's own voter key, so the
    ballot is theirs like any other, and the channel ``desk`` (whether a later online
    ballot replaces it is the poll's ``cross_channel``)."""

    # Identity checks the agent's own access token (and their role as it stands now):
    # the gateway's word is not enough for what lets someone vote. Never logged.
    NOT_LOGGED: ClassVar[frozenset[str]] = frozenset({"access_token"})

    actor: Actor
    access_token: VotingTokenText
    poll_id: Id
    person_id: Id
    # ``paper``: a token to mark the person as voting on paper (``paper_mark.cast.v1``),
    # the gateway's to use at once, never handed out.
    channel: Literal["desk", "paper"] = "desk"


@message("paper_voting_tokens.issue.v1")
class IssuePaperVotingTokens(_Identity):
    """An agent asks voting tokens for paper ballots of an open poll, one per paper
    serial: each token's voter key is derived from the serial (the same serial, the same
    key: a paper entered twice is one ballot), and its channel is ``paper``."""

    # Identity checks the agent's own access token (and their role as it stands now):
    # the gateway's word is not enough for what lets someone vote. Never logged.
    NOT_LOGGED: ClassVar[frozenset[str]] = frozenset({"access_token"})

    actor: Actor
    access_token: VotingTokenText
    poll_id: Id
    serials: Annotated[list[PaperSerial], Field(min_length=1, max_length=PAPER_BATCH_MAX)]
    district: District | None = None


@message("desk_code.verify.v1")
class VerifyDeskCode(_Identity):
    code: DeskCodeText
    client: ClientAddress | None = None


class _MonthOfActions(BaseModel):
    """One month of a service's action log (urne/storage/action_log.py): admins only."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    actor: Actor
    month: MonthText
    limit: int = Field(default=10_000, ge=1, le=10_000)
    # A page after the entry (at, id), the last of the page before: entries are ordered
    # by both. None: from the month's first.
    after_at: datetime | None = None
    after_id: str | None = Field(default=None, max_length=64)


@message("identity.actions.list.v1")
class ListIdentityActions(_IdentityQuery, _MonthOfActions):
    pass


@message("proposal.actions.list.v1")
class ListProposalActions(_ProposalQuery, _MonthOfActions):
    pass


# --- the electorate (issue 9) ----------------------------------------------
# At most this many census rows in one command: the gateway sends a large list in parts.
CENSUS_ROWS_MAX = 2_000


class CensusRow(BaseModel):
    """One person of a census list, as the organiser's file gives them: identity keeps
    keyed hashes of the identifying fields only (``services/identity/census.py``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    family_name: PersonName
    given_name: PersonName
    birth_date: date
    district: District | None = None
    email: EmailStr | None = None
    resident: bool = True  # lives where the consultation is held


@message("census.import.v1")
class ImportCensus(_Identity):
    """Add entries to a consultation's census, or update them (an entry is a person:
    the same names and birth date); a claimed entry stays claimed. The gateway has
    checked with the proposal service that ``actor`` organises the consultation.
    Eligibility (residence, and ``minimum_age`` full years on ``age_on``) is decided
    now and stored with the entry."""

    # The action log records how many rows, never the rows (personal data).
    NOT_LOGGED: ClassVar[frozenset[str]] = frozenset({"rows"})

    consultation_id: Id
    rows: list[CensusRow] = Field(min_length=1, max_length=CENSUS_ROWS_MAX)
    minimum_age: int | None = Field(default=None, ge=0, le=130)
    age_on: date
    actor: Actor


@message("census.claim.v1")
class ClaimCensusEntry(_Identity):
    """The person whose access token this is claims their entry of the consultation's
    census: by their names and birth date, or, if none are given, by the e-mail
    address they signed in with. Identity checks the token itself."""

    consultation_id: Id
    access_token: VotingTokenText
    family_name: PersonName | None = None
    given_name: PersonName | None = None
    birth_date: date | None = None
    client: ClientAddress | None = None


# --- the sign-in list (émargement, issue 9) ----------------------------------
@message("turnout.get.v1")
class GetTurnout(_IdentityQuery):
    """How many people have voted in a poll, by district and by channel, from identity's
    sign-in list. The gateway has checked with the proposal service that ``actor``
    organises the poll's consultation."""

    actor: Actor
    poll_id: Id


@message("sign_in_list.check.v1")
class CheckSignInList(_Identity):
    """An agent asks whether a person has voted in a poll (not what): at a desk, before
    handing them a paper or helping them vote. A command, not a query, so that the
    action log keeps who looked up whom."""

    # Identity checks the agent's own access token (and their role as it stands now), as
    # for every desk command. Never logged.
    NOT_LOGGED: ClassVar[frozenset[str]] = frozenset({"access_token"})

    actor: Actor
    access_token: VotingTokenText
    poll_id: Id
    person_id: Id


# --- every service ---------------------------------------------------------
@message("service.check_health.v1")
class CheckHealth(Query):
    """Answered by every service (``OWNER`` is set per call, not per class)."""

    OWNER = "*"
