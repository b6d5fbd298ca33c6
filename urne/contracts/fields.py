"""Field types with their limits, declared once: the contracts and the gateway's
request bodies both use them, so the edge and the services cannot disagree."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from urne.counting.rules import Identifier

Id = Annotated[str, Field(min_length=1, max_length=64)]  # opaque (uuid4 hex in practice)
Title = Annotated[str, Field(min_length=1, max_length=300)]
Description = Annotated[str, Field(max_length=20_000)]
ProposalBody = Annotated[str, Field(max_length=50_000)]
LoginCodeText = Annotated[str, Field(min_length=1, max_length=32)]
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
