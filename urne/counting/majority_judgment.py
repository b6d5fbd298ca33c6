"""Majority judgment (Balinski and Laraki): every ballot grades every option; options
are ranked by their majority values.

Grades are indexed best first (0 is the best). With n ballots, an option's grades
sorted best first are x[0] <= ... <= x[n-1] (by index), and its **majority grade** is
the lower median, x[n // 2]: the middle grade when n is odd, the worse of the two
middle grades when n is even.

Its **majority value** is the sequence of majority grades met while removing the
majority grade, one ballot at a time, until none is left. Options are ranked by
majority value, compared lexicographically (the first difference decides; the better
grade ranks higher). Two options tie only when their majority values are identical,
which happens exactly when their grade counts are identical.

The majority value has n terms, too many to build for a million ballots; but the
removed positions go outwards from the middle, alternately to the worse and to the
better side (x[c], x[c-1], x[c+1], x[c-2], ... for even n, x[c], x[c+1], x[c-1], ...
for odd n, c = n // 2), and each side is a run of equal grades between two grade
boundaries. So a majority value is a head and at most 2 x grades runs of
(worse, better) pairs, compared run by run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from urne.counting import seats
from urne.counting.ballots import InvalidBallot, body, shown
from urne.counting.derived import derived
from urne.counting.rules import MajorityJudgmentRules
from urne.counting.tally import Tally, TallyError, Vector

SHAPE = '{"grades": {option id: grade}}, every option graded'


@dataclass(frozen=True)
class _Plan:
    ids: tuple[str, ...]
    index: dict[str, int]
    grade_index: dict[str, int]

    @classmethod
    def of(cls, rules: MajorityJudgmentRules) -> _Plan:
        ids = tuple(o.id for o in rules.options)
        return cls(ids, {option: i for i, option in enumerate(ids)},
                   {grade: g for g, grade in enumerate(rules.grades)})


def _plan(rules: MajorityJudgmentRules) -> _Plan:
    return derived(rules, "majority_judgment", _Plan.of)


def validate(rules: MajorityJudgmentRules, choice: Mapping[str, Any]) -> dict[str, Any]:
    plan = _plan(rules)
    grades = body(choice, rules.method, "grades", SHAPE)
    if type(grades) is not dict:
        raise InvalidBallot("grades must be an object from option id to grade")
    for option, grade in grades.items():
        if type(option) is not str or option not in plan.index:
            raise InvalidBallot(f"unknown option {shown(option)}")
        if type(grade) is not str or grade not in plan.grade_index:
            raise InvalidBallot(f"{shown(grade)} is not a grade of this poll; the grades are "
                                f"{', '.join(rules.grades)}")
    if len(grades) != len(plan.ids):
        missing = [option for option in plan.ids if option not in grades]
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InvalidBallot(f"grade every option; not graded: {', '.join(missing[:5])}{more}")
    return {"grades": {option: grades[option] for option in plan.ids}}


def majority_grade(counts: Sequence[int], n: int) -> int:
    """The index of the lower median grade of n > 0 grades counted per grade."""
    return _grade_at(counts, n // 2)


def _grade_at(counts: Sequence[int], position: int) -> int:
    seen = 0
    for g, k in enumerate(counts):
        seen += k
        if position < seen:
            return g
    raise TallyError("grade counts do not add up to the ballots")


def _runs(counts: Sequence[int], low: int, high: int, descending: bool) -> list[list[int]]:
    """[grade, length] runs of the sorted positions low..high-1, in ascending position
    order, or descending (from high-1 down to low)."""
    runs: list[list[int]] = []
    start = 0
    for g, k in enumerate(counts):
        length = min(high, start + k) - max(low, start)
        if length > 0:
            runs.append([g, length])
        start += k
    return runs[::-1] if descending else runs


@dataclass(frozen=True)
class MajorityValue:
    """A majority value, compressed: the ``head`` (odd n: the first majority grade,
    alone) and ``pairs``, runs of (worse-side grade, better-side grade, length)."""

    head: int | None
    pairs: tuple[tuple[int, int, int], ...]

    @classmethod
    def of(cls, counts: Sequence[int], n: int) -> MajorityValue:
        c = n // 2
        if n % 2:
            head: int | None = _grade_at(counts, c)
            worse, better = _runs(counts, c + 1, n, False), _runs(counts, 0, c, True)
        else:
            head = None
            worse, better = _runs(counts, c, n, False), _runs(counts, 0, c, True)
        pairs: list[tuple[int, int, int]] = []
        while worse and better:  # both sides hold the same number of positions
            step = min(worse[0][1], better[0][1])
            pairs.append((worse[0][0], better[0][0], step))
            for side in (worse, better):
                side[0][1] -= step
                if side[0][1] == 0:
                    side.pop(0)
        return cls(head, tuple(pairs))


def compare(a: MajorityValue, b: MajorityValue) -> int:
    """< 0 when ``a`` ranks above ``b``, > 0 below, 0 when identical (same n)."""
    if a.head != b.head:
        assert a.head is not None and b.head is not None
        return a.head - b.head
    i = j = 0
    left = a.pairs[0][2] if a.pairs else 0
    right = b.pairs[0][2] if b.pairs else 0
    while i < len(a.pairs) and j < len(b.pairs):
        (wa, ba, _), (wb, bb, _) = a.pairs[i], b.pairs[j]
        if wa != wb:  # in each pair, the worse side's grade comes first
            return wa - wb
        if ba != bb:
            return ba - bb
        step = min(left, right)
        left, right = left - step, right - step
        if left == 0:
            i += 1
            left = a.pairs[i][2] if i < len(a.pairs) else 0
        if right == 0:
            j += 1
            right = b.pairs[j][2] if j < len(b.pairs) else 0
    return 0


class MajorityJudgmentTally(Tally[MajorityJudgmentRules]):
    method = "majority_judgment"

    def _layout(self) -> tuple[Vector, ...]:
        return (Vector("grades", _plan(self.rules).ids, len(self.rules.grades)),)

    def _apply(self, choice: Mapping[str, Any], sign: int) -> None:
        plan, width = _plan(self.rules), len(self.rules.grades)
        graded = choice["grades"]
        positions = [plan.index[option] * width + plan.grade_index[grade]
                     for option, grade in graded.items()]
        if len(positions) != len(plan.ids):
            raise InvalidBallot("a majority judgment ballot grades every option")
        counts = self.vectors["grades"]
        for i in positions:
            counts[i] += sign

    def _result(self) -> dict[str, Any]:
        ids, width, n = _plan(self.rules).ids, len(self.rules.grades), self.ballots
        flat = self.vectors["grades"]
        grades = {option: flat[i * width:(i + 1) * width] for i, option in enumerate(ids)}
        if any(sum(counts) != n for counts in grades.values()):
            raise TallyError("every ballot grades every option, but the grade counts of "
                             "some option do not add up to the ballots")
        if n == 0:
            return {"method": self.method, "ballots": 0, "grades": grades,
                    "majority_grade": {}, **seats.seats_result(ids, [], self.rules.seats, 0)}
        values = {option: MajorityValue.of(counts, n) for option, counts in grades.items()}

        def by_value(a: str, b: str) -> int:
            return compare(values[a], values[b])

        ranking = sorted(ids, key=cmp_to_key(by_value))  # stable: ties in rules order
        groups = seats.tie_groups(ranking, lambda a, b: grades[a] == grades[b])
        return {"method": self.method, "ballots": n, "grades": grades,
                "majority_grade": {option: self.rules.grades[majority_grade(counts, n)]
                                   for option, counts in grades.items()},
                **seats.seats_result(ranking, groups, self.rules.seats, n)}
