"""The embedded bus: commands to their owner, their events in an outbox of the owner's
own SQLite file (same transaction as its writes), and ``recover()`` delivering what a
crash left there."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from urne.contracts import wrap
from urne.contracts.commands import Actor, OpenPoll
from urne.contracts.events import PollClosed, PollOpened
from urne.contracts.replies import Health
from urne.counting import YesNoAbstainRules, rules_hash
from urne.messaging.embedded_bus import EmbeddedBus, Member
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import Conflict
from urne.storage.sqlite import SqliteDb

pytestmark = pytest.mark.unit

ORGANISER = Actor(person_id="org", role="organiser")

RULES = YesNoAbstainRules(method="yes_no_abstain", question="Plant trees on the square?")
AT = datetime(2026, 5, 1, tzinfo=UTC)


def opened(poll_id: str) -> PollOpened:
    return PollOpened(poll_id=poll_id, consultation_id="c1", rules=RULES,
                      rules_hash=rules_hash(RULES), opened_at=AT)


@dataclass
class Subscriber:
    """Records the polls it heard of; can be told to fail, as a store that is down."""

    name: str
    heard: list[tuple[str, str]] = field(default_factory=list)
    failing: bool = False

    def on_opened(self, event: PollOpened, ctx: Context) -> None:
        if self.failing:
            raise RuntimeError(f"{self.name} store is down")
        self.heard.append(("opened", event.poll_id))

    def on_closed(self, event: PollClosed, ctx: Context) -> None:
        self.heard.append(("closed", event.poll_id))

    def core(self) -> ServiceCore:
        return ServiceCore(self.name, commands={},
                           subscriptions={PollOpened: self.on_opened, PollClosed: self.on_closed})


def proposal_core(db: SqliteDb) -> ServiceCore:
    """Opens a poll: writes a row, emits poll.opened; refuses "p-bad" after writing."""

    def open_poll(cmd: OpenPoll, ctx: Context) -> Health:
        with db.tx() as tx:
            tx.execute("INSERT INTO opened VALUES (?)", (cmd.poll_id,))
        ctx.emit(opened(cmd.poll_id))
        if cmd.poll_id == "p-bad":
            raise Conflict("refused after writing")
        if cmd.poll_id == "p-counted":  # a refusal that is itself counted (a wrong code)
            raise Conflict("refused, the attempt counted", keep_writes=True)
        return Health(service="proposal", ready=True)

    return ServiceCore("proposal", commands={OpenPoll: open_poll})


def make_bus(path: Path, vote: Subscriber, tally: Subscriber) -> EmbeddedBus:
    proposal = SqliteDb(path / "proposal.db")
    with proposal.tx() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS opened (poll_id TEXT)")
    return EmbeddedBus({"proposal": Member(proposal_core(proposal), proposal),
                        "vote": Member(vote.core(), SqliteDb(path / "vote.db")),
                        "tally": Member(tally.core(), SqliteDb(path / "tally.db"))})


def outbox_rows(path: Path) -> list[str]:
    """Events waiting in the outbox of the proposal service's own file."""
    with sqlite3.connect(path / "proposal.db") as db:
        return [json.loads(r[0])["payload"]["poll_id"]
                for r in db.execute("SELECT envelope FROM outbox ORDER BY seq")]


def opened_rows(path: Path) -> list[str]:
    with sqlite3.connect(path / "proposal.db") as db:
        return [r[0] for r in db.execute("SELECT poll_id FROM opened")]


def test_a_command_reaches_its_owner_and_its_events_every_subscriber(tmp_path: Path) -> None:
    vote, tally = Subscriber("vote"), Subscriber("tally")
    bus = make_bus(tmp_path, vote, tally)
    reply = bus.call("proposal", wrap(OpenPoll(poll_id="p1", actor=ORGANISER), "test"))
    assert reply["ok"] is True
    assert vote.heard == tally.heard == [("opened", "p1")]
    assert outbox_rows(tmp_path) == []  # delivered everywhere, so removed


