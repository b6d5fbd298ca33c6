"""``urne dlq list|replay`` against a real RabbitMQ: records are listed and left in
place, in order; a parked event goes back, unchanged, to its exchange and routing key,
and leaves the queue; a ballot, an unreadable record and a counted ballot a tally worker
refused from its stream stay (the last had aborted the replay, unroutable)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pika
import pytest
from typer.testing import CliRunner

from urne.messaging.ballot_stream import DEAD_LETTERS, declare_topology
from urne.runtime.cli import app

pytestmark = [pytest.mark.integration, pytest.mark.distributed]



@pytest.fixture
def amqp_url(vhost_url: str) -> str:
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url))
    declare_topology(connection.channel(), 1)  # the dead-letter exchange and queue
    connection.close()
    return vhost_url


def _park(channel: Any, record: Any) -> None:
    body = record if isinstance(record, bytes) else json.dumps(record).encode()
    channel.basic_publish(DEAD_LETTERS, "", body, pika.BasicProperties(delivery_mode=2))


def test_list_and_replay(amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URNE_AMQP_URL", amqp_url)
    event = {"id": str(uuid.uuid4()), "type": "ballot_box.sealed.v2", "producer": "vote",
             "occurred_at": "2026-11-30T00:00:00Z", "trace_id": "t",
             "payload": {"poll_id": "p1", "ballots_recorded": 3}}
    ballot = {"id": str(uuid.uuid4()), "type": "ballot.cast.v2", "producer": "gateway",
              "payload": {"poll_id": "p1"}}
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    # Where the event first went: a consumer's queue bound to the producer's exchange.
    channel.exchange_declare("vote.events", "topic", durable=True)
    channel.queue_declare("tally-seals", durable=True)
    channel.queue_bind("tally-seals", "vote.events", "ballot_box.sealed.v2")
    _park(channel, {"service": "tally", "error_type": "RuntimeError", "error": "a bug",
                    "attempts": 5, "envelope": event})
    _park(channel, {"service": "vote", "error_type": "RuntimeError", "error": "a bug",
                    "attempts": 1, "envelope": ballot})
    _park(channel, b"not json")
    counted = {"id": str(uuid.uuid4()), "type": "ballots.recorded.v1", "producer": "vote",
               "payload": {"poll_id": "p1"}}
    _park(channel, {"service": "tally", "error_type": "Refused", "error": "unsigned",
                    "attempts": 1, "envelope": counted, "stream": "urne.counting.shard-001",
                    "offset": 7})

    cli = CliRunner()
    for _ in range(2):  # listing leaves everything where it was, in order
        listed = cli.invoke(app, ["dlq", "list"])
        assert listed.exit_code == 0, listed.output
        rows = [json.loads(line) for line in listed.output.splitlines()]
        assert [(r["type"], r["replayable"]) for r in rows] == [
            ("ballot_box.sealed.v2", True), ("ballot.cast.v2", False), (None, False),
            ("ballots.recorded.v1", False)]
        assert rows[0]["id"] == event["id"] and rows[0]["service"] == "tally"

    other = cli.invoke(app, ["dlq", "replay", "--id", str(uuid.uuid4())])
    assert other.exit_code == 0 and "0 replayed, 4 left" in other.output, other.output
    replayed = cli.invoke(app, ["dlq", "replay"])
    assert replayed.exit_code == 0, replayed.output
    assert "1 replayed, 3 left" in replayed.output

    method, _, body = channel.basic_get("tally-seals", auto_ack=True)
    assert method is not None and json.loads(body) == event  # unchanged, same id
    assert channel.basic_get("tally-seals", auto_ack=True)[0] is None  # once
    rows = [json.loads(line) for line in cli.invoke(app, ["dlq", "list"]).output.splitlines()]
    assert [r["type"] for r in rows] == ["ballot.cast.v2", None, "ballots.recorded.v1"]
    connection.close()
