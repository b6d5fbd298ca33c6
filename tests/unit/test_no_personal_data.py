"""The vote and tally services never learn who voted (ARCHITECTURE.md D6; issue 9's
acceptance): no message they take or give, and no voting token, carries a person id, an
e-mail address, a phone number or a name. Their tables are checked on both stores by
tests/integration/test_no_personal_data.py."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from urne.contracts.envelope import Command, Event, Message
from urne.crypto.keys import SigningKey
from urne.crypto.tokens import TokenIssuer, agent_key

pytestmark = pytest.mark.unit

# What would say who someone is: identity's fields, and what a census or an agent's
# desk would add (issue 9).
PERSONAL = {"person_id", "person", "actor", "email", "e_mail", "phone", "phone_number",
            "name", "given_name", "family_name", "first_name", "last_name", "birth_date",
            "date_of_birth", "address", "client", "ip"}


def every(base: type) -> list[type[Message]]:
    found, stack = [], list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if getattr(cls, "TYPE", None):
            found.append(cls)
    return found


def field_names(schema: Any, defs: dict[str, Any], seen: frozenset[str] = frozenset()
                ) -> set[str]:
    """Every property name, however deep (through $ref, items, unions)."""
    names: set[str] = set()
    if isinstance(schema, list):
        for item in schema:
            names |= field_names(item, defs, seen)
    elif isinstance(schema, dict):
        ref = str(schema.get("$ref", "")).rpartition("/")[2]
        if ref and ref not in seen:
            names |= field_names(defs.get(ref, {}), defs, seen | {ref})
        for name, sub in schema.get("properties", {}).items():
            names.add(name)
            names |= field_names(sub, defs, seen)
        for key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties", "prefixItems"):
            names |= field_names(schema.get(key), defs, seen)
    return names


# Events are domain events: vote and tally hear every one of them.
REACHING_VOTE_AND_TALLY = sorted(
    [*every(Event), *(c for c in every(Command) if getattr(c, "OWNER", None) in ("vote", "tally"))],
    key=lambda c: c.TYPE)


def test_the_messages_are_found() -> None:
    types = {c.TYPE for c in REACHING_VOTE_AND_TALLY}
    assert {"ballot.cast.v2", "ballots.recorded.v1", "poll.opened.v1",
            "result.get.v1"} <= types


@pytest.mark.parametrize("message", REACHING_VOTE_AND_TALLY, ids=lambda c: c.TYPE)
def test_no_message_vote_or_tally_sees_names_a_person(message: type[Message]) -> None:
    schema = message.model_json_schema()
    assert field_names(schema, schema.get("$defs", {})) & PERSONAL == set()


def test_the_finder_does_see_a_person_where_there_is_one() -> None:
    """The check above could pass by finding nothing: identity's own messages show it
    would see one."""
    from urne.contracts.commands import SetRole

    schema = SetRole.model_json_schema()
    assert {"email", "person_id", "actor"} <= field_names(schema, schema.get("$defs", {}))


def test_a_voting_token_carries_a_pseudonym_and_no_person(identity_key: SigningKey) -> None:
    token, _ = TokenIssuer(identity_key).voting_token("pseudonym-1", "poll-1", "nord")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"sub", "poll", "district", "aud", "iss", "iat", "exp", "jti"}
    assert claims["sub"] == "pseudonym-1"
    # A desk ballot's: the agent by their agent key, never their person id.
    token, _ = TokenIssuer(identity_key).voting_token(
        "pseudonym-1", "poll-1", channel="desk", agent=agent_key("agent-person", "poll-1"))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) - {"sub", "poll", "aud", "iss", "iat", "exp", "jti"} == {"channel",
                                                                                 "agent"}
    assert "agent-person" not in str(claims)
