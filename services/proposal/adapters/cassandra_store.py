"""ProposalStore on Cassandra (distributed profile).

Several proposal workers, in several processes, may handle commands on one consultation
at once, so no write here depends on a read made before it:

- a consultation's edits write only the columns they change, and an organiser is one
  entry of a map: concurrent edits of different fields, and concurrent additions, all stay;
- a poll changes by compare-and-set on its status (a lightweight transaction), so an
  edit of its rules and its opening cannot both win. Every write to ``polls`` is one
  (its creation included, ``IF NOT EXISTS``): mixing them with plain writes on the same
  rows would let the two kinds of timestamps disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from urne.contracts.replies import PollStatus
from urne.contracts.steps import DEFAULT_TIME_ZONE, steps_adapter
from urne.counting.rules import rules_adapter
from urne.services.proposal.domain import Changed, Consultation, Poll, Proposal
from urne.storage.cassandra import applied, guard, guarded, ping, utc

LISTING_BUCKET = 0  # one partition lists all consultations (hundreds, not millions)
LISTING_PAGE = 100  # rows per page while the listing looks for what its reader may see

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
        ks = keyspace
        p = session.prepare
        self._add_consultation = p(f"INSERT INTO {ks}.consultations ({_COLUMNS}) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        self._list_entry = p(f"INSERT INTO {ks}.consultations_by_created (bucket, {_COLUMNS}) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
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
        self._add_proposal = p(
            f"INSERT INTO {ks}.proposals (consultation_id, created_at, proposal_id, title, body, "
            "author_id) VALUES (?, ?, ?, ?, ?, ?)")
        self._proposals = p(f"SELECT * FROM {ks}.proposals WHERE consultation_id = ?")
        self._add_poll = p(
            f"INSERT INTO {ks}.polls (poll_id, consultation_id, proposal_id, rules, status, "
            "rules_hash, opened_at, closed_at, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "IF NOT EXISTS")
        self._replace_poll = p(
            f"UPDATE {ks}.polls SET rules = ?, status = ?, rules_hash = ?, opened_at = ?, "
            "closed_at = ?, published_at = ? WHERE poll_id = ? IF status = ?")
        self._index_poll = p(f"INSERT INTO {ks}.polls_by_consultation (consultation_id, poll_id) "
                             "VALUES (?, ?)")
        self._poll = p(f"SELECT * FROM {ks}.polls WHERE poll_id = ?")
        self._poll_ids = p(f"SELECT poll_id FROM {ks}.polls_by_consultation "
                           "WHERE consultation_id = ?")
        # Plain upserts and reads are safe to retry; the lightweight transactions are not
        # marked (a timed-out one has an unknown outcome: a 503, the client asks again).
        for stmt in (self._add_consultation, self._list_entry, self._consultation, self._listing,
                     *(s for pair in self._set.values() for s in pair), *self._add_organiser,
                     self._add_proposal, self._proposals, self._index_poll, self._poll,
                     self._poll_ids):
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
    def add_consultation(self, c: Consultation) -> None:
        values = (c.consultation_id, c.title, c.description, c.created_by, c.created_at,
                  c.status, c.time_zone, _WRITE["steps"](c), c.published_at,
                  {person: c.created_at for person in c.organisers})
        self._logged((self._add_consultation, values),
                     (self._list_entry, (LISTING_BUCKET, *values)))

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
    def add_poll(self, p: Poll) -> None:
        # The index row first: a poll is never stored without being listed; an index row
        # whose poll write failed is skipped by polls().
        self.s.execute(self._index_poll, (p.consultation_id, p.poll_id))
        result = self.s.execute(self._add_poll, (
            p.poll_id, p.consultation_id, p.proposal_id, rules_adapter.dump_json(p.rules).decode(),
            p.status, p.rules_hash, p.opened_at, p.closed_at, p.published_at))
        if not applied(result):
            raise RuntimeError(f"poll id {p.poll_id} is taken")  # 128 random bits: never

    @guarded
    def replace_poll(self, p: Poll, expected_status: PollStatus) -> bool:
        return applied(self.s.execute(self._replace_poll, (
            rules_adapter.dump_json(p.rules).decode(), p.status, p.rules_hash, p.opened_at,
            p.closed_at, p.published_at, p.poll_id, expected_status)))

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


def _poll(r: Any) -> Poll:
    return Poll(r.poll_id, r.consultation_id, r.proposal_id, rules_adapter.validate_json(r.rules),
                r.status, r.rules_hash, utc(r.opened_at), utc(r.closed_at), utc(r.published_at))
