"""The log of what organisers and admins did (issue 10, "accountable operators").

Every command a person with a staff role (organiser, moderator, agent, admin) has a
service carry out is appended, once it succeeded, to that service's own log (the
proposal service: consultations, proposals, polls; identity: roles): when, who, with
which role, which command, and on what (the command's fields, less its actor). The
code appends and reads, by month; it never updates an entry, and deletes one only when
its retention is over (``URNE_ACTION_LOG_DAYS``: Cassandra's time-to-live, the service's
purge on SQLite). An admin reads both services' logs through ``GET /v1/admin/actions``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cassandra.cluster import Session

from urne.contracts.commands import ListIdentityActions, ListProposalActions
from urne.contracts.envelope import Envelope, Message, Query, logged_fields
from urne.contracts.replies import ActionLogView, ActionView
from urne.contracts.roles import ACCOUNTABLE, ADMIN
from urne.platform.errors import Forbidden
from urne.storage.cassandra import guarded, utc
from urne.storage.sqlite import SqliteDb

# Characters of a command's fields kept in its entry: enough for the largest batch of
# paper ballots' serials (500 of at most 64 characters), which an audit of a desk needs.
SUBJECT_LIMIT = 40_000


@dataclass(frozen=True)
class Action:
    at: datetime
    id: str  # the command's envelope id: a retried command may be logged twice, once each
    actor: str  # person id
    role: str
    action: str  # the command's type
    subject: str  # the command's fields, less its actor, as JSON

    @property
    def month(self) -> str:
        return self.at.strftime("%Y-%m")


def staff_action(env: Envelope, cmd: Message, at: datetime) -> Action | None:
    """The entry for ``cmd``, or None when it is not a staff member's doing (no actor, a
    participant, or a query, which changes nothing)."""
    actor = getattr(cmd, "actor", None)
    if actor is None or isinstance(cmd, Query) or actor.role not in ACCOUNTABLE:
        return None
    # Personal data a command carries (a census's names and birth dates) is not
    # logged: the entry says how many there were.
    subject = json.dumps(logged_fields(cmd), sort_keys=True,
                         ensure_ascii=False)[:SUBJECT_LIMIT]
    return Action(at.astimezone(UTC), str(env.id), actor.person_id, actor.role, env.type,
                  subject)


# How long an entry is kept when no setting says otherwise (URNE_ACTION_LOG_DAYS): a
# year, the span the CNIL advises for logs of who did what.
KEEP = timedelta(days=365)


class ActionLog(Protocol):
    def append(self, a: Action, keep: timedelta = KEEP) -> None:
        """Append ``a``, to be kept ``keep`` (a store with time-to-live forgets it
        then)."""
        ...
    def month(self, month: str, limit: int,
              after: tuple[datetime, str] | None = None) -> list[Action]:
        """The month's entries by (at, id), at most ``limit``, after ``after`` if given."""
        ...
    def purge(self, before: datetime) -> int:
        """Delete the entries made before ``before``, where no time-to-live does; how
        many."""
        ...


def recorder(log: ActionLog, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
             keep: timedelta = KEEP) -> Callable[[Envelope, Message], None]:
    """What a ``ServiceCore`` calls after each command that succeeded."""
    def record(env: Envelope, cmd: Message) -> None:
        action = staff_action(env, cmd, clock())
        if action is not None:
            log.append(action, keep)
    return record


def action_log_view(service: str, log: ActionLog,
                    query: ListIdentityActions | ListProposalActions) -> ActionLogView:
    """The reply to a service's ``*.actions.list.v1``: admins only."""
    if query.actor.role != ADMIN:
        raise Forbidden("only admins read the action log", code="forbidden")
    after = (query.after_at, query.after_id) \
        if query.after_at is not None and query.after_id is not None else None
    return ActionLogView(service=service, month=query.month,
                         actions=[view(a) for a in log.month(query.month, query.limit, after)])


def view(action: Action) -> ActionView:
    try:
        subject = json.loads(action.subject)
    except ValueError:  # cut at SUBJECT_LIMIT
        subject = {"truncated": action.subject}
    return ActionView(at=action.at, id=action.id, actor=action.actor, role=action.role,
                      action=action.action, subject=subject)


class SqliteActionLog:
    def __init__(self, db: SqliteDb):
        self.db = db

    def append(self, a: Action, keep: timedelta = KEEP) -> None:
        with self.db.tx() as c:
            c.execute("INSERT OR IGNORE INTO action_log (month, at, id, actor, role, action, "
                      "subject) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (a.month, a.at.isoformat(), a.id, a.actor, a.role, a.action, a.subject))

    def month(self, month: str, limit: int,
              after: tuple[datetime, str] | None = None) -> list[Action]:
        # ``at`` is stored as ISO text in UTC, which sorts as the times do.
        at, last = (after[0].astimezone(UTC).isoformat(), after[1]) if after else ("", "")
        rows = self.db.query("SELECT * FROM action_log WHERE month = ? AND (at > ? OR "
                             "(at = ? AND id > ?)) ORDER BY at, id LIMIT ?",
                             (month, at, at, last, limit))
        return [Action(datetime.fromisoformat(r["at"]), r["id"], r["actor"], r["role"],
                       r["action"], r["subject"]) for r in rows]

    def purge(self, before: datetime) -> int:
        with self.db.tx() as c:
            return int(c.execute("DELETE FROM action_log WHERE at < ?",
                                 (before.astimezone(UTC).isoformat(),)).rowcount)


class CassandraActionLog:
    def __init__(self, session: Session, keyspace: str):
        self.s = session
        self.table = f"{keyspace}.action_log"
        self._append = session.prepare(
            f"INSERT INTO {keyspace}.action_log (month, at, id, actor, role, action, subject) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?")
        self._append.is_idempotent = True  # the same entry, by its key
        self._month = session.prepare(
            f"SELECT * FROM {keyspace}.action_log WHERE month = ? LIMIT ?")
        self._month.is_idempotent = True
        self._month_after = session.prepare(
            f"SELECT * FROM {keyspace}.action_log WHERE month = ? AND (at, id) > (?, ?) "
            "LIMIT ?")
        self._month_after.is_idempotent = True

    @guarded
    def append(self, a: Action, keep: timedelta = KEEP) -> None:
        # The time-to-live counts from the entry's own time, so a retried append forgets
        # it at the same moment.
        ttl = int((a.at + keep - datetime.now(UTC)).total_seconds())
        if ttl <= 0:
            return  # already past its retention
        self.s.execute(self._append, (a.month, a.at, a.id, a.actor, a.role, a.action,
                                      a.subject, ttl))

    @guarded
    def month(self, month: str, limit: int,
              after: tuple[datetime, str] | None = None) -> list[Action]:
        rows = self.s.execute(self._month_after, (month, after[0], after[1], limit)) \
            if after else self.s.execute(self._month, (month, limit))
        return [Action(utc(r.at), r.id, r.actor, r.role, r.action, r.subject) for r in rows]

    def purge(self, before: datetime) -> int:
        return 0  # each entry's time-to-live (entries from before it stay: see privacy.md)
