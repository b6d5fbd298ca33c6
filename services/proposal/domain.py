"""Consultations, proposals and polls, with their life cycles. No I/O here."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from urne.contracts.fields import CrossChannel, Electorate, ResultsVisibility
from urne.contracts.replies import ConsultationStatus, PollStatus, ProposalStatus
from urne.contracts.steps import DEFAULT_TIME_ZONE, Step
from urne.counting.rules import PollRules, rules_hash
from urne.platform.errors import Conflict, Invalid

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


def participation_ended(consultation: Consultation, polls: Iterable[Poll]) -> datetime | None:
    """When people's part in a consultation ended: the end of its last step or the close
    of its last poll, whichever is later. None while they may still take part (a poll
    open, or a draft one scheduled to open) or if nothing has ended yet (no step, no poll
    closed): its participation is kept then."""
    ends = [s.ends_at for s in consultation.steps]
    for poll in polls:
        if poll.status == "open" or (poll.status == "draft" and poll.opens_at is not None):
            return None
        if poll.closed_at is not None:
            ends.append(poll.closed_at)
    return max(ends, default=None)


# --- proposals ------------------------------------------------------------------------

# Who moves a proposal is the organisers' (access.py); where it may go is here. A
# rejection may come before publication or after it (the analysis step finds a published
# proposal unfeasible), never after selection; rejected and implemented are final.
PROPOSAL_MOVES: dict[ProposalStatus, frozenset[ProposalStatus]] = {
    "submitted": frozenset({"published", "rejected"}),
    "published": frozenset({"selected", "rejected"}),
    "selected": frozenset({"implemented"}),
    "rejected": frozenset(),
    "implemented": frozenset(),
}
# Seen by everyone who sees its consultation (unless hidden); "submitted" only by the
# consultation's organisers and the proposal's author.
PUBLIC_STATUSES: frozenset[ProposalStatus] = frozenset(
    {"published", "rejected", "selected", "implemented"})

# A proposal's place in its consultation's listing: oldest first, then by id.
ProposalKey = tuple[datetime, str]


def submissions_open(consultation: Consultation, now: datetime) -> bool:
    """Whether participants may submit proposals: the consultation is published and
    ``now`` is in its ``proposals`` step (organisers add proposals at any time)."""
    step = consultation.current_step(now)
    return consultation.status == "published" and step is not None and step.kind == "proposals"


@dataclass(frozen=True)
class Moderation:
    """Why a proposal is hidden, by whom and since when (its moderators see it)."""

    reason: str
    hidden_by: str
    hidden_at: datetime


@dataclass(frozen=True)
class Proposal:
    proposal_id: str
    consultation_id: str
    title: str
    body: str  # Markdown, as its author wrote it (rendered and sanitised on the way out)
    author_id: str  # a person id; identity alone knows who that is
    created_at: datetime
    category: str | None = None
    district: str | None = None
    estimated_cost: int | None = None  # whole currency units
    status: ProposalStatus = "published"
    rejection_reason: str | None = None  # public, given with the rejection
    status_changed_at: datetime | None = None  # None: as it was created
    moderation: Moderation | None = None  # set while hidden

    @property
    def hidden(self) -> bool:
        return self.moderation is not None

    @property
    def key(self) -> ProposalKey:
        return self.created_at, self.proposal_id

    def move(self, to: ProposalStatus, now: datetime, reason: str | None = None) -> Proposal:
        """The proposal in status ``to``; a 409 ``proposal_<its status>`` if it may not go
        there from where it is. A rejection needs its ``reason``."""
        if to not in PROPOSAL_MOVES[self.status]:
            raise Conflict(f"proposal {self.proposal_id} is {self.status}; it cannot become {to}",
                           code=f"proposal_{self.status}")
        if (to == "rejected") != (reason is not None):
            raise ValueError("a rejection, and only a rejection, gives a reason")
        return replace(self, status=to, status_changed_at=now,
                       rejection_reason=reason if to == "rejected" else None)

    def hide(self, reason: str, by: str, now: datetime) -> Proposal:
        if self.moderation is not None:
            raise Conflict(f"proposal {self.proposal_id} is already hidden",
                           code="proposal_hidden")
        return replace(self, moderation=Moderation(reason, by, now))

    def unhide(self) -> Proposal:
        if self.moderation is None:
            raise Conflict(f"proposal {self.proposal_id} is not hidden",
                           code="proposal_not_hidden")
        return replace(self, moderation=None)


@dataclass(frozen=True)
class Report:
    """Someone's report of a proposal to its moderators (one per person and proposal)."""

    proposal_id: str
    consultation_id: str
    reporter_id: str
    reason: str
    reported_at: datetime


