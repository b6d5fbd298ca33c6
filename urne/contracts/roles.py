"""Roles, as identity gives them to persons and access tokens carry them.

A role says what a person may do anywhere; what they may do to one consultation is
the proposal service's to decide (whether they are one of its organisers).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

PARTICIPANT = "participant"
ORGANISER = "organiser"
# Above the organisers: may act on every consultation and add organisers to one.
ADMIN = "admin"
# Who may create a consultation (and so become its first organiser).
STAFF = frozenset({ORGANISER, ADMIN})

# Free text rather than a closed list: a role identity adds later (an agent's, say)
# must not make the gateway's commands invalid; the services compare it to the names above.
Role = Annotated[str, Field(min_length=1, max_length=32)]
