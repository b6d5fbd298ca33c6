"""Poll rules: the public, frozen description of how a poll is voted and counted.

Rules are a tagged union on ``method``; each voting method adds one model here, one
ballot format in ``choices.py`` and one module of its own (validation and tally).
Once a poll opens, its rules are frozen and their hash goes into the signed result,
so a rules model keeps exactly what the organiser sent: defaults that depend on other
fields (Borda points, for instance) are computed when counting, never written back.

Sequences are tuples, not lists: a frozen model must not be mutable through one of
its fields (the counting caches what it derives from a rules object). They are
written as JSON arrays all the same. (``budgets`` stays a dict, as JSON objects are:
treat it as read-only.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from urne.record.canonical import canonical_json, sha256_hex

# The largest integer every JSON implementation reads exactly (RFC 8785 refuses more):
# costs and budgets are bounded by it so that the rules can always be hashed.
MAX_SAFE_INTEGER = 2**53 - 1
# Points per rank are bounded so that a total (points x ballots) stays exact in JSON
# for up to a billion ballots.
MAX_POINTS = 1_000_000
MAX_OPTIONS = 500

# Option ids are usually proposal ids; the same shape names districts, which makes
# "*" (the key of a single, poll-wide budget in a result) impossible as a district.
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=IDENTIFIER)]


def whole_number(value: Any) -> Any:
    """A JSON number with no fraction (``2.0``) as the integer it is: JSON Schema's
    ``integer``, which the API's schema promises, admits it, and the rules are hashed
    from the parsed model, so ``2.0`` and ``2`` give the same hash. Anything else (a
    string, a boolean, ``2.5``) goes on to the strict check, which refuses it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# bool is an int in Python, and pydantic's lax mode reads "3" as 3: rules are public
# and hashed, so a number in them must be written as a JSON number.
_Whole = BeforeValidator(whole_number)
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_SAFE_INTEGER), _Whole]
PositiveCount = Annotated[int, Field(strict=True, ge=1, le=MAX_SAFE_INTEGER), _Whole]
Question = Annotated[str, Field(min_length=1, max_length=2000)]
Seats = Annotated[int, Field(strict=True, ge=1, le=MAX_OPTIONS), _Whole]
Points = Annotated[int, Field(strict=True, ge=0, le=MAX_POINTS), _Whole]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Rules(_Frozen):
    """The rules of one voting method, a member of the ``PollRules`` union."""


class Option(_Frozen):
    """One thing to vote on: a proposal, a candidate, an article."""

    id: Identifier
    title: str = Field(min_length=1, max_length=300)


class Project(Option):
    """An option of a participatory budget: what it costs and, with per-district
    budgets, the district it belongs to (and is voted in)."""

    cost: PositiveCount  # whole currency units
    district: Identifier | None = None


def _unique(ids: Iterable[str], what: str) -> None:
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise ValueError(f"{what} ids must be unique; repeated: {', '.join(repeated)}")


def _seats_fit(seats: int, options: int) -> None:
    if seats > options:
        raise ValueError(f"seats ({seats}) cannot exceed the number of options ({options})")


Options = Annotated[tuple[Option, ...], Field(min_length=1, max_length=MAX_OPTIONS)]


class YesNoAbstainRules(_Rules):
    """One question, answered yes, no or abstain; adopted when yes outnumbers no."""

    method: Literal["yes_no_abstain"]  # required: it is the union's discriminator
    question: Question


class ApprovalRules(_Rules):
    """Approve between ``min_choices`` and ``max_choices`` options; the ``seats``
    options with the most approvals win."""

    method: Literal["approval"]
    question: Question
    options: Options
    min_choices: Count = 0
    max_choices: PositiveCount
    seats: Seats = 1

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalRules:
        _unique((o.id for o in self.options), "option")
        if self.min_choices > self.max_choices:
            raise ValueError(f"min_choices ({self.min_choices}) cannot exceed "
                             f"max_choices ({self.max_choices})")
        if self.max_choices > len(self.options):
            raise ValueError(f"max_choices ({self.max_choices}) cannot exceed the number of "
                             f"options ({len(self.options)})")
        _seats_fit(self.seats, len(self.options))
        return self


