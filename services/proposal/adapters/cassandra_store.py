"""ProposalStore on Cassandra (distributed profile)."""

from __future__ import annotations

from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType

from urne.counting.rules import rules_adapter
from urne.services.proposal.domain import Consultation, Poll, Proposal
from urne.storage.cassandra import guarded, ping, utc

LISTING_BUCKET = 0  # one partition lists all consultations (hundreds, not millions)


class CassandraProposalStore:
    def __init__(self, session: Session, keyspace: str):
        self.s = session
        ks = keyspace
        p = session.prepare
        self._add_consultation = p(
            f"INSERT INTO {ks}.consultations (consultation_id, title, description, created_by, "
            "created_at) VALUES (?, ?, ?, ?, ?)")
        self._list_entry = p(
            f"INSERT INTO {ks}.consultations_by_created (bucket, created_at, consultation_id, "
            "title, description, created_by) VALUES (?, ?, ?, ?, ?, ?)")
        self._consultation = p(f"SELECT * FROM {ks}.consultations WHERE consultation_id = ?")
        self._listing = p(f"SELECT * FROM {ks}.consultations_by_created WHERE bucket = ? LIMIT ?")
        self._add_proposal = p(
            f"INSERT INTO {ks}.proposals (consultation_id, created_at, proposal_id, title, body, "
            "author_id) VALUES (?, ?, ?, ?, ?, ?)")
        self._proposals = p(f"SELECT * FROM {ks}.proposals WHERE consultation_id = ?")
        self._save_poll = p(
            f"INSERT INTO {ks}.polls (poll_id, consultation_id, proposal_id, rules, status, "
            "rules_hash, opened_at, closed_at, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        self._index_poll = p(f"INSERT INTO {ks}.polls_by_consultation (consultation_id, poll_id) "
                             "VALUES (?, ?)")
        self._poll = p(f"SELECT * FROM {ks}.polls WHERE poll_id = ?")
        self._poll_ids = p(f"SELECT poll_id FROM {ks}.polls_by_consultation "
                           "WHERE consultation_id = ?")
        for stmt in (self._add_consultation, self._list_entry, self._consultation, self._listing,
                     self._add_proposal, self._proposals, self._save_poll, self._index_poll,
                     self._poll, self._poll_ids):
            stmt.is_idempotent = True  # plain upserts and reads: safe to retry

    @guarded
    def add_consultation(self, c: Consultation) -> None:
        # Logged batch: the row and its listing copy are both written or neither (rare writes).
        batch = BatchStatement(BatchType.LOGGED)
        batch.add(self._add_consultation, (c.consultation_id, c.title, c.description,
                                           c.created_by, c.created_at))
        batch.add(self._list_entry, (LISTING_BUCKET, c.created_at, c.consultation_id, c.title,
                                     c.description, c.created_by))
        batch.is_idempotent = True
        self.s.execute(batch)

    @guarded
    def consultation(self, consultation_id: str) -> Consultation | None:
        r = self.s.execute(self._consultation, (consultation_id,)).one()
        return _consultation(r) if r else None

    @guarded
    def consultations(self, limit: int) -> list[Consultation]:
        # One partition, newest first: a single read whatever the limit.
        return [_consultation(r) for r in self.s.execute(self._listing, (LISTING_BUCKET, limit))]

    @guarded
    def add_proposal(self, p: Proposal) -> None:
        self.s.execute(self._add_proposal, (p.consultation_id, p.created_at, p.proposal_id,
                                            p.title, p.body, p.author_id))

    @guarded
    def proposals(self, consultation_id: str) -> list[Proposal]:
        return [Proposal(r.proposal_id, r.consultation_id, r.title, r.body, r.author_id,
                         utc(r.created_at))
                for r in self.s.execute(self._proposals, (consultation_id,))]

    @guarded
    def save_poll(self, p: Poll) -> None:
        # The index row first: a poll is never stored without being listed; an index row
        # whose poll write failed is skipped by polls().
        self.s.execute(self._index_poll, (p.consultation_id, p.poll_id))
        self.s.execute(self._save_poll, (
            p.poll_id, p.consultation_id, p.proposal_id, rules_adapter.dump_json(p.rules).decode(),
            p.status, p.rules_hash, p.opened_at, p.closed_at, p.published_at))

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
    return Consultation(r.consultation_id, r.title, r.description, r.created_by,
                        utc(r.created_at))


def _poll(r: Any) -> Poll:
    return Poll(r.poll_id, r.consultation_id, r.proposal_id, rules_adapter.validate_json(r.rules),
                r.status, r.rules_hash, utc(r.opened_at), utc(r.closed_at), utc(r.published_at))
