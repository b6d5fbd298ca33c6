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
# Roles an admin may grant (`PUT /v1/admin/roles`): moderators and agents are named
# now so they can be granted; what they may do comes with the issues that use them.
MODERATOR = "moderator"
AGENT = "agent"
GRANTABLE = (PARTICIPANT, ORGANISER, MODERATOR, AGENT, ADMIN)
# Who may create a consultation (and so become its first organiser).
STAFF = frozenset({ORGANISER, ADMIN})
# Whose commands go to the action log (urne/storage/action_log.py).
ACCOUNTABLE = frozenset({ORGANISER, MODERATOR, AGENT, ADMIN})

# Free text rather than a closed list: a role identity adds later (an agent's, say)
# must not make the gateway's commands invalid; the services compare it to the names above.
Role = Annotated[str, Field(min_length=1, max_length=32)]
