"""ProposalStore on Cassandra (distributed profile).

Several proposal workers, in several processes, may handle commands on one consultation
at once, so no write here depends on a read made before it:

- a consultation's edits write only the columns they change, and an organiser is one
  entry of a map: concurrent edits of different fields, and concurrent additions, all stay;
- a poll changes by compare-and-set on its status and its version (a lightweight
  transaction), so of two changes made from one read (an edit of its rules and its
  opening, two extensions) only one is stored. Every write to ``polls`` is one
  (its creation included, ``IF NOT EXISTS``): mixing them with plain writes on the same
  rows would let the two kinds of timestamps disagree. A change that announces an
  event writes the event into the row's ``outbox`` map in that same compare-and-set
  (cleared by ``published`` once the broker confirmed it), after putting the poll on
  ``poll_agenda``, where the schedule's run finds what to open, close or send again;
- so does a proposal, on its status and whether it is hidden (every write to its row a
  lightweight transaction too); a participant's submission first claims a slot of their
  quota (``IF NOT EXISTS``), so the per-person limit holds across processes, and a
  report is stored ``IF NOT EXISTS``, once per person.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from urne.contracts.steps import DEFAULT_TIME_ZONE, steps_adapter
from urne.counting.rules import rules_adapter
from urne.messaging.kernel import RawEnvelope
from urne.services.proposal.creations import Creation
from urne.services.proposal.domain import (
    Changed,
    Consultation,
    Moderation,
    Poll,
    Proposal,
    ProposalKey,
    Report,
    dump_amendments,
    load_amendments,
)
from urne.storage.action_log import CassandraActionLog
from urne.storage.cassandra import applied, guard, guarded, ping, utc, write_time

LISTING_BUCKET = 0  # one partition lists all consultations (hundreds, not millions)
LISTING_PAGE = 100  # rows per page while the listing looks for what its reader may see
PROPOSAL_PAGE = 200  # likewise, while a listing of proposals iterates their partition
# What a proposal's status and moderation change (replace_proposal), and every column.
_MUTABLE = ("status", "rejection_reason", "status_changed_at", "hidden", "hidden_reason",
            "hidden_by", "hidden_at")
_PROPOSAL_COLUMNS = ("consultation_id, created_at, proposal_id, title, body, author_id, "
                     "category, district, estimated_cost, " + ", ".join(_MUTABLE))

# Column -> how a consultation's field is written there (the names are the fields').
_WRITE: dict[Changed, Callable[[Consultation], object]] = {
    "title": lambda c: c.title,
    "description": lambda c: c.description,
    "time_zone": lambda c: c.time_zone,
    "steps": lambda c: steps_adapter.dump_json(c.steps).decode(),
    "status": lambda c: c.status,
    "published_at": lambda c: c.published_at,
}
_COLUMNS = ("consultation_id, title, description, created_by, created_at, status, time_zone, "
            "steps, published_at, organisers")


class CassandraProposalStore:
    def __init__(self, session: Session, keyspace: str):
        self.s = session
        self.actions = CassandraActionLog(session, keyspace)
        ks = keyspace
        p = session.prepare
        # Written at its creation time (USING TIMESTAMP), not when the write lands: a
        # retried creation (an Idempotency-Key) that stalled while the first attempt
        # stored it and the organisers changed it writes older cells, which lose to
        # every change since, whatever order the writes arrive in.
        self._add_consultation = p(f"INSERT INTO {ks}.consultations ({_COLUMNS}) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?")
        self._list_entry = p(f"INSERT INTO {ks}.consultations_by_created (bucket, {_COLUMNS}) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?")
        self._consultation = p(f"SELECT * FROM {ks}.consultations WHERE consultation_id = ?")
        self._listing = p(f"SELECT * FROM {ks}.consultations_by_created WHERE bucket = ?")
        self._listing.fetch_size = LISTING_PAGE
        # One statement per editable column and table, so an edit writes what it changed.
        self._set: dict[Changed, tuple[PreparedStatement, PreparedStatement]] = {
            column: (p(f"UPDATE {ks}.consultations SET {column} = ? WHERE consultation_id = ?"),
                     p(f"UPDATE {ks}.consultations_by_created SET {column} = ? "
                       "WHERE bucket = ? AND created_at = ? AND consultation_id = ?"))
            for column in _WRITE}
        self._add_organiser = (
            p(f"UPDATE {ks}.consultations SET organisers[?] = ? WHERE consultation_id = ?"),
            p(f"UPDATE {ks}.consultations_by_created SET organisers[?] = ? "
              "WHERE bucket = ? AND created_at = ? AND consultation_id = ?"))
        self._prepare_proposals(ks)
        self._claim_creation = p(f"INSERT INTO {ks}.creations (creation_id, request_digest, "
                                 "created_at) VALUES (?, ?, ?) IF NOT EXISTS")
        # Conditional, as the claim: a claim is only ever changed by compare-and-set.
        self._release_creation = p(f"DELETE FROM {ks}.creations WHERE creation_id = ? "
                                   "IF request_digest = ?")
        # A plain read: one that misses a claim still in flight is put right by the
        # claim that follows it (not applied: it gets the first one).
        self._creation = p(f"SELECT request_digest, created_at FROM {ks}.creations "
                           "WHERE creation_id = ?")
        self._add_poll = p(
            f"INSERT INTO {ks}.polls (poll_id, consultation_id, proposal_id, rules, status, "
            "rules_hash, opened_at, closed_at, published_at, results_visibility, electorate, "
            "cross_channel, opens_at, closes_at, amendments, version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) "
            "IF NOT EXISTS")
        self._replace_poll = p(
            f"UPDATE {ks}.polls SET rules = ?, status = ?, rules_hash = ?, opened_at = ?, "
            "closed_at = ?, published_at = ?, results_visibility = ?, electorate = ?, "
            "cross_channel = ?, opens_at = ?, closes_at = ?, amendments = ?, "
            "outbox = outbox + ?, version = ? "
            "WHERE poll_id = ? IF status = ? AND version = ?")
        self._unbox = p(f"UPDATE {ks}.polls SET outbox = outbox - ? WHERE poll_id = ? "
                        "IF EXISTS")
        self._enter_agenda = p(f"INSERT INTO {ks}.poll_agenda (shelf, poll_id) VALUES (0, ?)")
        self._leave_agenda = p(f"DELETE FROM {ks}.poll_agenda WHERE shelf = 0 AND poll_id = ?")
        self._agenda = p(f"SELECT poll_id FROM {ks}.poll_agenda WHERE shelf = 0")
        # A lightweight transaction too, as every write to polls: the first signature stays.
        self._mark_signed = p(f"UPDATE {ks}.polls SET result_signed_at = ? WHERE poll_id = ? "
                              "IF result_signed_at = null")
        self._index_poll = p(f"INSERT INTO {ks}.polls_by_consultation (consultation_id, poll_id) "
                             "VALUES (?, ?)")
        self._poll = p(f"SELECT * FROM {ks}.polls WHERE poll_id = ?")
        self._poll_ids = p(f"SELECT poll_id FROM {ks}.polls_by_consultation "
                           "WHERE consultation_id = ?")
        # Plain upserts and reads are safe to retry; the lightweight transactions are not
        # marked (a timed-out one has an unknown outcome: a 503, the client asks again).
        for stmt in (self._add_consultation, self._list_entry, self._consultation, self._listing,
                     *(s for pair in self._set.values() for s in pair), *self._add_organiser,
                     self._index_poll, self._poll, self._poll_ids, self._enter_agenda,
                     self._leave_agenda, self._agenda):
            stmt.is_idempotent = True

    def _logged(self, *statements: tuple[PreparedStatement, tuple[Any, ...]]) -> None:
        # Logged: a consultation's row and its listing copy are both written or neither
        # (rare writes, so the batch log's cost does not matter).
        batch = BatchStatement(BatchType.LOGGED)
        for stmt, values in statements:
            batch.add(stmt, values)
        batch.is_idempotent = True
        self.s.execute(batch)

    @guarded
    def creation(self, creation_id: str) -> Creation | None:
        r = self.s.execute(self._creation, (creation_id,)).one()
        return Creation(r.request_digest, utc(r.created_at)) if r else None

    @guarded
    def release_creation(self, creation_id: str, request_digest: str) -> None:
        self.s.execute(self._release_creation, (creation_id, request_digest))

    @guarded
    def claim_creation(self, creation_id: str, creation: Creation) -> Creation | None:
        result = self.s.execute(self._claim_creation, (creation_id, creation.request_digest,
                                                       creation.created_at))
        if applied(result):
            return None
        r = result.one()
        return Creation(r.request_digest, utc(r.created_at))

    @guarded
    def add_consultation(self, c: Consultation) -> None:
        values = (c.consultation_id, c.title, c.description, c.created_by, c.created_at,
                  c.status, c.time_zone, _WRITE["steps"](c), c.published_at,
                  {person: c.created_at for person in c.organisers})
        at = write_time(c.created_at)
        self._logged((self._add_consultation, (*values, at)),
                     (self._list_entry, (LISTING_BUCKET, *values, at)))

    @guarded
    def consultation(self, consultation_id: str) -> Consultation | None:
        r = self.s.execute(self._consultation, (consultation_id,)).one()
        return _consultation(r) if r else None

    def consultations(self, limit: int,
                      include: Callable[[Consultation], bool] = lambda c: True,
                      ) -> list[Consultation]:
        # One partition, newest first, read a page at a time until ``limit`` are found.
        found: list[Consultation] = []
        with guard():  # pages are fetched as the rows are iterated
            for r in self.s.execute(self._listing, (LISTING_BUCKET,)):
                c = _consultation(r)
                if include(c):
                    found.append(c)
                    if len(found) == limit:
                        break
        return found

    @guarded
    def save_consultation(self, c: Consultation, changed: Collection[Changed]) -> None:
        writes: list[tuple[PreparedStatement, tuple[Any, ...]]] = []
        for column in _WRITE:
            if column in changed:
                row, listed = self._set[column]
                value = _WRITE[column](c)
                writes += [(row, (value, c.consultation_id)),
                           (listed, (value, LISTING_BUCKET, c.created_at, c.consultation_id))]
        if writes:
            self._logged(*writes)

    @guarded
    def add_organiser(self, c: Consultation, person_id: str, added_at: datetime) -> None:
        row, listed = self._add_organiser
        self._logged((row, (person_id, added_at, c.consultation_id)),
                     (listed, (person_id, added_at, LISTING_BUCKET, c.created_at,
                               c.consultation_id)))

    # --- proposals ------------------------------------------------------------------------
    def _prepare_proposals(self, ks: str) -> None:
        p = self.s.prepare
        where = "WHERE consultation_id = ? AND created_at = ? AND proposal_id = ?"
        self._add_proposal = p(f"INSERT INTO {ks}.proposals ({_PROPOSAL_COLUMNS}) VALUES "
                               f"({', '.join('?' * len(_PROPOSAL_COLUMNS.split(', ')))}) "
                               "IF NOT EXISTS")
        self._replace_proposal = p(
            f"UPDATE {ks}.proposals SET {', '.join(f'{n} = ?' for n in _MUTABLE)} {where} "
            "IF status = ? AND hidden = ?")
        self._proposal = p(f"SELECT * FROM {ks}.proposals {where}")
        self._proposals = p(f"SELECT * FROM {ks}.proposals WHERE consultation_id = ?")
        self._proposals_after = p(f"SELECT * FROM {ks}.proposals WHERE consultation_id = ? "
                                  "AND (created_at, proposal_id) > (?, ?)")
        for stmt in (self._proposals, self._proposals_after):
            stmt.fetch_size = PROPOSAL_PAGE
        self._index_proposal = p(f"INSERT INTO {ks}.proposals_by_id (proposal_id, "
                                 "consultation_id, created_at) VALUES (?, ?, ?)")
        self._proposal_place = p(f"SELECT consultation_id, created_at FROM {ks}.proposals_by_id "
                                 "WHERE proposal_id = ?")
        self._quota = p(f"SELECT slot, proposal_id FROM {ks}.proposal_quota WHERE "
                        "consultation_id = ? AND author_id = ?")
        self._claim_slot = p(f"INSERT INTO {ks}.proposal_quota (consultation_id, author_id, slot, "
                             "proposal_id, claimed_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS")
        self._add_report = p(f"INSERT INTO {ks}.proposal_reports (consultation_id, proposal_id, "
                             "reporter_id, reason, reported_at) VALUES (?, ?, ?, ?, ?) "
                             "IF NOT EXISTS")
        self._reports = p(f"SELECT * FROM {ks}.proposal_reports WHERE consultation_id = ?")
        self._reports_of = p(f"SELECT * FROM {ks}.proposal_reports WHERE consultation_id = ? "
                             "AND proposal_id = ?")
        # Retention (migration 009). The author goes by a lightweight transaction, as
        # every other change of a proposal (replace_proposal): mixing plain writes with
        # them on one row is unsafe.
        self._all_consultations = p(f"SELECT * FROM {ks}.consultations")
        self._forget_author = p(f"UPDATE {ks}.proposals SET author_id = '' {where} IF EXISTS")
        self._drop_quota = p(f"DELETE FROM {ks}.proposal_quota WHERE consultation_id = ? "
                             "AND author_id = ?")
        self._drop_reports = p(f"DELETE FROM {ks}.proposal_reports WHERE consultation_id = ?")
        self._forgotten = p(f"UPDATE {ks}.consultations SET participation_forgotten_at = ? "
                            "WHERE consultation_id = ?")
        for stmt in (self._proposal, self._proposals, self._proposals_after,
                     self._index_proposal, self._proposal_place, self._quota, self._reports,
                     self._reports_of, self._all_consultations, self._drop_quota,
                     self._drop_reports, self._forgotten):
            stmt.is_idempotent = True

    @guarded
    def add_proposal(self, p: Proposal, limit: int | None = None) -> bool:
        if limit is not None and not self._claim_quota(p, limit):
            return False
        # The lookup row first: a proposal is never stored without it; a lookup row whose
        # proposal write failed finds nothing (proposal() skips it).
        self.s.execute(self._index_proposal, (p.proposal_id, p.consultation_id, p.created_at))
        # Not applied: the id is taken by this very proposal, a retried creation (as
        # add_poll's); the same values, so nothing to write.
        self.s.execute(self._add_proposal, _proposal_values(p))
        return True

    def _claim_quota(self, p: Proposal, limit: int) -> bool:
        """Claim the first free slot of the author's quota, racing submissions included
        (a slot another one took is not applied: try the next). A claimed slot whose
        proposal then fails to be written (a 503) stays taken: the author may submit one
        proposal fewer; that is the price of never letting one more through."""
        key = (p.consultation_id, p.author_id)
        slots = {r.slot: r.proposal_id for r in self.s.execute(self._quota, key)}
        if p.proposal_id in slots.values():
            return True  # a retried creation: its slot was claimed by the first attempt
        for slot in range(limit):
            if slot in slots:
                continue
            claim = self.s.execute(self._claim_slot, (*key, slot, p.proposal_id, p.created_at))
            # Not applied: taken meanwhile, by another proposal or by this one (a retry
            # racing its first attempt: the slot is its own).
            if applied(claim) or claim.one().proposal_id == p.proposal_id:
                return True
        return False

    @guarded
    def proposal(self, proposal_id: str) -> Proposal | None:
        place = self.s.execute(self._proposal_place, (proposal_id,)).one()
        if place is None:
            return None
        r = self.s.execute(self._proposal, (place.consultation_id, place.created_at,
                                            proposal_id)).one()
        return _proposal(r) if r else None

    def proposals(self, consultation_id: str, after: ProposalKey | None = None
                  ) -> Iterator[Proposal]:
        # The consultation's partition, in clustering order, a page at a time as the
        # caller iterates (and stops).
        with guard():  # pages are fetched as the rows are iterated
            rows = (self.s.execute(self._proposals, (consultation_id,)) if after is None else
                    self.s.execute(self._proposals_after, (consultation_id, *after)))
            for r in rows:
                yield _proposal(r)

    @guarded
    def replace_proposal(self, p: Proposal, expected: Proposal) -> bool:
        return applied(self.s.execute(self._replace_proposal, (
            *_mutable_values(p), p.consultation_id, p.created_at, p.proposal_id,
            expected.status, expected.hidden)))

    @guarded
    def add_report(self, r: Report) -> bool:
        return applied(self.s.execute(self._add_report, (
            r.consultation_id, r.proposal_id, r.reporter_id, r.reason, r.reported_at)))

    @guarded
    def reports(self, consultation_id: str, proposal_id: str | None = None) -> list[Report]:
        rows = (self.s.execute(self._reports, (consultation_id,)) if proposal_id is None else
                self.s.execute(self._reports_of, (consultation_id, proposal_id)))
        found = [Report(r.proposal_id, r.consultation_id, r.reporter_id, r.reason,
                        utc(r.reported_at)) for r in rows]
        return sorted(found, key=lambda r: (r.reported_at, r.proposal_id, r.reporter_id))

    @guarded
    def consultations_forgotten_at(self) -> list[tuple[Consultation, datetime | None]]:
        # The whole table: a city has hundreds of consultations, and the schedule's run
        # asks every ten minutes at most.
        return [(_consultation(r), utc(r.participation_forgotten_at) if
                 r.participation_forgotten_at else None)
                for r in self.s.execute(self._all_consultations)]

    @guarded
    def forget_participation(self, consultation_id: str, at: datetime) -> int:
        # The quotas and reports first, the authors (which find the quotas) after, the
        # mark last: a run stopped half-way is done again whole by the next.
        kept = [r for r in self.s.execute(self._proposals, (consultation_id,)) if r.author_id]
        execute_concurrent_with_args(
            self.s, self._drop_quota, [(consultation_id, a) for a in {r.author_id for r in kept}],
            concurrency=32, raise_on_first_error=True)
        self.s.execute(self._drop_reports, (consultation_id,))
        execute_concurrent_with_args(
            self.s, self._forget_author,
            [(consultation_id, r.created_at, r.proposal_id) for r in kept],
            concurrency=32, raise_on_first_error=True)
        self.s.execute(self._forgotten, (at, consultation_id))
        return len(kept)

    @guarded
    def add_poll(self, p: Poll) -> None:
        # The index row first: a poll is never stored without being listed; an index row
        # whose poll write failed is skipped by polls().
        self.s.execute(self._index_poll, (p.consultation_id, p.poll_id))
        if p.opens_at or p.closes_at:
            self.s.execute(self._enter_agenda, (p.poll_id,))
        # IF NOT EXISTS: not applied when the id is taken, by this very poll (a retried
        # creation: its id derives from its actor and Idempotency-Key, creations.py).
        self.s.execute(self._add_poll, (
            p.poll_id, p.consultation_id, p.proposal_id, rules_adapter.dump_json(p.rules).decode(),
            p.status, p.rules_hash, p.opened_at, p.closed_at, p.published_at,
            p.results_visibility, p.electorate, p.cross_channel, p.opens_at, p.closes_at,
            dump_amendments(p.amendments)))

    @guarded
    def replace_poll(self, p: Poll, expected: Poll,
                     announce: Sequence[RawEnvelope] = ()) -> bool:
        # On the agenda first: an outbox entry or a schedule is never out of its sight.
        if announce or p.opens_at or p.closes_at:
            self.s.execute(self._enter_agenda, (p.poll_id,))
        outbox = {env["id"]: json.dumps(env) for env in announce}
        return applied(self.s.execute(self._replace_poll, (
            rules_adapter.dump_json(p.rules).decode(), p.status, p.rules_hash, p.opened_at,
            p.closed_at, p.published_at, p.results_visibility, p.electorate, p.cross_channel,
            p.opens_at, p.closes_at, dump_amendments(p.amendments), outbox,
            expected.next_version, p.poll_id, expected.status, expected.version)))

    @guarded
    def agenda(self) -> list[tuple[Poll, list[RawEnvelope]]]:
        ids = [(r.poll_id,) for r in self.s.execute(self._agenda)]
        results = execute_concurrent_with_args(self.s, self._poll, ids, concurrency=32,
                                               raise_on_first_error=True)
        found = []
        for _, result in results:
            r = result.one()
            if r is not None:
                found.append((_poll(r), [json.loads(v) for _, v in
                                         sorted((r.outbox or {}).items())]))
        return found

    @guarded
    def leave_agenda(self, poll_id: str) -> None:
        self.s.execute(self._leave_agenda, (poll_id,))

    @guarded
    def published(self, events: Sequence[RawEnvelope]) -> None:
        by_poll: dict[str, set[str]] = {}
        for env in events:
            poll_id = env.get("payload", {}).get("poll_id")
            if poll_id and env.get("type", "").startswith("poll."):
                by_poll.setdefault(poll_id, set()).add(str(env["id"]))
        for poll_id, ids in by_poll.items():
            self.s.execute(self._unbox, (ids, poll_id))

    @guarded
    def mark_signed(self, poll_id: str, signed_at: datetime) -> None:
        self.s.execute(self._mark_signed, (signed_at, poll_id))

    @guarded
    def poll(self, poll_id: str) -> Poll | None:
        r = self.s.execute(self._poll, (poll_id,)).one()
        return _poll(r) if r else None

    @guarded
    def polls(self, consultation_id: str) -> list[Poll]:
        ids = [(r.poll_id,) for r in self.s.execute(self._poll_ids, (consultation_id,))]
        results = execute_concurrent_with_args(self.s, self._poll, ids, concurrency=32,
                                               raise_on_first_error=True)
        rows = [result.one() for _, result in results]
        return [_poll(r) for r in rows if r is not None]  # ordered by poll_id, as in SQLite

    @guarded
    def ping(self) -> None:
        ping(self.s)


def _consultation(r: Any) -> Consultation:
    created_at = utc(r.created_at)
    # Nulls are rows from before migration 002: public since their creation, their
    # creator as their one organiser.
    added = sorted((utc(at), person) for person, at in (r.organisers or {}).items())
    return Consultation(r.consultation_id, r.title, r.description, r.created_by, created_at,
                        organisers=tuple(person for _, person in added),
                        status=r.status or "published",
                        time_zone=r.time_zone or DEFAULT_TIME_ZONE,
                        steps=steps_adapter.validate_json(r.steps) if r.steps else (),
                        published_at=utc(r.published_at) if r.status else created_at)


def _mutable_values(p: Proposal) -> tuple[Any, ...]:
    m = p.moderation
    hidden = (None, None, None) if m is None else (m.reason, m.hidden_by, m.hidden_at)
    return (p.status, p.rejection_reason, p.status_changed_at, p.hidden, *hidden)


def _proposal_values(p: Proposal) -> tuple[Any, ...]:
    return (p.consultation_id, p.created_at, p.proposal_id, p.title, p.body, p.author_id,
            p.category, p.district, p.estimated_cost, *_mutable_values(p))


def _proposal(r: Any) -> Proposal:
    # Nulls are rows from before migration 003: added by an organiser, published, shown.
    moderation = (Moderation(r.hidden_reason, r.hidden_by, utc(r.hidden_at))
                  if r.hidden else None)
    return Proposal(r.proposal_id, r.consultation_id, r.title, r.body, r.author_id,
                    utc(r.created_at), category=r.category, district=r.district,
                    estimated_cost=r.estimated_cost, status=r.status or "published",
                    rejection_reason=r.rejection_reason,
                    status_changed_at=utc(r.status_changed_at), moderation=moderation)


def _poll(r: Any) -> Poll:
    return Poll(r.poll_id, r.consultation_id, r.proposal_id, rules_adapter.validate_json(r.rules),
                r.status, r.rules_hash, utc(r.opened_at), utc(r.closed_at), utc(r.published_at),
                # Null: a poll from before migration 004, shown after its close as then.
                results_visibility=r.results_visibility or "after_close",
                # Null: a poll from before migration 007, open to anyone signed in as then.
                electorate=r.electorate or "open",
                # Null: a poll from before migration 008, where any later ballot counted.
                cross_channel=r.cross_channel or "latest_wins",
                result_signed_at=utc(r.result_signed_at), opens_at=utc(r.opens_at),
                closes_at=utc(r.closes_at), amendments=load_amendments(r.amendments),
                version=r.version)
