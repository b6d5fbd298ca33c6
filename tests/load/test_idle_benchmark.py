"""The at-rest benchmark (loadtests/idle.py) starts the embedded profile, reads its CPU
over a second and stops it; the figures are measured on purpose, never asserted."""

from __future__ import annotations

import json
import sys

import pytest

from loadtests import idle

pytestmark = pytest.mark.unit


def test_the_benchmark_reports_each_process(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["idle", "--profile", "embedded", "--seconds", "1",
                                      "--settle", "0"])
    idle.main()
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "embedded"
    assert "up" in report["cpu_ms_per_s_by_process"]  # the one process of the profile
    assert report["cpu_ms_per_s_urne"] == report["cpu_ms_per_s_by_process"]["up"]
