"""The census benchmark (loadtests/census.py) runs end to end on SQLite and reports each
step; its claims succeed only if the imported entries are found again."""

from __future__ import annotations

import json
import sys

import pytest

from loadtests import census

pytestmark = pytest.mark.unit


def test_the_benchmark_imports_and_claims(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["census", "--people", "300", "--claims", "20"])
    census.main()
    report = json.loads(capsys.readouterr().out)
    assert (report["people"], report["claims"]) == (300, 20)
    assert report["import_rows_per_s"] > 0 and report["claims_per_s"] > 0