class BudgetRules(_Rules):
    """A participatory budget: pick projects whose total cost fits the voter's budget.

    Either one ``budget`` for the whole poll, or ``budgets`` per district (each voter
    votes in the district their voting token names, for that district's projects).
    """

    method: Literal["budget"]
    question: Question
    projects: Annotated[tuple[Project, ...], Field(min_length=1, max_length=MAX_OPTIONS)]
    budget: PositiveCount | None = None
    budgets: dict[Identifier, PositiveCount] | None = None
    min_projects: Count = 0
    max_projects: PositiveCount | None = None  # None: no limit but the budget
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "EUR"

    @model_validator(mode="after")
    def _consistent(self) -> BudgetRules:
        _unique((p.id for p in self.projects), "project")
        if (self.budget is None) == (self.budgets is None):
            raise ValueError("give exactly one of budget (one for the whole poll) and "
                             "budgets (one per district)")
        if self.budgets is not None and not self.budgets:
            raise ValueError("budgets must name at least one district")
        if self.max_projects is not None and self.min_projects > self.max_projects:
            raise ValueError(f"min_projects ({self.min_projects}) cannot exceed "
                             f"max_projects ({self.max_projects})")
        if self.budgets is None:
            stray = [p.id for p in self.projects if p.district is not None]
            if stray:
                raise ValueError("with a single budget, projects have no district; "
                                 f"these have one: {', '.join(stray)}")
        else:
            unknown = [p.id for p in self.projects if p.district not in self.budgets]
            if unknown:
                raise ValueError("with budgets per district, every project names one of "
                                 f"those districts; these do not: {', '.join(unknown)}")
        for district, budget in self.district_budgets().items():
            self._votable(district, budget)
        return self

    def _votable(self, district: str | None, budget: int) -> None:
        """Every project can be chosen and every voter can cast a valid ballot: an
        organiser's slip here would otherwise only show once voting has begun."""
        where = "" if district is None else f" of district {district}"
        mine = [p for p in self.projects if p.district == district]
        if not mine:
            raise ValueError(f"district {district} has a budget but no project")
        too_dear = [p.id for p in mine if p.cost > budget]
        if too_dear:
            raise ValueError(f"these projects cost more than the budget{where} ({budget}), "
                             f"so no ballot could choose them: {', '.join(too_dear)}")
        if self.min_projects > len(mine):
            raise ValueError(f"min_projects ({self.min_projects}) exceeds the number of "
                             f"projects{where} ({len(mine)})")
        cheapest = sum(sorted(p.cost for p in mine)[: self.min_projects])
        if cheapest > budget:
            raise ValueError(f"the {self.min_projects} cheapest projects{where} cost "
                             f"{cheapest}, more than the budget ({budget}): no ballot "
                             "could be valid")

    @property
    def per_district(self) -> bool:
        return self.budgets is not None

    def district_budgets(self) -> dict[str | None, int]:
        """District -> its budget; the single budget is the district ``None``."""
        if self.budgets is not None:
            return {district: budget for district, budget in self.budgets.items()}
        assert self.budget is not None
        return {None: self.budget}


class RankingRules(_Rules):
    """Rank up to ``max_ranks`` options; rank r earns ``points[r - 1]`` (Borda when
    ``points`` is None: max_ranks for the first, down to 1 for the last rank)."""

    method: Literal["ranking"]
    question: Question
    options: Options
    max_ranks: PositiveCount
    points: tuple[Points, ...] | None = None
    seats: Seats = 1

    @model_validator(mode="after")
    def _consistent(self) -> RankingRules:
        _unique((o.id for o in self.options), "option")
        if self.max_ranks > len(self.options):
            raise ValueError(f"max_ranks ({self.max_ranks}) cannot exceed the number of "
                             f"options ({len(self.options)})")
        if self.points is not None:
            if len(self.points) != self.max_ranks:
                raise ValueError(f"points must give one value per rank: {self.max_ranks} "
                                 f"values, not {len(self.points)}")
            if self.points[0] <= 0:
                raise ValueError("the first rank must earn more than 0 points")
            if any(b > a for a, b in zip(self.points, self.points[1:], strict=False)):
                raise ValueError("points must not increase from one rank to the next")
        _seats_fit(self.seats, len(self.options))
        return self

    def rank_points(self) -> tuple[int, ...]:
        """The points of ranks 1..max_ranks, Borda's when the organiser gave none."""
        if self.points is not None:
            return self.points
        return tuple(range(self.max_ranks, 0, -1))


Grade = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"\S")]


class MajorityJudgmentRules(_Rules):
    """Grade every option; options are ranked by their majority grade (Balinski and
    Laraki's majority judgment, ties broken by their majority values)."""

    method: Literal["majority_judgment"]
    question: Question
    options: Options
    grades: Annotated[tuple[Grade, ...], Field(min_length=2, max_length=10)]  # best first
    seats: Seats = 1

    @model_validator(mode="after")
    def _consistent(self) -> MajorityJudgmentRules:
        _unique((o.id for o in self.options), "option")
        repeated = sorted(g for g, n in Counter(self.grades).items() if n > 1)
        if repeated:
            raise ValueError(f"grades must be distinct; repeated: {', '.join(repeated)}")
        _seats_fit(self.seats, len(self.options))
        return self


PollRules = Annotated[
    YesNoAbstainRules | ApprovalRules | BudgetRules | RankingRules | MajorityJudgmentRules,
    Field(discriminator="method"),
]
rules_adapter: TypeAdapter[PollRules] = TypeAdapter(PollRules)

def rules_hash(rules: PollRules) -> str:
    """SHA-256 of the canonical JSON of the rules, as published in the record."""
    return sha256_hex(canonical_json(rules.model_dump(mode="json")))
