"""What every method's ballot check shares: the refusal, the envelope, id lists.

These checks run on the hot ballot path (the gateway, then the vote service, check
every ballot), so they read the plain JSON value directly, with plain ``type`` tests,
instead of building a pydantic model per ballot.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

# How refusals name each method's ballot.
_NAMES = {"yes_no_abstain": "a yes/no/abstain", "approval": "an approval",
          "budget": "a budget", "ranking": "a ranking",
          "majority_judgment": "a majority judgment"}


class InvalidBallot(ValueError):
    """The choice does not satisfy the poll's frozen rules."""


def shown(value: object, limit: int = 40) -> str:
    """A value from a ballot, for a message: repr'd, and short whatever was sent."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def body(choice: object, method: str, key: str, shape: str) -> Any:
    """The one value a ballot of ``method`` carries under ``key``; ``shape`` shows
    the ballot's format in the refusals.

    A ballot is a JSON object with that key and, optionally, ``method`` (which must
    then be the poll's): anything else is refused, so that nothing a voter sends is
    silently dropped.
    """
    if not isinstance(choice, Mapping):
        raise InvalidBallot(f"a ballot is a JSON object: {shape}")
    if "method" in choice:
        sent = choice["method"]
        if type(sent) is not str or sent != method:
            raise InvalidBallot(f"this poll is voted by {method}, not by {shown(sent)}")
    keys = set(choice) - {"method"}
    if keys != {key}:
        if "district" in keys:
            raise InvalidBallot("a ballot names no district: the voter's district comes "
                                "from their voting token")
        raise InvalidBallot(f"{_NAMES.get(method, method)} ballot is {shape}")
    return choice[key]


def id_list(value: object, known: Container[str], what: str, key: str) -> list[str]:
    """``value`` as a list of distinct known ids, or InvalidBallot."""
    if type(value) is not list:
        raise InvalidBallot(f"{key} must be a list of {what} ids")
    seen: set[str] = set()
    for item in value:
        if type(item) is not str:
            raise InvalidBallot(f"{key} must be a list of {what} ids, not {shown(item)}")
        if item not in known:
            raise InvalidBallot(f"unknown {what} {shown(item)}")
        if item in seen:
            raise InvalidBallot(f"{what} {shown(item)} is chosen more than once")
        seen.add(item)
    return value


def between(n: int, low: int, high: int | None, what: str) -> None:
    """Refuse ``n`` chosen ``what`` outside [low, high] (high None: no upper limit)."""
    if n < low or (high is not None and n > high):
        if high is None:
            limit = f"at least {low}"
        elif low == high:
            limit = f"exactly {low}"
        else:
            limit = f"between {low} and {high}"
        raise InvalidBallot(f"choose {limit} {what}, not {n}")