@dataclass(frozen=True)
class ProposalFilter:
    """What a listing asks for: every criterion given must hold. ``q`` is a
    case-insensitive substring of the title or the body (Unicode case folding: "É"
    finds "é"); a full-text index is for later."""

    status: ProposalStatus | None = None
    category: str | None = None
    district: str | None = None
    q: str | None = None

    def matches(self, p: Proposal) -> bool:
        if self.status is not None and p.status != self.status:
            return False
        if self.category is not None and p.category != self.category:
            return False
        if self.district is not None and p.district != self.district:
            return False
        if self.q is not None:
            needle = self.q.casefold()
            return needle in p.title.casefold() or needle in p.body.casefold()
        return True


def encode_cursor(key: ProposalKey) -> str:
    """Where a page stopped, opaque to clients (they send it back as it is)."""
    created_at, proposal_id = key
    raw = f"{created_at.isoformat()}|{proposal_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> ProposalKey:
    """The key ``encode_cursor`` made; a 422 ``invalid_cursor`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, proposal_id = raw.partition("|")
        created_at = datetime.fromisoformat(when)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        created_at, proposal_id = None, ""
    if created_at is None or created_at.utcoffset() is None or not proposal_id:
        raise Invalid("this cursor was not given by this listing", code="invalid_cursor")
    return created_at, proposal_id


@dataclass(frozen=True)
class Amendment:
    """A recorded change to an open poll: only its close time, only later."""

    kind: Literal["close_extended"]
    closes_at: datetime
    previous_closes_at: datetime | None
    reason: str
    at: datetime


def _ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _millis(t: datetime | None) -> datetime | None:
    return None if t is None else _ms(t)


def dump_amendments(amendments: tuple[Amendment, ...]) -> str:
    """How the stores keep a poll's amendments: a JSON list, oldest first."""
    return json.dumps([{"kind": a.kind, "closes_at": a.closes_at.isoformat(),
                        "previous_closes_at": a.previous_closes_at and
                        a.previous_closes_at.isoformat(),
                        "reason": a.reason, "at": a.at.isoformat()} for a in amendments])


