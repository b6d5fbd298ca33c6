"""ProposalStore on SQLite (embedded profile)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from itertools import islice

from urne.contracts.steps import steps_adapter
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
from urne.storage.action_log import SqliteActionLog
from urne.storage.sqlite import SqliteDb

# Column -> how a consultation's field is written there (the names are the fields').
_WRITE: dict[Changed, Callable[[Consultation], object]] = {
    "title": lambda c: c.title,
    "description": lambda c: c.description,
    "time_zone": lambda c: c.time_zone,
    "steps": lambda c: steps_adapter.dump_json(c.steps).decode(),
    "status": lambda c: c.status,
    "published_at": lambda c: _iso(c.published_at),
}


PROPOSAL_PAGE = 200  # rows per read while a listing iterates a consultation's proposals
# What a proposal's status and moderation change (replace_proposal), and the rest.
_MUTABLE = ("status", "rejection_reason", "status_changed_at", "hidden", "hidden_reason",
            "hidden_by", "hidden_at")
_PROPOSAL_COLUMNS = ("proposal_id, consultation_id, title, body, author_id, created_at, "
                     "category, district, estimated_cost, " + ", ".join(_MUTABLE))


def _mutable_values(p: Proposal) -> tuple[object, ...]:
    m = p.moderation
    hidden = (None, None, None) if m is None else (m.reason, m.hidden_by, _iso(m.hidden_at))
    return (p.status, p.rejection_reason, _iso(p.status_changed_at), p.hidden, *hidden)


def _proposal_values(p: Proposal) -> tuple[object, ...]:
    return (p.proposal_id, p.consultation_id, p.title, p.body, p.author_id,
            p.created_at.isoformat(), p.category, p.district, p.estimated_cost,
            *_mutable_values(p))


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class SqliteProposalStore:
    def __init__(self, db: SqliteDb):
        self.db = db
        self.actions = SqliteActionLog(db)

    def creation(self, creation_id: str) -> Creation | None:
        r = self.db.one("SELECT request_digest, created_at FROM creations WHERE "
                        "creation_id = ?", (creation_id,))
        return Creation(r["request_digest"], datetime.fromisoformat(r["created_at"])) \
            if r else None

    def release_creation(self, creation_id: str, request_digest: str) -> None:
        with self.db.tx() as tx:
            tx.execute("DELETE FROM creations WHERE creation_id = ? AND request_digest = ?",
                       (creation_id, request_digest))

    def claim_creation(self, creation_id: str, creation: Creation) -> Creation | None:
        with self.db.tx() as tx:
            if tx.execute("INSERT INTO creations VALUES (?, ?, ?) ON CONFLICT (creation_id) "
                          "DO NOTHING", (creation_id, creation.request_digest,
                                         creation.created_at.isoformat())).rowcount:
                return None
        return self.creation(creation_id)

    def add_consultation(self, c: Consultation) -> None:
        with self.db.tx() as tx:
            tx.execute("INSERT INTO consultations (consultation_id, title, description, "
                       "created_by, created_at, status, time_zone, steps, published_at, "
                       "organisers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (consultation_id) DO NOTHING",
                       (c.consultation_id, c.title, c.description, c.created_by,
                        c.created_at.isoformat(), c.status, c.time_zone,
                        _WRITE["steps"](c), _iso(c.published_at), json.dumps(c.organisers)))

    def consultation(self, consultation_id: str) -> Consultation | None:
        row = self.db.one("SELECT * FROM consultations WHERE consultation_id = ?",
                          (consultation_id,))
        return _consultation(row) if row else None

    def consultations(self, limit: int,
                      include: Callable[[Consultation], bool] = lambda c: True,
                      ) -> list[Consultation]:
        # Filtered here, not in SQL: who may see a draft is the core's to say. A city has
        # hundreds of consultations, not millions.
        rows = self.db.query("SELECT * FROM consultations "
                             "ORDER BY created_at DESC, consultation_id")
        return list(islice((c for c in map(_consultation, rows) if include(c)), limit))

    def save_consultation(self, c: Consultation, changed: Collection[Changed]) -> None:
        columns = [name for name in _WRITE if name in changed]
        if not columns:
            return
        with self.db.tx() as tx:
            tx.execute(f"UPDATE consultations SET {', '.join(f'{n} = ?' for n in columns)} "
                       "WHERE consultation_id = ?",
                       (*(_WRITE[n](c) for n in columns), c.consultation_id))

    def add_organiser(self, c: Consultation, person_id: str, added_at: datetime) -> None:
        # Appended in one statement, unless already there: the array keeps the order
        # they were added in, so added_at has no column here.
        with self.db.tx() as tx:
            tx.execute("UPDATE consultations SET organisers = "
                       "json_insert(organisers, '$[#]', ?) WHERE consultation_id = ? "
                       "AND NOT EXISTS (SELECT 1 FROM json_each(consultations.organisers) "
                       "WHERE value = ?)",
                       (person_id, c.consultation_id, person_id))

    def add_proposal(self, p: Proposal, limit: int | None = None) -> bool:
        # One transaction (BEGIN IMMEDIATE: one writer at a time) counts the author's
        # submissions and adds this one: racing submissions cannot overrun the limit.
        with self.db.tx() as tx:
            if tx.execute("SELECT 1 FROM proposals WHERE proposal_id = ?",
                          (p.proposal_id,)).fetchone():
                return True  # a retried creation: stored, in its slot
            slot = None
            if limit is not None:
                [taken] = tx.execute(
                    "SELECT COUNT(*) FROM proposals WHERE consultation_id = ? AND author_id = ? "
                    "AND quota_slot IS NOT NULL", (p.consultation_id, p.author_id)).fetchone()
                if taken >= limit:
                    return False
                slot = taken
            tx.execute(f"INSERT INTO proposals ({_PROPOSAL_COLUMNS}, quota_slot) "
                       f"VALUES ({', '.join('?' * (len(_proposal_values(p)) + 1))})",
                       (*_proposal_values(p), slot))
        return True

    def proposal(self, proposal_id: str) -> Proposal | None:
        row = self.db.one("SELECT * FROM proposals WHERE proposal_id = ?", (proposal_id,))
        return _proposal(row) if row else None

    def proposals(self, consultation_id: str, after: ProposalKey | None = None
                  ) -> Iterator[Proposal]:
        # Keyset pages, the lock taken per page only: a reader never holds up the writers.
        position = None if after is None else (after[0].isoformat(), after[1])
        while True:
            rows = self.db.query(
                "SELECT * FROM proposals WHERE consultation_id = ? "
                + ("" if position is None else "AND (created_at, proposal_id) > (?, ?) ")
                + "ORDER BY created_at, proposal_id LIMIT ?",
                (consultation_id, *(position or ()), PROPOSAL_PAGE))
            yield from map(_proposal, rows)
            if len(rows) < PROPOSAL_PAGE:
                return
            position = (rows[-1]["created_at"], rows[-1]["proposal_id"])

    def replace_proposal(self, p: Proposal, expected: Proposal) -> bool:
        with self.db.tx() as tx:
            cursor = tx.execute(
                f"UPDATE proposals SET {', '.join(f'{n} = ?' for n in _MUTABLE)} "
                "WHERE proposal_id = ? AND status = ? AND hidden = ?",
                (*_mutable_values(p), p.proposal_id, expected.status, expected.hidden))
            return cursor.rowcount == 1

    def add_report(self, r: Report) -> bool:
        with self.db.tx() as tx:
            cursor = tx.execute(
                "INSERT OR IGNORE INTO proposal_reports (proposal_id, reporter_id, "
                "consultation_id, reason, reported_at) VALUES (?, ?, ?, ?, ?)",
                (r.proposal_id, r.reporter_id, r.consultation_id, r.reason,
                 r.reported_at.isoformat()))
            return cursor.rowcount == 1

    def reports(self, consultation_id: str, proposal_id: str | None = None) -> list[Report]:
        rows = self.db.query(
            "SELECT * FROM proposal_reports WHERE consultation_id = ? "
            + ("" if proposal_id is None else "AND proposal_id = ? ")
            + "ORDER BY reported_at, proposal_id, reporter_id",
            (consultation_id,) if proposal_id is None else (consultation_id, proposal_id))
        return [Report(r["proposal_id"], r["consultation_id"], r["reporter_id"], r["reason"],
                       datetime.fromisoformat(r["reported_at"])) for r in rows]

    def consultations_forgotten_at(self) -> list[tuple[Consultation, datetime | None]]:
        rows = self.db.query("SELECT * FROM consultations")
        return [(_consultation(r), _dt(r["participation_forgotten_at"])) for r in rows]

    def forget_participation(self, consultation_id: str, at: datetime) -> int:
        # The quota slot goes with the author: the unique index on (consultation, author,
        # slot) would refuse two authorless proposals in one slot.
        with self.db.tx() as tx:
            forgotten = tx.execute(
                "UPDATE proposals SET author_id = '', quota_slot = NULL "
                "WHERE consultation_id = ? AND author_id != ''", (consultation_id,)).rowcount
            tx.execute("DELETE FROM proposal_reports WHERE consultation_id = ?",
                       (consultation_id,))
            tx.execute("UPDATE consultations SET participation_forgotten_at = ? "
                       "WHERE consultation_id = ?", (at.isoformat(), consultation_id))
        return forgotten

    def add_poll(self, p: Poll) -> None:
        with self.db.tx() as tx:
            tx.execute("INSERT INTO polls (poll_id, consultation_id, proposal_id, rules, status, "
                       "rules_hash, opened_at, closed_at, published_at, results_visibility, "
                       "electorate, cross_channel, opens_at, closes_at, amendments) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (poll_id) DO NOTHING",
                       (p.poll_id, p.consultation_id, p.proposal_id,
                        rules_adapter.dump_json(p.rules).decode(), p.status, p.rules_hash,
                        _iso(p.opened_at), _iso(p.closed_at), _iso(p.published_at),
                        p.results_visibility, p.electorate, p.cross_channel, _iso(p.opens_at),
                        _iso(p.closes_at), dump_amendments(p.amendments)))

    def replace_poll(self, p: Poll, expected: Poll,
                     announce: Sequence[RawEnvelope] = ()) -> bool:
        # ``announce`` is not kept: the embedded bus writes the events to its outbox in
        # this very transaction.
        with self.db.tx() as tx:
            cursor = tx.execute(
                "UPDATE polls SET rules = ?, status = ?, rules_hash = ?, opened_at = ?, "
                "closed_at = ?, published_at = ?, results_visibility = ?, electorate = ?, "
                "cross_channel = ?, opens_at = ?, closes_at = ?, amendments = ?, version = ? "
                "WHERE poll_id = ? AND status = ? AND version = ?",
                (rules_adapter.dump_json(p.rules).decode(), p.status, p.rules_hash,
                 _iso(p.opened_at), _iso(p.closed_at), _iso(p.published_at),
                 p.results_visibility, p.electorate, p.cross_channel, _iso(p.opens_at),
                 _iso(p.closes_at),
                 dump_amendments(p.amendments), expected.next_version, p.poll_id,
                 expected.status, expected.version or 0))
            return cursor.rowcount == 1

    def agenda(self) -> list[tuple[Poll, list[RawEnvelope]]]:
        rows = self.db.query("SELECT * FROM polls WHERE (opens_at IS NOT NULL OR "
                             "closes_at IS NOT NULL) AND status IN ('draft', 'open') "
                             "ORDER BY poll_id")
        return [(_poll(r), []) for r in rows]

    def leave_agenda(self, poll_id: str) -> None:
        pass  # the agenda is a query on the polls' status

    def published(self, events: Sequence[RawEnvelope]) -> None:
        pass  # nothing kept (replace_poll)

    def mark_signed(self, poll_id: str, signed_at: datetime) -> None:
        with self.db.tx() as tx:
            tx.execute("UPDATE polls SET result_signed_at = ? "
                       "WHERE poll_id = ? AND result_signed_at IS NULL",
                       (signed_at.isoformat(), poll_id))

    def poll(self, poll_id: str) -> Poll | None:
        row = self.db.one("SELECT * FROM polls WHERE poll_id = ?", (poll_id,))
        return _poll(row) if row else None

    def polls(self, consultation_id: str) -> list[Poll]:
        rows = self.db.query("SELECT * FROM polls WHERE consultation_id = ? ORDER BY poll_id",
                             (consultation_id,))
        return [_poll(r) for r in rows]

    def ping(self) -> None:
        self.db.ping()


def _consultation(r: sqlite3.Row) -> Consultation:
    return Consultation(r["consultation_id"], r["title"], r["description"], r["created_by"],
                        datetime.fromisoformat(r["created_at"]),
                        organisers=tuple(json.loads(r["organisers"])), status=r["status"],
                        time_zone=r["time_zone"], steps=steps_adapter.validate_json(r["steps"]),
                        published_at=_dt(r["published_at"]))


def _proposal(r: sqlite3.Row) -> Proposal:
    moderation = Moderation(r["hidden_reason"], r["hidden_by"],
                            datetime.fromisoformat(r["hidden_at"])) if r["hidden"] else None
    return Proposal(r["proposal_id"], r["consultation_id"], r["title"], r["body"],
                    r["author_id"], datetime.fromisoformat(r["created_at"]),
                    category=r["category"], district=r["district"],
                    estimated_cost=r["estimated_cost"], status=r["status"],
                    rejection_reason=r["rejection_reason"],
                    status_changed_at=_dt(r["status_changed_at"]), moderation=moderation)


def _poll(r: sqlite3.Row) -> Poll:
    return Poll(r["poll_id"], r["consultation_id"], r["proposal_id"],
                rules_adapter.validate_json(r["rules"]), r["status"], r["rules_hash"],
                _dt(r["opened_at"]), _dt(r["closed_at"]), _dt(r["published_at"]),
                results_visibility=r["results_visibility"], electorate=r["electorate"],
                cross_channel=r["cross_channel"],
                result_signed_at=_dt(r["result_signed_at"]), opens_at=_dt(r["opens_at"]),
                closes_at=_dt(r["closes_at"]), amendments=load_amendments(r["amendments"]),
                version=r["version"])