def test_a_failed_delivery_stays_in_the_outbox_until_the_next_start(tmp_path: Path) -> None:
    vote, tally = Subscriber("vote"), Subscriber("tally", failing=True)
    bus = make_bus(tmp_path, vote, tally)
    assert bus.call("proposal", wrap(OpenPoll(poll_id="p1", actor=ORGANISER), "test"))["ok"] is True
    assert vote.heard == [("opened", "p1")] and tally.heard == []
    assert outbox_rows(tmp_path) == ["p1"]
    bus.close()

    # Next start: the store is back. Every subscriber gets the event again (they are
    # idempotent), and the outbox is empty afterwards.
    vote, tally = Subscriber("vote"), Subscriber("tally")
    restarted = make_bus(tmp_path, vote, tally)
    assert restarted.recover() == 1
    assert vote.heard == tally.heard == [("opened", "p1")]
    assert outbox_rows(tmp_path) == []
    assert restarted.recover() == 0


def test_recover_delivers_events_a_crash_left_in_the_outbox_in_order(tmp_path: Path) -> None:
    # A crash after the events were written to the outbox and before delivery: write
    # them as the bus does, then start a new bus on the same file.
    make_bus(tmp_path, Subscriber("vote"), Subscriber("tally")).close()
    # (as the bus writes them: in the producer's own file)
    left = [wrap(opened("p1"), "proposal"), wrap(PollClosed(poll_id="p1", closed_at=AT),
                                                 "proposal"), wrap(opened("p2"), "proposal")]
    with sqlite3.connect(tmp_path / "proposal.db") as db:
        db.executemany("INSERT INTO outbox (envelope) VALUES (?)",
                       [(json.dumps(env),) for env in left])
    vote, tally = Subscriber("vote"), Subscriber("tally")
    bus = make_bus(tmp_path, vote, tally)
    assert vote.heard == []  # nothing is delivered before recover()
    assert bus.recover() == 3
    expected = [("opened", "p1"), ("closed", "p1"), ("opened", "p2")]
    assert vote.heard == tally.heard == expected
    assert outbox_rows(tmp_path) == []


def test_a_subscriber_still_failing_at_recovery_keeps_the_event(tmp_path: Path) -> None:
    make_bus(tmp_path, Subscriber("vote"), Subscriber("tally", failing=True)).call(
        "proposal", wrap(OpenPoll(poll_id="p1", actor=ORGANISER), "test"))
    bus = make_bus(tmp_path, Subscriber("vote"), Subscriber("tally", failing=True))
    assert bus.recover() == 1
    assert outbox_rows(tmp_path) == ["p1"]  # not dropped: tried again at the next start


def test_a_refused_command_commits_neither_its_writes_nor_its_events(tmp_path: Path) -> None:
    vote, tally = Subscriber("vote"), Subscriber("tally")
    bus = make_bus(tmp_path, vote, tally)
    reply = bus.call("proposal", wrap(OpenPoll(poll_id="p-bad", actor=ORGANISER), "test"))
    assert reply["error"]["code"] == "conflict"
    assert opened_rows(tmp_path) == [] and outbox_rows(tmp_path) == []
    assert vote.heard == tally.heard == []


def test_a_refusal_that_is_counted_keeps_its_writes_but_no_event(tmp_path: Path) -> None:
    """Identity counts a wrong sign-in code before refusing it: that write must stay."""
    vote, tally = Subscriber("vote"), Subscriber("tally")
    bus = make_bus(tmp_path, vote, tally)
    reply = bus.call("proposal", wrap(OpenPoll(poll_id="p-counted", actor=ORGANISER), "test"))
    assert (reply["ok"], reply["error"]["code"]) == (False, "conflict")
    assert opened_rows(tmp_path) == ["p-counted"]
    assert outbox_rows(tmp_path) == [] and vote.heard == tally.heard == []


def test_a_write_never_commits_without_its_events(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The events are written in the transaction of the command's writes: if writing
    them fails (a crash, a full disk), the command's write is rolled back with them."""
    bus = make_bus(tmp_path, Subscriber("vote"), Subscriber("tally"))

    def disk_full(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(bus, "_persist", disk_full)
    with pytest.raises(OSError):
        bus.call("proposal", wrap(OpenPoll(poll_id="p1", actor=ORGANISER), "test"))
    assert opened_rows(tmp_path) == [] and outbox_rows(tmp_path) == []
