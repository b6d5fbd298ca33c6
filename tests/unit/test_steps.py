"""A consultation's calendar as the contracts accept it: steps in order, in UTC, and an
IANA time zone (the gateway's request bodies use the very same types)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from urne.contracts.steps import STEP_KINDS, Step, Steps, TimeZone

pytestmark = pytest.mark.unit

steps = TypeAdapter(Steps)
zones = TypeAdapter(TimeZone)


def step(kind: str, start: int, end: int) -> dict[str, Any]:
    day = datetime(2030, 1, 1, tzinfo=UTC)
    return {"kind": kind, "starts_at": (day + timedelta(days=start)).isoformat(),
            "ends_at": (day + timedelta(days=end)).isoformat()}


def test_every_kind_in_order_back_to_back_or_with_gaps() -> None:
    calendar = [step(kind, 2 * i, 2 * i + 1 + (i % 2)) for i, kind in enumerate(STEP_KINDS)]
    assert [s.kind for s in steps.validate_python(calendar)] == list(STEP_KINDS)
    assert steps.validate_python([step("analysis", 0, 1), step("follow_up", 1, 9)])
    assert steps.validate_python([]) == ()


def test_instants_are_kept_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    s = Step(kind="vote", starts_at=datetime(2030, 1, 1, 9, tzinfo=tokyo),
             ends_at=datetime(2030, 1, 2, tzinfo=UTC))
    assert s.starts_at == datetime(2030, 1, 1, tzinfo=UTC) and s.starts_at.tzinfo is UTC
    assert s.model_dump(mode="json")["starts_at"] == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize(("calendar", "reason"), [
    ([step("vote", 1, 1)], "start before it ends"),
    ([step("vote", 2, 1)], "start before it ends"),
    ([{**step("vote", 0, 1), "starts_at": "2030-01-01T00:00:00"}], "timezone"),
    ([step("vote", 0, 3), step("results", 2, 4)], "starts before the vote step ends"),
    ([step("vote", 0, 1), step("proposals", 1, 2)], "proposals cannot follow vote"),
    ([step("vote", 0, 1), step("vote", 1, 2)], "vote cannot follow vote"),
    ([step("vote", 0, 1), {**step("results", 1, 2), "where": "town hall"}], "where"),
    ([step(k, i, i + 1) for i, k in enumerate([*STEP_KINDS, "follow_up"])], "at most 5"),
], ids=["empty", "backwards", "naive", "overlap", "out-of-order", "twice", "unknown-field",
        "too-many"])
def test_a_bad_calendar_says_why(calendar: list[dict[str, Any]], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        steps.validate_python(calendar)


@pytest.mark.parametrize("name", ["Europe/Paris", "UTC", "America/Argentina/Buenos_Aires",
                                  "Pacific/Noumea"])
def test_iana_time_zones_are_accepted(name: str) -> None:
    assert zones.validate_python(name) == name


@pytest.mark.parametrize("name", ["Europe", "europe/paris", "utc", "localtime", "Factory",
                                  "../../etc/passwd", "/etc/localtime", "", "Mars/Olympus"])
def test_anything_else_is_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        zones.validate_python(name)
