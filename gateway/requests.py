"""Request bodies of the public API: strict (unknown fields refused), with the
field limits of ``urne.contracts.fields``, the same the services enforce."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from urne.contracts.fields import (
    PAPER_BATCH_MAX,
    Category,
    CrossChannel,
    Description,
    DeskCodeText,
    District,
    Electorate,
    EstimatedCost,
    Id,
    LoginCodeText,
    PaperSerial,
    PersonName,
    PhoneNumber,
    ProposalBody,
    Reason,
    ResultsVisibility,
    Title,
)
from urne.contracts.steps import DEFAULT_TIME_ZONE, Steps, TimeZone, UtcDateTime
from urne.counting import Choice
from urne.counting.rules import PollRules


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _one_of(*ways: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    """A body given one way of several, each a set of fields, exactly (JSON Schema
    ``oneOf``, each way excluding the others' fields); its fields are never null."""
    names = {name for way in ways for name in way}

    def schema(doc: dict[str, Any]) -> None:
        for name in names:
            prop = doc["properties"][name]
            prop.pop("default", None)
            options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
            if options:
                prop.update(options[0])
        doc["oneOf"] = [{"required": list(way),
                         "not": {"anyOf": [{"required": [n]} for n in sorted(names - set(way))]}}
                        for way in ways]
    return schema


def _given_one_of(body: BaseModel, *ways: tuple[str, ...]) -> bool:
    """Whether ``body`` was given exactly one of ``ways``, none of its fields null: the
    schema's ``_one_of``, held whoever ignores the schema."""
    given = {n for n in body.model_fields_set if n in {m for way in ways for m in way}}
    return any(given == set(way) for way in ways) and \
        all(getattr(body, name) is not None for name in given)


class CodeRequest(Body):
    """An e-mail address, or (for people without one) a mobile number in international
    (E.164) form, of a country the operator texts (URNE_SMS_COUNTRIES)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=_one_of(("email",), ("phone",)))

    email: EmailStr | None = None
    phone: PhoneNumber | None = None

    @model_validator(mode="after")
    def _one_address(self) -> CodeRequest:
        if not _given_one_of(self, ("email",), ("phone",)):
            raise ValueError("give either an e-mail address or a phone number (E.164)")
        return self


class CodeVerify(Body):
    """The code sent to an address or a number, with it; or the desk code printed on the
    card an agent gave, alone."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of(
        ("email", "code"), ("phone", "code"), ("desk_code",)))

    email: EmailStr | None = None
    phone: PhoneNumber | None = None
    code: LoginCodeText | None = None
    desk_code: DeskCodeText | None = None

    @model_validator(mode="after")
    def _one_way(self) -> CodeVerify:
        if not _given_one_of(self, ("email", "code"), ("phone", "code"), ("desk_code",)):
            raise ValueError("give an e-mail address or a phone number with its code, or a "
                             "desk code alone")
        return self


class PaperBallot(Body):
    serial: PaperSerial  # printed on the paper; the same serial twice is one ballot
    choice: Choice


class PaperBatch(Body):
    """Paper ballots an agent enters, each with its serial; ``district``: where they
    were cast, for rules with a budget per district."""

    district: District | None = None
    ballots: Annotated[list[PaperBallot], Field(min_length=1, max_length=PAPER_BATCH_MAX)]


class DeskRegistration(Body):
    """Someone without an e-mail address or a phone, at an agent's desk. Their district,
    if the agent checked it (their voting tokens carry it, as a declared one)."""

    district: District | None = None


class DistrictDeclare(Body):
    district: District


class ConsultationCreate(Body):
    title: Title
    description: Description = ""
    # An IANA name, for showing the steps' times; the times themselves are in UTC.
    time_zone: TimeZone = DEFAULT_TIME_ZONE
    steps: Steps = ()


class ConsultationUpdate(Body):
    """What to change; a field left out (or null) stays as it is. ``steps`` replaces
    the whole calendar."""

    title: Title | None = None
    description: Description | None = None
    time_zone: TimeZone | None = None
    steps: Steps | None = None


class RoleGrant(Body):
    email: EmailStr
    role: Literal["participant", "organiser", "moderator", "agent", "admin"]


class CensusClaimByName(Body):
    """Your names and birth date, as the organisers listed them."""

    family_name: PersonName
    given_name: PersonName
    birth_date: date


class CensusClaimByEmail(Body):
    """Nothing: your entry is found by the e-mail address you signed in with."""


# All three, or none: the schema says so, so a partial claim is refused at the edge.
CensusClaimBody = CensusClaimByName | CensusClaimByEmail


class OrganiserAdd(Body):
    # The person's id, which they read at GET /v1/me: e-mail addresses stay in identity.
    person_id: Id


class ProposalCreate(Body):
    title: Title
    body: ProposalBody = ""  # Markdown, stored as written; served with a sanitised body_html
    category: Category | None = None
    district: District | None = None
    estimated_cost: EstimatedCost | None = None  # whole currency units


class ReasonGiven(Body):
    """Why: a proposal rejected (public), hidden (its moderators'), reported (theirs)."""

    reason: Reason


class PollCreate(Body):
    proposal_id: Id | None = None
    rules: PollRules
    # When its results may be seen; frozen with the rules when the poll opens.
    results_visibility: ResultsVisibility = "after_close"
    # Who may get a voting token ("census": only holders of a claimed, eligible entry of
    # the consultation's census); frozen with the rules when the poll opens.
    electorate: Electorate = "open"
    # Whether a ballot cast in person (at a desk) is final: "in_person_final", or replaced
    # by a later one like any: "latest_wins"; frozen with the rules when the poll opens.
    cross_channel: CrossChannel = "latest_wins"
    # When it opens and closes by itself, in RFC 3339 with an offset (left out: by hand).
    opens_at: UtcDateTime | None = None
    closes_at: UtcDateTime | None = None


class PollUpdate(Body):
    rules: PollRules  # while the poll is a draft only
    results_visibility: ResultsVisibility | None = None  # left out or null: unchanged
    electorate: Electorate | None = None  # left out or null: unchanged
    cross_channel: CrossChannel | None = None  # left out or null: unchanged
    # Left out: unchanged; null: removed (opened or closed by hand then).
    opens_at: UtcDateTime | None = None
    closes_at: UtcDateTime | None = None

    def cleared(self) -> frozenset[Literal["opens_at", "closes_at"]]:
        """The schedule fields sent as null: to remove."""
        return frozenset(f for f in ("opens_at", "closes_at")
                         if f in self.model_fields_set and getattr(self, f) is None)


class PollExtension(Body):
    closes_at: UtcDateTime  # later than the current close time, itself still to come
    reason: Reason  # public: shown with the poll's amendments


class BallotCast(Body):
    # Tagged by ``method``, required: a client generated from the OpenAPI document gets
    # one typed ballot per voting method.
    choice: Choice
