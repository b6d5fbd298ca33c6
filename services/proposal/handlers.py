"""Proposal command and event handlers, and the service core that registers them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from urne.contracts.commands import (
    AddProposal,
    ClosePoll,
    CreateConsultation,
    CreatePoll,
    GetConsultation,
    GetPoll,
    ListConsultations,
    OpenPoll,
)
from urne.contracts.events import PollClosed, PollOpened, ResultPublished
from urne.contracts.replies import ConsultationsView, ConsultationView, PollView, ProposalView
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import Conflict, NotFound
from urne.services.proposal.domain import Consultation, Poll, Proposal
from urne.services.proposal.ports import ProposalStore


def poll_view(p: Poll) -> PollView:
    return PollView(id=p.poll_id, consultation_id=p.consultation_id, proposal_id=p.proposal_id,
                    rules=p.rules, status=p.status, rules_hash=p.rules_hash,
                    opened_at=p.opened_at, closed_at=p.closed_at, published_at=p.published_at)


def proposal_view(p: Proposal) -> ProposalView:
    return ProposalView(id=p.proposal_id, consultation_id=p.consultation_id, title=p.title,
                        body=p.body, created_at=p.created_at)


@dataclass
class ProposalHandlers:
    store: ProposalStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _consultation(self, consultation_id: str) -> Consultation:
        found = self.store.consultation(consultation_id)
        if found is None:
            raise NotFound(f"no consultation {consultation_id}", code="consultation_not_found")
        return found

    def _poll(self, poll_id: str) -> Poll:
        found = self.store.poll(poll_id)
        if found is None:
            raise NotFound(f"no poll {poll_id}", code="poll_not_found")
        return found

    def _view(self, c: Consultation, full: bool = True) -> ConsultationView:
        return ConsultationView(
            id=c.consultation_id, title=c.title, description=c.description,
            created_at=c.created_at,
            proposals=[proposal_view(p) for p in self.store.proposals(c.consultation_id)]
            if full else [],
            polls=[poll_view(p) for p in self.store.polls(c.consultation_id)] if full else [],
        )

    def create_consultation(self, cmd: CreateConsultation, ctx: Context) -> ConsultationView:
        c = Consultation(uuid.uuid4().hex, cmd.title, cmd.description, cmd.created_by,
                         self.clock())
        self.store.add_consultation(c)
        return self._view(c, full=False)

    def add_proposal(self, cmd: AddProposal, ctx: Context) -> ProposalView:
        self._consultation(cmd.consultation_id)
        p = Proposal(uuid.uuid4().hex, cmd.consultation_id, cmd.title, cmd.body, cmd.author_id,
                     self.clock())
        self.store.add_proposal(p)
        return proposal_view(p)

    def create_poll(self, cmd: CreatePoll, ctx: Context) -> PollView:
        self._consultation(cmd.consultation_id)
        if cmd.proposal_id is not None and cmd.proposal_id not in {
            p.proposal_id for p in self.store.proposals(cmd.consultation_id)
        }:
            raise NotFound(f"no proposal {cmd.proposal_id} in this consultation",
                           code="proposal_not_found")
        poll = Poll(uuid.uuid4().hex, cmd.consultation_id, cmd.proposal_id, cmd.rules)
        self.store.save_poll(poll)
        return poll_view(poll)

    def open_poll(self, cmd: OpenPoll, ctx: Context) -> PollView:
        poll = self._poll(cmd.poll_id).open(self.clock())
        self.store.save_poll(poll)
        assert poll.rules_hash and poll.opened_at
        ctx.emit(PollOpened(poll_id=poll.poll_id, consultation_id=poll.consultation_id,
                            rules=poll.rules, rules_hash=poll.rules_hash,
                            opened_at=poll.opened_at))
        return poll_view(poll)

    def close_poll(self, cmd: ClosePoll, ctx: Context) -> PollView:
        poll = self._poll(cmd.poll_id).close(self.clock())
        self.store.save_poll(poll)
        assert poll.closed_at
        ctx.emit(PollClosed(poll_id=poll.poll_id, closed_at=poll.closed_at))
        return poll_view(poll)

    def get_consultation(self, q: GetConsultation, ctx: Context) -> ConsultationView:
        return self._view(self._consultation(q.consultation_id))

    def list_consultations(self, q: ListConsultations, ctx: Context) -> ConsultationsView:
        return ConsultationsView(items=[self._view(c, full=False)
                                        for c in self.store.consultations(q.limit)])

    def get_poll(self, q: GetPoll, ctx: Context) -> PollView:
        return poll_view(self._poll(q.poll_id))

    def on_result_published(self, event: ResultPublished, ctx: Context) -> None:
        poll = self.store.poll(event.poll_id)
        if poll is None or poll.status == "published":
            return  # redelivery, or a poll this deployment never had
        if poll.status != "closed":
            raise Conflict(f"result for poll {poll.poll_id} published while {poll.status}")
        self.store.save_poll(poll.publish(event.published_at))

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="proposal",
            commands={
                CreateConsultation: self.create_consultation,
                AddProposal: self.add_proposal,
                CreatePoll: self.create_poll,
                OpenPoll: self.open_poll,
                ClosePoll: self.close_poll,
                GetConsultation: self.get_consultation,
                ListConsultations: self.list_consultations,
                GetPoll: self.get_poll,
            },
            subscriptions={ResultPublished: self.on_result_published},
            ping=self.store.ping,
        )
