"""Who may see and who may act on a consultation, its polls and its proposals. No I/O here.

A consultation belongs to its organisers; admins stand above every organiser. What a
reader may not see does not exist for them (a 404, as for an unknown id), so a draft
never leaks; what they may see but not change is a 403.
"""

from __future__ import annotations

from urne.contracts.commands import Actor
from urne.contracts.roles import ADMIN, ORGANISER, STAFF
from urne.services.proposal.domain import PUBLIC_STATUSES, Consultation, Poll, Proposal


def may_create(actor: Actor) -> bool:
    return actor.role in STAFF


def may_act(consultation: Consultation, actor: Actor | None) -> bool:
    """Edit it, publish it, add to it, run its polls, add an organiser to it."""
    if actor is None:
        return False
    # The role counts as well as the list: a participant's token acts on nothing,
    # whatever a list says (the gateway adds only organisers and admins to one).
    return actor.role == ADMIN or (actor.role == ORGANISER
                                   and actor.person_id in consultation.organisers)


def may_see(consultation: Consultation, actor: Actor | None) -> bool:
    return consultation.status == "published" or may_act(consultation, actor)


def may_see_poll(consultation: Consultation, poll: Poll, actor: Actor | None) -> bool:
    # A draft poll's rules may still change: shown to the organisers only, like a draft
    # consultation, even inside a published one.
    if may_act(consultation, actor):
        return True
    return consultation.status == "published" and poll.status != "draft"


def may_see_proposal(consultation: Consultation, proposal: Proposal, actor: Actor | None
                     ) -> bool:
    """Its consultation's organisers (its moderators) and admins see every proposal, its
    author sees their own; anyone else who sees the consultation, the public ones that
    are not hidden (a submitted one waits for the organisers; a rejected one is public,
    with its reason)."""
    if not may_see(consultation, actor):
        return False
    if may_act(consultation, actor):
        return True
    if actor is not None and actor.person_id == proposal.author_id:
        return True
    return proposal.status in PUBLIC_STATUSES and not proposal.hidden
