"""Tallies: counts that grow by a ballot, shrink by a replaced one, merge across
shards and checkpoint as JSON.

Every method's tally is a few vectors of integers (per option, per grade, per
district) that a ballot adds to. That makes a tally a sum: ``remove`` is the exact
inverse of ``add``, ``merge`` adds partial tallies in any order and grouping, and the
result depends only on the multiset of counted ballots, never on the order in which
shards saw them. A partial tally may hold negative counts for a while (a shard that
removed a replaced ballot another partial added); only ``result`` insists that every
count is whole.

The base class keeps the vectors and does what is common (merge, state, restore,
the negative check); each method says how a ballot adds to its vectors (``_apply``)
and how the vectors read as a result (``_result``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

from urne.counting.ballots import InvalidBallot, shown
from urne.counting.derived import derived
from urne.counting.rules import rules_hash

R = TypeVar("R")


class TallyError(ValueError):
    """A tally cannot be what it claims: other rules, a malformed state, a negative
    count (a ballot removed that was never added)."""


@dataclass(frozen=True)
class Vector:
    """One named vector of a tally: ``width`` integers per label, in label order.
    In a state, it is an object from label to an integer (width 1) or to a list of
    ``width`` integers."""

    name: str
    labels: tuple[str, ...]
    width: int = 1


class Tally(ABC, Generic[R]):
    """The count of the ballots added (minus those removed) under one poll's rules."""

    method: ClassVar[str]

    def __init__(self, rules: R) -> None:
        self.rules = rules
        self.ballots = 0
        self.vectors: dict[str, list[int]] = {
            v.name: [0] * (len(v.labels) * v.width) for v in self._layout()}

    @abstractmethod
    def _layout(self) -> tuple[Vector, ...]:
        """The vectors this method counts in, for these rules."""

    @abstractmethod
    def _apply(self, choice: Mapping[str, Any], sign: int) -> None:
        """Add ``sign`` times the ballot to the vectors. Look everything up before
        changing anything, so that a refused ballot leaves the tally untouched."""

    @abstractmethod
    def _result(self) -> dict[str, Any]:
        """The published tally, from whole (non-negative) counts."""

    def add(self, choice: Mapping[str, Any]) -> None:
        """Count one validated, normalised choice (as ``validate_choice`` returns it)."""
        self._counted(choice, 1)

    def remove(self, choice: Mapping[str, Any]) -> None:
        """Uncount a choice added before (the ballot a revote replaces)."""
        self._counted(choice, -1)

    def _counted(self, choice: Mapping[str, Any], sign: int) -> None:
        try:
            self._apply(choice, sign)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            # The tally trusts validated ballots and checks no more than its lookups
            # need, but an auditor's recount of a tampered record must fail clearly.
            raise InvalidBallot(f"not a valid {self.method} ballot: {shown(choice, 80)}"
                                ) from exc
        self.ballots += sign

    def merge(self, other: Tally[Any]) -> None:
        """Add another partial tally of the same rules into this one."""
        if type(other) is not type(self) or other.rules != self.rules:
            raise TallyError("only tallies of the same method and rules merge")
        for name, counts in self.vectors.items():
            for i, n in enumerate(other.vectors[name]):
                counts[i] += n
        self.ballots += other.ballots

    def state(self) -> dict[str, Any]:
        """A JSON checkpoint of this tally, from which ``from_state`` rebuilds it.
        Deterministic: the same counts give the same state, key for key."""
        body: dict[str, Any] = {"method": self.method,
                                "rules_hash": _hash(self.rules),
                                "ballots": self.ballots}
        for v in self._layout():
            counts, w = self.vectors[v.name], v.width
            body[v.name] = (dict(zip(v.labels, counts, strict=True)) if w == 1 else
                            {label: counts[i * w:(i + 1) * w] for i, label in enumerate(v.labels)})
        return body

    @classmethod
    def from_state(cls, rules: R, state: Mapping[str, Any]) -> Self:
        """The tally a ``state()`` was taken from, counted under these ``rules``."""
        tally = cls(rules)
        layout = tally._layout()
        if not isinstance(state, Mapping) or set(state) != {
                "method", "rules_hash", "ballots", *(v.name for v in layout)}:
            raise TallyError(f"not the state of a {cls.method} tally")
        if state["method"] != cls.method:
            raise TallyError(f"a {shown(state['method'])} state, not a {cls.method} one")
        if state["rules_hash"] != _hash(rules):
            raise TallyError("this state was counted under other rules")
        tally.ballots = _whole(state["ballots"])
        for v in layout:
            given = state[v.name]
            if not isinstance(given, Mapping) or set(given) != set(v.labels):
                raise TallyError(f"{v.name}: not one entry per {', '.join(v.labels)}")
            counts = tally.vectors[v.name]
            for i, label in enumerate(v.labels):
                if v.width == 1:
                    counts[i] = _whole(given[label])
                else:
                    row = given[label]
                    if type(row) is not list or len(row) != v.width:
                        raise TallyError(f"{v.name}.{label}: not a list of {v.width} counts")
                    counts[i * v.width:(i + 1) * v.width] = [_whole(n) for n in row]
        return tally

    def result(self) -> dict[str, Any]:
        """The published tally (the ``tally`` of a signed result)."""
        if self.ballots < 0 or any(n < 0 for n in self._all_counts()):
            raise TallyError("a count is negative: a ballot was removed that was never added")
        return self._result()

    def _all_counts(self) -> Iterator[int]:
        for counts in self.vectors.values():
            yield from counts


def id_positions(index: Mapping[str, int], ids: object) -> list[int]:
    """The positions of the ids of a counted choice, which must be a list of distinct
    known ids: counting trusts validated ballots, but a string is iterable and a
    repeated id would count twice, so those two are refused (as InvalidBallot, by
    ``add``) rather than miscounted."""
    if type(ids) is not list:
        raise TypeError("not a list of ids")
    found = [index[i] for i in ids]
    if len(set(found)) != len(found):
        raise KeyError("an id is repeated")
    return found


def _hash(rules: Any) -> str:
    """The rules hash, once per rules object (a checkpoint is taken often)."""
    return derived(rules, "rules_hash", rules_hash)


def _whole(value: object) -> int:
    if type(value) is not int:
        raise TallyError(f"a count must be an integer, not {shown(value)}")
    return value
