"""A consultation's calendar: its steps, in UTC, and the time zone it is shown in.

Shared by the gateway's request bodies and the proposal contracts, so the edge and the
service refuse the same calendars. Instants are stored and compared in UTC only; the
time zone is for display (a front end shows "closes at 18:00, Europe/Paris").
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime
from itertools import pairwise
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

StepKind = Literal["proposals", "analysis", "vote", "results", "follow_up"]
# The order a consultation goes through them; a consultation may skip some.
STEP_KINDS: tuple[StepKind, ...] = get_args(StepKind)


def _iso_8601(value: object) -> object:
    # The schema says "string, date-time": pydantic alone would also read a number, or
    # a string of digits, as Unix time.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
        except ValueError:
            pass
    raise ValueError("expected an ISO 8601 date and time with its offset, "
                     "such as 2030-03-01T09:00:00+01:00")


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# An instant with its offset (a time without one is refused: whose 18:00?), kept in UTC.
UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_8601), AfterValidator(_to_utc)]


class Step(BaseModel):
    """One step of a consultation: from ``starts_at`` (included) to ``ends_at`` (excluded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: StepKind
    starts_at: UtcDateTime
    ends_at: UtcDateTime

    @model_validator(mode="after")
    def _starts_before_it_ends(self) -> Step:
        if self.starts_at >= self.ends_at:
            raise ValueError(f"the {self.kind} step must start before it ends")
        return self

    def covers(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


def _in_order(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    for before, after in pairwise(steps):
        if STEP_KINDS.index(after.kind) <= STEP_KINDS.index(before.kind):
            raise ValueError(f"steps go {' → '.join(STEP_KINDS)}, each at most once: "
                             f"{after.kind} cannot follow {before.kind}")
        if after.starts_at < before.ends_at:
            raise ValueError(f"the {after.kind} step starts before the {before.kind} step ends")
    return steps


# Ordered in time and in STEP_KINDS, without overlap (one step may start when the
# previous one ends); gaps between steps are allowed.
Steps = Annotated[tuple[Step, ...], Field(max_length=len(STEP_KINDS)),
                  AfterValidator(_in_order)]
# How stores write a calendar (JSON text) and read it back: every step checked again,
# the order not (it was, when written).
steps_adapter: TypeAdapter[tuple[Step, ...]] = TypeAdapter(tuple[Step, ...])


@functools.cache
def known_time_zones() -> frozenset[str]:
    """IANA names this machine knows (its zoneinfo database, or the tzdata package).
    "localtime" and "Factory" name no place."""
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "Factory"}


def _known_zone(name: str) -> str:
    if name not in known_time_zones():
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as "
                         "'Europe/Paris' or 'UTC'")
    return name


TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_zone)]
DEFAULT_TIME_ZONE = "UTC"
