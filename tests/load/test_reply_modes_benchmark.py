"""The reply-modes benchmark (loadtests/reply_modes.py) drives each mode on the real
RabbitMQ, with the queue type each mode stands for, answers every message, and leaves
no virtual host behind; its figures are measured on purpose, never asserted."""

from __future__ import annotations

import json
import sys

import httpx
import pytest

from loadtests import reply_modes
from loadtests.system import GUEST, MANAGEMENT
from tests.support.servers import require_rabbitmq

pytestmark = pytest.mark.integration


def vhosts() -> set[str]:
    return {v["name"] for v in httpx.get(f"{MANAGEMENT}/vhosts", auth=GUEST).json()}


def test_each_mode_answers_every_message_on_its_kind_of_queue(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    require_rabbitmq()
    vhosts_before = vhosts()
    monkeypatch.setattr(sys, "argv", ["reply_modes", "--rate", "100", "--duration", "1",
                                      "--rounds", "1"])
    reply_modes.main()
    report = json.loads(capsys.readouterr().out)
    runs = {r["mode"]: r for r in report["runs"]}
    assert set(runs) == set(reply_modes.MODES)
    assert {mode: r["queue_type"] for mode, r in runs.items()} == {
        "reply": "classic", "confirm_quorum": "quorum", "confirm_classic": "classic"}
    for run in runs.values():
        assert run["messages"] > 50 and run["answered"] == run["messages"]
        assert run["failed"] == 0 and 0 < run["p50_ms"] <= run["p99_ms"]
        assert set(run["cpu_ms_per_message"]) == {"rabbitmq", "publisher", "consumer"}
    assert report["body_bytes"] > 500  # a real signed ballot, token inside
    assert vhosts() == vhosts_before