def load_amendments(text: str | None) -> tuple[Amendment, ...]:
    def when(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    return tuple(Amendment(a["kind"], datetime.fromisoformat(a["closes_at"]),
                           when(a["previous_closes_at"]), a["reason"],
                           datetime.fromisoformat(a["at"])) for a in json.loads(text or "[]"))


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
    # Beside the rules, not in them (it changes when a result is seen, never what it
    # is), but frozen with them at the opening: an embargo lifted mid-vote would leak.
    results_visibility: ResultsVisibility = "after_close"
    # Who may get a voting token (``open``: anyone signed in; ``census``: those holding a
    # claimed, eligible entry of the consultation's census, which identity checks):
    # frozen with the rules too, as a change mid-vote would let in, or shut out, voters.
    electorate: Electorate = "open"
    # Whether a ballot cast in person is final (``in_person_final``) or replaced by a
    # later one like any (``latest_wins``): frozen with the rules, for the same reason.
    cross_channel: CrossChannel = "latest_wins"
    # When the tally signed the result (result.published): for an embargoed poll, the
    # organisers learn from it that the result is ready to publish.
    result_signed_at: datetime | None = None
    # Its schedule (None: by hand only). The close time includes the amendments.
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    amendments: tuple[Amendment, ...] = ()
    # How many changes the store took (its compare-and-set: ``replace_poll``); None for
    # a Cassandra row from before migration 010. Not shown, and not part of what a poll
    # is (two polls that say the same are equal, whatever their versions).
    version: int | None = field(default=0, compare=False)

    @property
    def next_version(self) -> int:
        """The version a change of this poll is stored with."""
        return (self.version or 0) + 1

    def schedule(self, now: datetime, opens_at: datetime | None,
                 closes_at: datetime | None) -> Poll:
        """The poll with this schedule, set while it is a draft: times to come, and a
        close after the opening (in milliseconds, as every store keeps them)."""
        opens_at, closes_at = _millis(opens_at), _millis(closes_at)
        if self.status != "draft":
            raise Conflict(f"poll {self.poll_id} is {self.status}: its schedule is frozen "
                           "(an open poll's close may only be extended)",
                           code="poll_rules_frozen")
        for name, when in (("opens_at", opens_at), ("closes_at", closes_at)):
            if when is not None and when <= now:
                raise Invalid(f"{name} {when.isoformat()} is not in the future",
                              code="schedule_in_past")
        if opens_at is not None and closes_at is not None and closes_at <= opens_at:
            raise Invalid("closes_at must come after opens_at", code="schedule_invalid")
        return replace(self, opens_at=opens_at, closes_at=closes_at)

    def extend(self, now: datetime, closes_at: datetime, reason: str) -> Poll:
        """The open poll with its close moved later (or set, if it had none), before
        the current close time came: closing is final, and a close brought forward
        would shut out voters who planned on the published time."""
        closes_at, now = _ms(closes_at), _ms(now)
        if self.status != "open":
            raise Conflict(f"poll {self.poll_id} is {self.status}: only an open poll's "
                           "close may be extended", code=f"poll_{self.status}")
        if self.closes_at is not None and now >= self.closes_at:
            raise Conflict(f"poll {self.poll_id} closed at {self.closes_at.isoformat()}: "
                           "closing is final", code="poll_closed")
        if closes_at <= now or (self.closes_at is not None and closes_at <= self.closes_at):
            raise Invalid("an extension moves the close later, to a time to come",
                          code="extension_not_later")
        amendment = Amendment("close_extended", closes_at, self.closes_at, reason, now)
        return replace(self, closes_at=closes_at, amendments=(*self.amendments, amendment))

    def due(self, now: datetime, grace: timedelta) -> Literal["open", "close"] | None:
        """What the schedule asks of the poll at ``now``. The close is sent ``grace``
        after its time: ballots received before it, still on their way, are then
        counted, and those received after it are refused by the vote service anyway."""
        if self.status == "draft" and self.opens_at is not None and self.opens_at <= now:
            return "open"
        if self.status == "open" and self.closes_at is not None and \
                self.closes_at + grace <= now:
            return "close"
        return None

    def edit_rules(self, rules: PollRules,
                   results_visibility: ResultsVisibility | None = None,
                   electorate: Electorate | None = None,
                   cross_channel: CrossChannel | None = None) -> Poll:
        # Rules edited mid-vote (CONSUL #5321) would make ballots cast under the old
        # ones count under the new: from the opening on, they are frozen.
        if self.status != "draft":
            raise Conflict(f"poll {self.poll_id} is {self.status}: its rules are frozen",
                           code="poll_rules_frozen")
        return replace(self, rules=rules,
                       results_visibility=results_visibility or self.results_visibility,
                       electorate=electorate or self.electorate,
                       cross_channel=cross_channel or self.cross_channel)

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

    def release(self, now: datetime) -> Poll:
        """An organiser publishes the embargoed result of the closed poll. Once published,
        the poll as it is (publishing again only repeats the release)."""
        if self.results_visibility != "embargoed":
            raise Conflict(f"poll {self.poll_id}'s results are not embargoed: they are "
                           "published without an organiser", code="poll_not_embargoed")
        return self if self.status == "published" else self.publish(now)
