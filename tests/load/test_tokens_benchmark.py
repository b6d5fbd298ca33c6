"""The token-check benchmark (loadtests/tokens.py) runs and reports both checks."""

from __future__ import annotations

import json
import sys

import pytest

from loadtests import tokens

pytestmark = pytest.mark.unit


def test_the_benchmark_reports_both_checks(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["tokens", "--tokens", "20"])
    tokens.main()
    report = json.loads(capsys.readouterr().out)
    assert set(report["token_check_us"]) == {"pyjwt_openssl", "urne_jws_libsodium"}
    assert all(v > 0 for v in report["ed25519_us"].values())
