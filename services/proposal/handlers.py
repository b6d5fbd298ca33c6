"""Proposal command and event handlers, and the service core that registers them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from urne.contracts.commands import (
    Actor,
    AddOrganiser,
    AddProposal,
    ClosePoll,
    CreateConsultation,
    CreatePoll,
    GetConsultation,
    GetPoll,
    ListConsultations,
    OpenPoll,
    PublishConsultation,
    UpdateConsultation,
    UpdatePoll,
)
from urne.contracts.events import PollClosed, PollOpened, ResultPublished
from urne.contracts.replies import ConsultationsView, ConsultationView, PollView, ProposalView
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import Conflict, DomainError, Forbidden, NotFound
from urne.services.proposal import access
from urne.services.proposal.domain import Consultation, Poll, Proposal
from urne.services.proposal.ports import ProposalStore

# A poll's status moves one way through four values, so a compare-and-set lost to a
# concurrent change can only be lost this many times before the change is refused.
POLL_CAS_ATTEMPTS = 4


def poll_view(p: Poll) -> PollView:
    return PollView(id=p.poll_id, consultation_id=p.consultation_id, proposal_id=p.proposal_id,
                    rules=p.rules, status=p.status, rules_hash=p.rules_hash,
                    opened_at=p.opened_at, closed_at=p.closed_at, published_at=p.published_at)


def proposal_view(p: Proposal) -> ProposalView:
    return ProposalView(id=p.proposal_id, consultation_id=p.consultation_id, title=p.title,
                        body=p.body, created_at=p.created_at)


def _not_an_organiser(c: Consultation) -> Forbidden:
    return Forbidden(f"you are not an organiser of consultation {c.consultation_id}",
                     code="not_an_organiser_of_this_consultation")


@dataclass
class ProposalHandlers:
    store: ProposalStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

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

    def _change_poll(self, poll_id: str, actor: Actor,
                     change: Callable[[Poll, Consultation], Poll]) -> Poll:
        """Apply ``change`` (which raises to refuse) and store the result if the poll's
        status did not move meanwhile; if it did, decide again on the newer poll. With
        Cassandra, two gateways may ask at once: opening and editing the rules cannot
        both win (D8: rules are frozen when the poll opens)."""
        for _ in range(POLL_CAS_ATTEMPTS):
            poll, consultation = self._poll(poll_id, actor)
            if not access.may_act(consultation, actor):
                raise _not_an_organiser(consultation)
            changed = change(poll, consultation)
            if self.store.replace_poll(changed, expected_status=poll.status):
                return changed
        raise DomainError(f"poll {poll_id} kept changing; retry", code="store_unavailable",
                          status=503)

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
            proposals=[proposal_view(p) for p in self.store.proposals(c.consultation_id)]
            if full else [],
            polls=[poll_view(p) for p in self.store.polls(c.consultation_id)
                   if access.may_see_poll(c, p, actor)] if full else [],
        )

    # --- consultations ------------------------------------------------------------------
    def create_consultation(self, cmd: CreateConsultation, ctx: Context) -> ConsultationView:
        if not access.may_create(cmd.actor):
            raise Forbidden("only organisers and admins create consultations",
                            code="forbidden")
        c = Consultation(uuid.uuid4().hex, cmd.title, cmd.description, cmd.actor.person_id,
                         self.clock(), time_zone=cmd.time_zone, steps=cmd.steps)
        self.store.add_consultation(c)
        return self._view(c, cmd.actor, full=False)

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

    def list_consultations(self, q: ListConsultations, ctx: Context) -> ConsultationsView:
        def visible(c: Consultation) -> bool:
            return access.may_see(c, q.actor)

        return ConsultationsView(items=[self._view(c, q.actor, full=False)
                                        for c in self.store.consultations(q.limit, visible)])

    # --- proposals and polls ------------------------------------------------------------
    def add_proposal(self, cmd: AddProposal, ctx: Context) -> ProposalView:
        self._consultation_to_change(cmd.consultation_id, cmd.actor)
        p = Proposal(uuid.uuid4().hex, cmd.consultation_id, cmd.title, cmd.body,
                     cmd.actor.person_id, self.clock())
        self.store.add_proposal(p)
        return proposal_view(p)

    def create_poll(self, cmd: CreatePoll, ctx: Context) -> PollView:
        self._consultation_to_change(cmd.consultation_id, cmd.actor)
        if cmd.proposal_id is not None and cmd.proposal_id not in {
            p.proposal_id for p in self.store.proposals(cmd.consultation_id)
        }:
            raise NotFound(f"no proposal {cmd.proposal_id} in this consultation",
                           code="proposal_not_found")
        poll = Poll(uuid.uuid4().hex, cmd.consultation_id, cmd.proposal_id, cmd.rules)
        self.store.add_poll(poll)
        return poll_view(poll)

    def update_poll(self, cmd: UpdatePoll, ctx: Context) -> PollView:
        poll = self._change_poll(cmd.poll_id, cmd.actor,
                                 lambda poll, _: poll.edit_rules(cmd.rules))
        return poll_view(poll)

    def open_poll(self, cmd: OpenPoll, ctx: Context) -> PollView:
        now = self.clock()

        def open_it(poll: Poll, consultation: Consultation) -> Poll:
            opened = poll.open(now)  # a poll already open says so first (poll_open)
            if consultation.status != "published":
                raise Conflict(f"consultation {consultation.consultation_id} is a draft: "
                               "publish it before opening its polls",
                               code="consultation_draft")
            return opened

        poll = self._change_poll(cmd.poll_id, cmd.actor, open_it)
        assert poll.rules_hash and poll.opened_at
        ctx.emit(PollOpened(poll_id=poll.poll_id, consultation_id=poll.consultation_id,
                            rules=poll.rules, rules_hash=poll.rules_hash,
                            opened_at=poll.opened_at))
        return poll_view(poll)

    def close_poll(self, cmd: ClosePoll, ctx: Context) -> PollView:
        now = self.clock()
        poll = self._change_poll(cmd.poll_id, cmd.actor, lambda poll, _: poll.close(now))
        assert poll.closed_at
        ctx.emit(PollClosed(poll_id=poll.poll_id, closed_at=poll.closed_at))
        return poll_view(poll)

    def get_poll(self, q: GetPoll, ctx: Context) -> PollView:
        return poll_view(self._poll(q.poll_id, q.actor)[0])

    def on_result_published(self, event: ResultPublished, ctx: Context) -> None:
        poll = self.store.poll(event.poll_id)
        if poll is None or poll.status == "published":
            return  # redelivery, or a poll this deployment never had
        if poll.status != "closed":
            raise Conflict(f"result for poll {poll.poll_id} published while {poll.status}")
        # Lost to a concurrent write: raise, and the redelivery decides again.
        if not self.store.replace_poll(poll.publish(event.published_at),
                                       expected_status="closed"):
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
                GetConsultation: self.get_consultation,
                ListConsultations: self.list_consultations,
                GetPoll: self.get_poll,
            },
            subscriptions={ResultPublished: self.on_result_published},
            ping=self.store.ping,
        )
