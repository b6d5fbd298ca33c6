"""Proposal command and event handlers, and the service core that registers them."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from urne.contracts.commands import (
    Actor,
    AddOrganiser,
    AddProposal,
    ClosePoll,
    CreateConsultation,
    CreatePoll,
    ExtendPoll,
    GetConsultation,
    GetPoll,
    GetProposal,
    HideProposal,
    ImplementProposal,
    ListConsultations,
    ListProposalActions,
    ListProposalReports,
    ListProposals,
    OpenPoll,
    PublishConsultation,
    PublishPoll,
    PublishProposal,
    RejectProposal,
    ReportProposal,
    RunSchedule,
    SelectProposal,
    UnhideProposal,
    UpdateConsultation,
    UpdatePoll,
)
from urne.contracts.envelope import Event
from urne.contracts.events import (
    PollClosed,
    PollCloseExtended,
    PollOpened,
    PollResultReleased,
    ResultPublished,
)
from urne.contracts.replies import (
    ActionLogView,
    Amendment,
    ConsultationsView,
    ConsultationView,
    ModerationView,
    PollView,
    ProposalsView,
    ProposalView,
    ReportsView,
    ReportView,
    ScheduleRun,
)
from urne.messaging.kernel import Context, RawEnvelope, ServiceCore
from urne.platform.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from urne.platform.logging import log_fields
from urne.services.proposal import access, creations, markdown
from urne.services.proposal.domain import (
    Consultation,
    Poll,
    Proposal,
    ProposalFilter,
    ProposalKey,
    Report,
    decode_cursor,
    encode_cursor,
    participation_ended,
    submissions_open,
)
from urne.services.proposal.ports import ProposalStore
from urne.storage.action_log import KEEP as ACTION_LOG_KEEP
from urne.storage.action_log import action_log_view, recorder

log = logging.getLogger(__name__)
_Made = TypeVar("_Made", Consultation, Proposal, Poll)

# A poll's status moves one way through four values, so a compare-and-set lost to a
# concurrent change can only be lost this many times before the change is refused.
POLL_CAS_ATTEMPTS = 4
# A proposal's status and moderation may be changed by several organisers at once; one
# that keeps losing its compare-and-set this often is told to retry (503).
PROPOSAL_CAS_ATTEMPTS = 4
# A consultation's page shows its first proposals; the listing pages through them all.
EMBEDDED_PROPOSALS = 100
# A scheduled close is sent this long after its time; ballots received after the time
# are refused by the vote service whenever the close reaches it (ARCHITECTURE D4).
CLOSE_GRACE = timedelta(seconds=2)
# An event still in a poll's outbox this long after it occurred is sent again.
RESEND_AFTER = timedelta(seconds=10)
# Rows one listing request reads at most, whatever its filters keep: a page that stops
# there is shorter than asked, with a cursor to go on (the cost of a request is bounded).
SCAN_LIMIT = 1000


def poll_view(p: Poll) -> PollView:
    return PollView(id=p.poll_id, consultation_id=p.consultation_id, proposal_id=p.proposal_id,
                    rules=p.rules, status=p.status, rules_hash=p.rules_hash,
                    opened_at=p.opened_at, closed_at=p.closed_at, published_at=p.published_at,
                    results_visibility=p.results_visibility, electorate=p.electorate,
                    cross_channel=p.cross_channel, result_signed_at=p.result_signed_at,
                    opens_at=p.opens_at, closes_at=p.closes_at,
                    amendments=[Amendment(kind=a.kind, closes_at=a.closes_at,
                                          previous_closes_at=a.previous_closes_at,
                                          reason=a.reason, at=a.at) for a in p.amendments])


def proposal_view(p: Proposal, moderator: bool = False, reports: int = 0) -> ProposalView:
    """``moderator``: the reader is one of its consultation's organisers, or an admin, who
    sees why it is hidden and how often it was reported."""
    hidden = p.moderation if moderator else None
    return ProposalView(
        id=p.proposal_id, consultation_id=p.consultation_id, title=p.title, body=p.body,
        body_html=markdown.render(p.body), author_id=p.author_id, category=p.category,
        district=p.district, estimated_cost=p.estimated_cost, status=p.status,
        rejection_reason=p.rejection_reason, status_changed_at=p.status_changed_at,
        created_at=p.created_at, hidden=p.hidden,
        moderation=None if hidden is None else ModerationView(
            reason=hidden.reason, hidden_by=hidden.hidden_by, hidden_at=hidden.hidden_at),
        report_count=reports if moderator else None)


def report_view(r: Report) -> ReportView:
    return ReportView(proposal_id=r.proposal_id, reporter_id=r.reporter_id, reason=r.reason,
                      reported_at=r.reported_at)


def _need(ctx: Context | None) -> Context:
    assert ctx is not None, "an announced change needs the handler's context"
    return ctx


def _occurred(env: RawEnvelope) -> datetime:
    return datetime.fromisoformat(str(env.get("occurred_at")).replace("Z", "+00:00"))


def _to_millis(t: datetime) -> datetime:
    # What both stores keep (Cassandra's timestamps are milliseconds): a proposal's
    # reply, and the cursors made from it, equal what is read back.
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _not_an_organiser(c: Consultation) -> Forbidden:
    return Forbidden(f"you are not an organiser of consultation {c.consultation_id}",
                     code="not_an_organiser_of_this_consultation")


# How often the schedule's run deletes action log entries past their retention, and
# forgets the participation of consultations past theirs.
PURGE_EVERY = timedelta(minutes=10)
# How long after a consultation's participation ended its proposals keep their authors
# and its reports stay (URNE_PARTICIPATION_DAYS).
PARTICIPATION_KEEP = timedelta(days=365)


@dataclass
class ProposalHandlers:
    store: ProposalStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Proposals one person may submit to one consultation (URNE_MAX_PROPOSALS_PER_PERSON);
    # those its organisers add do not count.
    max_proposals_per_person: int = 5
    # How long after its close time a scheduled close is sent (Poll.due).
    close_grace: timedelta = CLOSE_GRACE
    # How long the log of what staff did is kept (URNE_ACTION_LOG_DAYS); on SQLite the
    # schedule's run deletes older entries, at most every PURGE_EVERY.
    action_log_keep: timedelta = ACTION_LOG_KEEP
    participation_keep: timedelta = PARTICIPATION_KEEP
    # Scheduled changes refused, already logged: said once, not every second.
    _said: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)
    _purged_at: datetime | None = field(default=None, init=False, repr=False)

    # --- what the actor may see, and act on ---------------------------------------------
    def _consultation(self, consultation_id: str, actor: Actor | None) -> Consultation:
        """The consultation if ``actor`` may see it; a 404 alike if it is unknown or hidden."""
        found = self.store.consultation(consultation_id)
        if found is None or not access.may_see(found, actor):
            raise NotFound(f"no consultation {consultation_id}", code="consultation_not_found")
        return found

    def _consultation_to_change(self, consultation_id: str, actor: Actor) -> Consultation:
        found = self._consultation(consultation_id, actor)
        if not access.may_act(found, actor):
            raise _not_an_organiser(found)
        return found

    def _poll(self, poll_id: str, actor: Actor | None) -> tuple[Poll, Consultation]:
        """The poll and its consultation if ``actor`` may see the poll; a 404 otherwise."""
        found = self.store.poll(poll_id)
        if found is not None:
            consultation = self.store.consultation(found.consultation_id)
            if consultation is not None and access.may_see_poll(consultation, found, actor):
                return found, consultation
        raise NotFound(f"no poll {poll_id}", code="poll_not_found")

    def _change_poll(self, poll_id: str, actor: Actor | None,
                     change: Callable[[Poll, Consultation], Poll],
                     announce: Callable[[Poll], Event] | None = None,
                     ctx: Context | None = None) -> Poll:
        """Apply ``change`` (which raises to refuse) and store the result if the poll's
        status did not move meanwhile; if it did, decide again on the newer poll. With
        Cassandra, two gateways may ask at once: opening and editing the rules cannot
        both win (D8: rules are frozen when the poll opens). ``announce`` makes the
        change's event, written in the poll's outbox with the change and sent after it
        (``actor`` None: the schedule acts, on no one's behalf)."""
        for _ in range(POLL_CAS_ATTEMPTS):
            poll, consultation = self._poll_to_change(poll_id, actor)
            changed = change(poll, consultation)
            events = [] if announce is None else [_need(ctx).envelope(announce(changed))]
            if self.store.replace_poll(changed, expected=poll, announce=events):
                for env in events:
                    _need(ctx).send(env)
                return changed
        raise DomainError(f"poll {poll_id} kept changing; retry", code="store_unavailable",
                          status=503)

    def _poll_to_change(self, poll_id: str, actor: Actor | None) -> tuple[Poll, Consultation]:
        """The poll and its consultation, if ``actor`` may act on it; the schedule
        (``actor`` None) acts on every poll there is."""
        if actor is not None:
            poll, consultation = self._poll(poll_id, actor)
            if not access.may_act(consultation, actor):
                raise _not_an_organiser(consultation)
            return poll, consultation
        found = self.store.poll(poll_id)
        owner = None if found is None else self.store.consultation(found.consultation_id)
        if found is None or owner is None:
            raise NotFound(f"no poll {poll_id}", code="poll_not_found")
        return found, owner

    def _view(self, c: Consultation, actor: Actor | None, full: bool = True
              ) -> ConsultationView:
        organiser = access.may_act(c, actor)
        step = c.current_step(self.clock())
        return ConsultationView(
            id=c.consultation_id, title=c.title, description=c.description, status=c.status,
            time_zone=c.time_zone, steps=list(c.steps),
            current_step=step.kind if step else None, created_at=c.created_at,
            published_at=c.published_at,
            organisers=list(c.organisers) if organiser else None,
            proposals=self._page(c, actor, ProposalFilter(), EMBEDDED_PROPOSALS)[0]
            if full else [],
            polls=[poll_view(p) for p in self.store.polls(c.consultation_id)
                   if access.may_see_poll(c, p, actor)] if full else [],
        )

    # --- consultations ------------------------------------------------------------------
    def create_consultation(self, cmd: CreateConsultation, ctx: Context) -> ConsultationView:
        if not access.may_create(cmd.actor):
            raise Forbidden("only organisers and admins create consultations",
                            code="forbidden")

        def make(consultation_id: str, at: datetime) -> Consultation:
            return Consultation(consultation_id, cmd.title, cmd.description,
                                cmd.actor.person_id, at, time_zone=cmd.time_zone,
                                steps=cmd.steps)

        c = self._create("consultation", cmd, make, self.store.consultation,
                         self.store.add_consultation)
        return self._view(c, cmd.actor, full=False)

    def _create(self, kind: creations.Kind, cmd: CreateConsultation | AddProposal | CreatePoll,
                make: Callable[[str, datetime], _Made], find: Callable[[str], _Made | None],
                add: Callable[[_Made], object]) -> _Made:
        """Create what ``cmd`` asks for: ``make`` it from its id and creation time (where
        every refusal is decided), ``add`` it to the store; what was created.

        With an ``Idempotency-Key`` (creations.py), its id comes from the actor and the
        key. A first attempt is made, or refused, before its key is claimed: a refused
        request leaves the key unused. A retry (the key claimed) with another request is
        refused (422); with the same one, it gets what the first attempt stored
        (``find``: as it is now) or, if that attempt stopped before storing it, makes and
        stores it at the first attempt's time, as the first would have."""
        now = _to_millis(self.clock())
        if cmd.idempotency_key is None:
            made = make(uuid.uuid4().hex, now)
            add(made)
            return made
        creation_id = creations.creation_id(kind, cmd.actor.person_id, cmd.idempotency_key)
        digest = creations.request_digest(kind, cmd)

        def claimed(made: _Made) -> _Made:
            try:
                add(made)
            except DomainError as exc:
                if exc.status < 500:  # refused (a limit): nothing stored, nothing claimed
                    self.store.release_creation(creation_id, digest)
                raise
            return made

        first = self.store.creation(creation_id)
        if first is None:
            made = make(creation_id, now)
            first = self.store.claim_creation(creation_id, creations.Creation(digest, now))
            if first is None:  # this request's claim: the first attempt
                return claimed(made)
        if first.request_digest != digest:
            raise Invalid(f"this Idempotency-Key created a {kind} from another request; use "
                          f"a new key for a new {kind}", code="idempotency_key_reused")
        stored = find(creation_id)
        return stored if stored is not None else claimed(make(creation_id, first.created_at))

    def update_consultation(self, cmd: UpdateConsultation, ctx: Context) -> ConsultationView:
        c = self._consultation_to_change(cmd.consultation_id, cmd.actor)
        edited, changed = c.edit(title=cmd.title, description=cmd.description,
                                 time_zone=cmd.time_zone, steps=cmd.steps)
        if changed:
            self.store.save_consultation(edited, changed)
        return self._view(edited, cmd.actor)

    def publish_consultation(self, cmd: PublishConsultation, ctx: Context) -> ConsultationView:
        c = self._consultation_to_change(cmd.consultation_id, cmd.actor).publish(self.clock())
        self.store.save_consultation(c, ("status", "published_at"))
        return self._view(c, cmd.actor)

    def add_organiser(self, cmd: AddOrganiser, ctx: Context) -> ConsultationView:
        c = self._consultation_to_change(cmd.consultation_id, cmd.actor)
        added = c.with_organiser(cmd.person_id)
        if added != c:
            self.store.add_organiser(c, cmd.person_id, self.clock())
        return self._view(added, cmd.actor)

    def get_consultation(self, q: GetConsultation, ctx: Context) -> ConsultationView:
        return self._view(self._consultation(q.consultation_id, q.actor), q.actor)

    def list_actions(self, query: ListProposalActions, ctx: Context) -> ActionLogView:
        return action_log_view("proposal", self.store.actions, query)

    def list_consultations(self, q: ListConsultations, ctx: Context) -> ConsultationsView:
        def visible(c: Consultation) -> bool:
            return access.may_see(c, q.actor)

        return ConsultationsView(items=[self._view(c, q.actor, full=False)
                                        for c in self.store.consultations(q.limit, visible)])

    # --- proposals and polls ------------------------------------------------------------
    def add_proposal(self, cmd: AddProposal, ctx: Context) -> ProposalView:
        """Its organisers add a proposal, published at once, whenever they like; anyone
        else who sees the consultation submits one during its proposals step, up to
        ``max_proposals_per_person``, and it waits, submitted, for the organisers."""
        c = self._consultation(cmd.consultation_id, cmd.actor)
        organiser = access.may_act(c, cmd.actor)

        def make(proposal_id: str, at: datetime) -> Proposal:
            if not organiser and not submissions_open(c, at):
                raise Conflict(f"consultation {c.consultation_id} takes proposals during "
                               "its proposals step only", code="proposals_closed")
            return Proposal(proposal_id, c.consultation_id, cmd.title, cmd.body,
                            cmd.actor.person_id, at, category=cmd.category,
                            district=cmd.district, estimated_cost=cmd.estimated_cost,
                            status="published" if organiser else "submitted")

        def add(p: Proposal) -> None:
            if organiser:
                self.store.add_proposal(p)
            elif not self.store.add_proposal(p, limit=self.max_proposals_per_person):
                raise Conflict(f"you have submitted {self.max_proposals_per_person} "
                               "proposals to this consultation, as many as one person may",
                               code="proposal_limit_reached")

        p = self._create("proposal", cmd, make, self.store.proposal, add)
        return self._proposal_view(p, c, cmd.actor)

    def create_poll(self, cmd: CreatePoll, ctx: Context) -> PollView:
        self._consultation_to_change(cmd.consultation_id, cmd.actor)
        proposal = None if cmd.proposal_id is None else self.store.proposal(cmd.proposal_id)
        if cmd.proposal_id is not None and (
                proposal is None or proposal.consultation_id != cmd.consultation_id):
            raise NotFound(f"no proposal {cmd.proposal_id} in this consultation",
                           code="proposal_not_found")

        def make(poll_id: str, at: datetime) -> Poll:
            # A retry's schedule is checked at the first attempt's time: it makes the
            # poll the first would have.
            return Poll(poll_id, cmd.consultation_id, cmd.proposal_id, cmd.rules,
                        results_visibility=cmd.results_visibility, electorate=cmd.electorate,
                        cross_channel=cmd.cross_channel
                        ).schedule(at, cmd.opens_at, cmd.closes_at)

        return poll_view(self._create("poll", cmd, make, self.store.poll, self.store.add_poll))

    def update_poll(self, cmd: UpdatePoll, ctx: Context) -> PollView:
        now = self.clock()

        def edit(poll: Poll, _: Consultation) -> Poll:
            edited = poll.edit_rules(cmd.rules, cmd.results_visibility, cmd.electorate,
                                     cmd.cross_channel)
            opens_at = None if "opens_at" in cmd.clear else cmd.opens_at or poll.opens_at
            closes_at = None if "closes_at" in cmd.clear else cmd.closes_at or poll.closes_at
            if (opens_at, closes_at) == (poll.opens_at, poll.closes_at):
                return edited  # a schedule already passed is not checked again
            return edited.schedule(now, opens_at, closes_at)

        return poll_view(self._change_poll(cmd.poll_id, cmd.actor, edit))

    def _open(self, poll_id: str, actor: Actor | None, ctx: Context) -> Poll:
        now = self.clock()

        def open_it(poll: Poll, consultation: Consultation) -> Poll:
            opened = poll.open(now)  # a poll already open says so first (poll_open)
            if consultation.status != "published":
                raise Conflict(f"consultation {consultation.consultation_id} is a draft: "
                               "publish it before opening its polls",
                               code="consultation_draft")
            if poll.closes_at is not None and poll.closes_at <= now:
                raise Conflict(f"poll {poll.poll_id} was due to close at "
                               f"{poll.closes_at.isoformat()}: it can no longer open",
                               code="schedule_in_past")
            return opened

        def opened(poll: Poll) -> Event:
            assert poll.rules_hash and poll.opened_at
            return PollOpened(poll_id=poll.poll_id, consultation_id=poll.consultation_id,
                              rules=poll.rules, rules_hash=poll.rules_hash,
                              opened_at=poll.opened_at,
                              results_visibility=poll.results_visibility,
                              electorate=poll.electorate, cross_channel=poll.cross_channel,
                              closes_at=poll.closes_at)

        return self._again_if_reached(
            lambda: self._change_poll(poll_id, actor, open_it, opened, ctx),
            poll_id, ("poll_open",), opened, ctx)

    def _again_if_reached(self, change: Callable[[], Poll], poll_id: str,
                          reached: tuple[str, ...], announce: Callable[[Poll], Event],
                          ctx: Context) -> Poll:
        """``change``, or, if the poll is already where it leads (a retry whose first
        answer or event was lost), the poll as it is, with its event sent again: the
        same payload, rebuilt from the stored poll. Who may act was checked first."""
        try:
            return change()
        except Conflict as exc:
            if exc.code not in reached:
                raise
            poll = self.store.poll(poll_id)
            assert poll is not None  # it was just read
            ctx.emit(announce(poll))
            return poll

    def _close(self, poll_id: str, actor: Actor | None, ctx: Context) -> Poll:
        now = self.clock()

        def closed(poll: Poll) -> Event:
            assert poll.closed_at
            return PollClosed(poll_id=poll.poll_id, closed_at=poll.closed_at)

        return self._again_if_reached(
            lambda: self._change_poll(poll_id, actor, lambda poll, _: poll.close(now),
                                      closed, ctx),
            poll_id, ("poll_closed", "poll_published"), closed, ctx)

    def open_poll(self, cmd: OpenPoll, ctx: Context) -> PollView:
        return poll_view(self._open(cmd.poll_id, cmd.actor, ctx))

    def close_poll(self, cmd: ClosePoll, ctx: Context) -> PollView:
        return poll_view(self._close(cmd.poll_id, cmd.actor, ctx))

    def extend_poll(self, cmd: ExtendPoll, ctx: Context) -> PollView:
        now = self.clock()

        def extended(poll: Poll) -> Event:
            last = poll.amendments[-1]
            return PollCloseExtended(poll_id=poll.poll_id, closes_at=last.closes_at,
                                     previous_closes_at=last.previous_closes_at,
                                     reason=last.reason, extended_at=last.at)

        return poll_view(self._change_poll(
            cmd.poll_id, cmd.actor, lambda poll, _: poll.extend(now, cmd.closes_at, cmd.reason),
            extended, ctx))

    def run_schedule(self, cmd: RunSchedule, ctx: Context) -> ScheduleRun:
        """Open and close the polls whose time has come; send again the poll events
        still in an outbox a while after their change (a crash came between the write
        and the broker's confirm: their consumers take a repeat as a no-op)."""
        now = self.clock()
        opened, closed, resent = [], [], 0
        for poll, pending in self.store.agenda():
            for env in pending:
                if now - _occurred(env) >= RESEND_AFTER:
                    ctx.send(env)
                    resent += 1
            due = poll.due(now, self.close_grace)
            try:
                if due == "open":
                    self._open(poll.poll_id, None, ctx)
                    opened.append(poll.poll_id)
                elif due == "close":
                    self._close(poll.poll_id, None, ctx)
                    closed.append(poll.poll_id)
            except DomainError as exc:  # e.g. its consultation still a draft: said once
                if (poll.poll_id, exc.code) not in self._said:
                    self._said.add((poll.poll_id, exc.code))
                    log.warning("scheduled change refused", extra=log_fields(
                        poll_id=poll.poll_id, change=due, code=exc.code, detail=exc.detail))
            if not pending and due is None and poll.status not in ("draft", "open"):
                self.store.leave_agenda(poll.poll_id)
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY:
            self._purged_at = now
            self.store.actions.purge(now - self.action_log_keep)
            self._forget_participation(now)
        return ScheduleRun(opened=opened, closed=closed, resent=resent)

    def _forget_participation(self, now: datetime) -> None:
        """Who wrote and who reported which proposal, ``participation_keep`` after a
        consultation's participation ended: the proposals stay, its public archive,
        without their authors; the reports go (docs/privacy.md). Forgotten again if it
        was given a later step or poll since, once that has ended as long ago."""
        for c, forgotten_at in self.store.consultations_forgotten_at():
            ended = participation_ended(c, self.store.polls(c.consultation_id))
            if ended is None:
                continue
            due = ended + self.participation_keep
            if now >= due and (forgotten_at is None or forgotten_at < due):
                forgotten = self.store.forget_participation(c.consultation_id, now)
                log.info("participation forgotten", extra=log_fields(
                    consultation_id=c.consultation_id, proposals=forgotten))

    def publish_poll(self, cmd: PublishPoll, ctx: Context) -> PollView:
        """Lift the embargo of a closed poll. The tally shows the result once it holds
        both the release and its signed result, in whichever order they come; publishing
        again sends the release again (a lost event is repaired by asking twice)."""
        now = self.clock()
        # In milliseconds, what every store keeps: the release sent again (read back from
        # the store) carries the very time the first one did.
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        def released(poll: Poll) -> Event:
            assert poll.published_at
            return PollResultReleased(poll_id=poll.poll_id, released_at=poll.published_at)

        return poll_view(self._change_poll(cmd.poll_id, cmd.actor,
                                           lambda poll, _: poll.release(now), released, ctx))

    def get_poll(self, q: GetPoll, ctx: Context) -> PollView:
        return poll_view(self._poll(q.poll_id, q.actor)[0])

    # --- proposals: reading, statuses, moderation -------------------------------------
    def _proposal(self, proposal_id: str, actor: Actor | None) -> tuple[Proposal, Consultation]:
        """The proposal and its consultation if ``actor`` may see the proposal; a 404
        otherwise (a submitted or hidden proposal does not exist for the public)."""
        found = self.store.proposal(proposal_id)
        if found is not None:
            consultation = self.store.consultation(found.consultation_id)
            if consultation is not None and access.may_see_proposal(consultation, found, actor):
                return found, consultation
        raise NotFound(f"no proposal {proposal_id}", code="proposal_not_found")

    def _proposal_view(self, p: Proposal, c: Consultation, actor: Actor | None
                       ) -> ProposalView:
        if not access.may_act(c, actor):
            return proposal_view(p)
        return proposal_view(p, moderator=True,
                             reports=len(self.store.reports(c.consultation_id, p.proposal_id)))

    def _page(self, c: Consultation, actor: Actor | None, wanted: ProposalFilter, limit: int,
              after: ProposalKey | None = None) -> tuple[list[ProposalView], str | None]:
        """Up to ``limit`` proposals after ``after`` that ``actor`` may see and ``wanted``
        keeps, and the cursor of the next page (None: there is none). Filtered here, in
        order, reading at most SCAN_LIMIT rows: the same in both stores."""
        found: list[Proposal] = []
        cursor = None
        for scanned, p in enumerate(self.store.proposals(c.consultation_id, after), start=1):
            if access.may_see_proposal(c, p, actor) and wanted.matches(p):
                if len(found) == limit:  # one more exists: there is a next page
                    cursor = encode_cursor(found[-1].key)
                    break
                found.append(p)
            if scanned == SCAN_LIMIT:
                cursor = encode_cursor(p.key)
                break
        if not access.may_act(c, actor):
            return [proposal_view(p) for p in found], cursor
        counts = Counter(r.proposal_id for r in self.store.reports(c.consultation_id)
                         ) if found else Counter[str]()
        return [proposal_view(p, moderator=True, reports=counts[p.proposal_id])
                for p in found], cursor

    def _change_proposal(self, proposal_id: str, actor: Actor,
                         change: Callable[[Proposal], Proposal]) -> ProposalView:
        """Apply ``change`` (which raises to refuse) if the actor moderates the proposal's
        consultation, and store it unless its status or moderation moved meanwhile; if
        they did, decide again on the newer proposal (two organisers, one publishing and
        one rejecting at once: one wins, the other is told where it now is)."""
        for _ in range(PROPOSAL_CAS_ATTEMPTS):
            p, c = self._proposal(proposal_id, actor)
            if not access.may_act(c, actor):
                raise _not_an_organiser(c)
            changed = change(p)
            if self.store.replace_proposal(changed, expected=p):
                return self._proposal_view(changed, c, actor)
        raise DomainError(f"proposal {proposal_id} kept changing; retry",
                          code="store_unavailable", status=503)

    def get_proposal(self, q: GetProposal, ctx: Context) -> ProposalView:
        p, c = self._proposal(q.proposal_id, q.actor)
        return self._proposal_view(p, c, q.actor)

    def list_proposals(self, q: ListProposals, ctx: Context) -> ProposalsView:
        c = self._consultation(q.consultation_id, q.actor)
        after = decode_cursor(q.cursor) if q.cursor is not None else None
        wanted = ProposalFilter(status=q.status, category=q.category, district=q.district,
                                q=q.q)
        items, cursor = self._page(c, q.actor, wanted, q.limit, after)
        return ProposalsView(items=items, next_cursor=cursor)

    def publish_proposal(self, cmd: PublishProposal, ctx: Context) -> ProposalView:
        now = _to_millis(self.clock())
        return self._change_proposal(cmd.proposal_id, cmd.actor,
                                     lambda p: p.move("published", now))

    def reject_proposal(self, cmd: RejectProposal, ctx: Context) -> ProposalView:
        now = _to_millis(self.clock())
        return self._change_proposal(cmd.proposal_id, cmd.actor,
                                     lambda p: p.move("rejected", now, cmd.reason))

    def select_proposal(self, cmd: SelectProposal, ctx: Context) -> ProposalView:
        now = _to_millis(self.clock())
        return self._change_proposal(cmd.proposal_id, cmd.actor,
                                     lambda p: p.move("selected", now))

    def implement_proposal(self, cmd: ImplementProposal, ctx: Context) -> ProposalView:
        now = _to_millis(self.clock())
        return self._change_proposal(cmd.proposal_id, cmd.actor,
                                     lambda p: p.move("implemented", now))

    def hide_proposal(self, cmd: HideProposal, ctx: Context) -> ProposalView:
        now = _to_millis(self.clock())
        return self._change_proposal(cmd.proposal_id, cmd.actor,
                                     lambda p: p.hide(cmd.reason, cmd.actor.person_id, now))

    def unhide_proposal(self, cmd: UnhideProposal, ctx: Context) -> ProposalView:
        return self._change_proposal(cmd.proposal_id, cmd.actor, lambda p: p.unhide())

    def report_proposal(self, cmd: ReportProposal, ctx: Context) -> ReportView:
        p, _ = self._proposal(cmd.proposal_id, cmd.actor)
        report = Report(p.proposal_id, p.consultation_id, cmd.actor.person_id, cmd.reason,
                        _to_millis(self.clock()))
        if not self.store.add_report(report):
            raise Conflict(f"you have already reported proposal {p.proposal_id}",
                           code="proposal_already_reported")
        return report_view(report)

    def list_proposal_reports(self, q: ListProposalReports, ctx: Context) -> ReportsView:
        p, c = self._proposal(q.proposal_id, q.actor)
        if not access.may_act(c, q.actor):
            raise _not_an_organiser(c)
        return ReportsView(items=[report_view(r) for r in
                                  self.store.reports(c.consultation_id, p.proposal_id)])

    # --- events ---------------------------------------------------------------------------
    def on_result_published(self, event: ResultPublished, ctx: Context) -> None:
        poll = self.store.poll(event.poll_id)
        if poll is None:
            return  # a poll this deployment never had
        if poll.status in ("draft", "open"):
            raise Conflict(f"result for poll {poll.poll_id} published while {poll.status}")
        if poll.result_signed_at is None:
            self.store.mark_signed(poll.poll_id, event.published_at)  # once; the first stays
        if poll.status == "published" or poll.results_visibility == "embargoed":
            # A redelivery; or an embargo, which an organiser lifts (publish_poll), before
            # or after the signature.
            return
        # Lost to a concurrent write: raise, and the redelivery decides again.
        if not self.store.replace_poll(poll.publish(event.published_at), expected=poll):
            raise Conflict(f"poll {poll.poll_id} changed while its result was published")

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="proposal",
            commands={
                CreateConsultation: self.create_consultation,
                UpdateConsultation: self.update_consultation,
                PublishConsultation: self.publish_consultation,
                AddOrganiser: self.add_organiser,
                AddProposal: self.add_proposal,
                CreatePoll: self.create_poll,
                UpdatePoll: self.update_poll,
                OpenPoll: self.open_poll,
                ClosePoll: self.close_poll,
                PublishPoll: self.publish_poll,
                ExtendPoll: self.extend_poll,
                RunSchedule: self.run_schedule,
                GetConsultation: self.get_consultation,
                ListConsultations: self.list_consultations,
                ListProposalActions: self.list_actions,
                GetPoll: self.get_poll,
                GetProposal: self.get_proposal,
                ListProposals: self.list_proposals,
                PublishProposal: self.publish_proposal,
                RejectProposal: self.reject_proposal,
                SelectProposal: self.select_proposal,
                ImplementProposal: self.implement_proposal,
                HideProposal: self.hide_proposal,
                UnhideProposal: self.unhide_proposal,
                ReportProposal: self.report_proposal,
                ListProposalReports: self.list_proposal_reports,
            },
            subscriptions={ResultPublished: self.on_result_published},
            ping=self.store.ping,
            published=self.store.published,
            log_action=recorder(self.store.actions, self.clock, self.action_log_keep),
        )
