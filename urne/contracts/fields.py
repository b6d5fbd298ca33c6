"""Field types with their limits, declared once: the contracts and the gateway's
request bodies both use them, so the edge and the services cannot disagree."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from urne.counting.rules import MAX_SAFE_INTEGER, Identifier, whole_number

Id = Annotated[str, Field(min_length=1, max_length=64)]  # opaque (uuid4 hex in practice)
Title = Annotated[str, Field(min_length=1, max_length=300)]
Description = Annotated[str, Field(max_length=20_000)]
ProposalBody = Annotated[str, Field(max_length=50_000)]
LoginCodeText = Annotated[str, Field(min_length=1, max_length=32)]
# The serial printed on a paper ballot, as an agent enters it: letters, digits and
# ". _ -", starting with a letter or digit. Paper ballots are entered in batches of at
# most PAPER_BATCH_MAX.
PaperSerial = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
PAPER_BATCH_MAX = 500


def paper_serial(serial: str) -> str:
    """A serial as papers are told apart: "b7-1" is the paper "B7-1"."""
    return serial.upper()

# A desk code as a person types it from their card (services/identity/desk.py reads it).
DeskCodeText = Annotated[str, Field(min_length=1, max_length=64)]
# A family or given name, as a census list or a person writes it (identity keeps only a
# keyed hash of its normal form).
# At least one letter or digit, in any script: a name of punctuation alone is no name.
PersonName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"[^\W_]")]
# A client's IP address as text (identity reads anything else as "unknown client").
ClientAddress = Annotated[str, Field(min_length=1, max_length=64)]
# A phone number in E.164 form (+, country code, number: 15 digits at most). Only the
# form: identity checks the number is a mobile one of an allowed country.
PhoneNumber = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{5,14}$")]
VotingTokenText = Annotated[str, Field(min_length=1, max_length=4096)]
Tracker = Annotated[str, Field(min_length=1, max_length=64)]
BallotId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]  # uuid4 hex, named at the edge
# The "Idempotency-Key" header (IETF httpapi draft): printable ASCII, bounded. The
# gateway's header and the contract share these limits.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
IDEMPOTENCY_KEY_MAX = 128
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=IDEMPOTENCY_KEY_MAX,
                                      pattern=IDEMPOTENCY_KEY_PATTERN)]
PageLimit = Annotated[int, Field(ge=1, le=500)]
# A district's name: the shape the rules give district keys (``budgets``), so whatever a
# person declares can name a district of a poll, and never the result's "*" key.
District = Identifier
# When a poll's results may be seen (a setting of the poll beside its rules, frozen with
# them when it opens): ``after_close``, once signed after the close; ``embargoed``, signed
# at the close but shown only once an organiser publishes it; ``live``, running counts
# while the poll is open, then as ``after_close``.
ResultsVisibility = Literal["after_close", "embargoed", "live"]
# Who may get a voting token for a poll (a setting of the poll, frozen with its rules at
# the opening): ``open``, any signed-in person; ``census``, only people holding a
# claimed, eligible entry of the census of the poll's consultation.
Electorate = Literal["open", "census"]
# Whether a person who voted in person (at a desk) may vote online afterwards:
# ``latest_wins``, a later ballot replaces the earlier one whatever its channel;
# ``in_person_final``, a ballot cast at a desk is final (docs/api.md, "Agents' desks").
CrossChannel = Literal["latest_wins", "in_person_final"]
# A proposal's category ("mobility", "parks"): the organisers' vocabulary, free but
# shaped like every other identifier, so it can name a filter in a URL.
Category = Identifier
# Why a proposal is rejected (public), hidden (seen by its moderators) or reported.
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


# Whole currency units (the consultation's currency; no cents): what an organiser or a
# budget rule compares, never a float: a number with a fraction, a string or a boolean
# is refused.
EstimatedCost = Annotated[int, Field(strict=True, ge=0, le=MAX_SAFE_INTEGER),
                          BeforeValidator(whole_number)]
# A page of proposals, and what a search may look for (a substring of title or body).
ProposalPageLimit = Annotated[int, Field(ge=1, le=100)]
# A page of the public record: entries from a position (the record only grows, so a
# position is a stable cursor), at most this many at a time.
RecordStart = Annotated[int, Field(ge=0, le=2**40)]
RecordPageLimit = Annotated[int, Field(ge=1, le=10_000)]
SearchText = Annotated[str, Field(min_length=1, max_length=200)]
# Opaque to clients: where the previous page stopped (see urne.services.proposal.domain).
Cursor = Annotated[str, Field(min_length=1, max_length=200)]
