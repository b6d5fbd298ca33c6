"""People an agent registers at a desk: the desk code (desk.py) and the identity core's
desk channel (register, a new card, sign in once)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.unit.helpers import Clock, deliver, ok, refused, service_db
from tests.unit.test_identity import CapturingSender
from urne.contracts.commands import (
    Actor,
    GetPerson,
    IssueDeskCode,
    IssuePaperVotingTokens,
    ListIdentityActions,
    PurgeExpired,
    RegisterAtDesk,
    RequestLoginCode,
    VerifyDeskCode,
    VerifyLoginCode,
)
from urne.contracts.events import PollClosed, PollOpened
from urne.contracts.fields import PAPER_BATCH_MAX
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import SigningKey
from urne.crypto.tokens import TokenIssuer, TokenVerifier, agent_key
from urne.services.identity import desk, domain, limits
from urne.services.identity.adapters.sqlite_store import SqliteIdentityStore
from urne.services.identity.domain import Person
from urne.services.identity.handlers import IdentityHandlers
from urne.storage.cassandra import StoreUnavailable

pytestmark = pytest.mark.unit

AGENT = Actor(person_id="agent-1", role="agent")
ADMIN = Actor(person_id="admin-1", role="admin")
KIOSK_NEIGHBOUR = "203.0.113.9"


# --- the code --------------------------------------------------------------------------

def test_a_desk_code_is_80_random_bits_in_groups_of_four() -> None:
    codes = {desk.new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set("".join(groups)) <= set(desk.ALPHABET)
        assert desk.normalise(code) == code
    assert len(desk.ALPHABET) ** desk.LENGTH == 2 ** 80


@pytest.mark.parametrize(("typed", "meant"), [
    ("7kq2 m9xd 4rtb h0we", "7KQ2-M9XD-4RTB-H0WE"),   # lower case, spaces
    ("7KQ2M9XD4RTBH0WE", "7KQ2-M9XD-4RTB-H0WE"),      # no hyphens
    ("7KQ2-M9XD-4RTB-HOWE", "7KQ2-M9XD-4RTB-H0WE"),   # O for 0
    ("1Q2L-I9XD-4RTB-H0WE", "1Q21-19XD-4RTB-H0WE"),   # I and L for 1
])
def test_a_desk_code_is_read_as_people_write_it(typed: str, meant: str) -> None:
    assert desk.normalise(typed) == meant


@pytest.mark.parametrize("typed", ["", "7KQ2-M9XD-4RTB", "7KQ2-M9XD-4RTB-H0WE-X",
                                   "7KQ2-M9XD-4RTB-H0WU", "7KQ2-M9XD-4RTB-H0W!"])
def test_what_cannot_be_a_desk_code(typed: str) -> None:
    assert desk.normalise(typed) is None


# --- the identity core -----------------------------------------------------------------

# Access tokens of the actors, as sign-in gives them (identity checks them itself).
_ISSUER: list[TokenIssuer] = []


def as_(actor: Actor) -> dict:
    """The ``actor`` and ``access_token`` fields of a desk command sent by ``actor``."""
    return {"actor": actor,
            "access_token": _ISSUER[-1].access_token(actor.person_id, actor.role)[0]}


class Desk:
    def __init__(self, tmp_path: Path, identity_key: SigningKey, clock: Clock):
        self.store = SqliteIdentityStore(service_db(tmp_path / "identity.db", "identity"))
        _ISSUER.append(TokenIssuer(identity_key))
        # The agent and the admin, as identity stores them (their roles are read there).
        for who in (AGENT, ADMIN):
            self.store.add_person(Person(who.person_id, f"{who.person_id}@town.example",
                                         who.role, clock()))
        self.mail = CapturingSender()
        self.handlers = IdentityHandlers(
            store=self.store, sender=self.mail, tokens=TokenIssuer(identity_key),
            secret="test-secret", code_secret="test-code-secret", organisers=frozenset(),
            clock=clock)
        self.core = self.handlers.core()
        self.verifier = TokenVerifier(identity_key.public)

    def register(self, person_id: str = "p-desk-1", district: str | None = None,
                 actor: Actor = AGENT) -> dict:
        return ok(self.core, RegisterAtDesk(**as_(actor), person_id=person_id,
                                            district=district))[0]

    def sign_in(self, code: str, client: str | None = None) -> dict:
        return ok(self.core, VerifyDeskCode(code=code, client=client))[0]

    def open(self, poll_id: str) -> None:
        rules = YesNoAbstainRules(method="yes_no_abstain", question="?")
        assert deliver(self.core, PollOpened(poll_id=poll_id, consultation_id="c1",
                                             rules=rules, rules_hash=rules_hash(rules),
                                             opened_at=datetime.now(UTC))) == []

    def close(self, poll_id: str) -> None:
        assert deliver(self.core, PollClosed(poll_id=poll_id,
                                             closed_at=datetime.now(UTC))) == []


@pytest.fixture
def at_desk(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Desk:
    return Desk(tmp_path, identity_key, clock)


def test_an_agent_registers_someone_who_signs_in_once_with_the_card(
        at_desk: Desk, clock: Clock) -> None:
    card = at_desk.register(district="nord")
    assert card["person_id"] == "p-desk-1"
    assert desk.normalise(card["code"]) == card["code"]
    assert card["expires_at"] == (clock() + desk.DESK_CODE_TTL).isoformat().replace(
        "+00:00", "Z")
    person = ok(at_desk.core, GetPerson(person_id="p-desk-1"))[0]
    assert (person["email"], person["phone"], person["role"], person["district"]) == (
        None, None, "participant", "nord")
    # Only a keyed hash is stored: the card's code is nowhere in the database.
    raw = (at_desk.store.db.path).read_bytes()
    assert card["code"].encode() not in raw and card["code"].replace("-", "").encode() \
        not in raw

    # Typed from the card, however written, it signs in once.
    signed_in = at_desk.sign_in(card["code"].lower().replace("-", " "))
    assert signed_in["person_id"] == "p-desk-1" and signed_in["role"] == "participant"
    assert at_desk.verifier.access(signed_in["access_token"]).person_id == "p-desk-1"
    again = refused(at_desk.core, VerifyDeskCode(code=card["code"]))
    assert (again["status"], again["code"]) == (401, "code_invalid")


def test_a_store_fault_during_a_card_sign_in_leaves_the_card_for_the_retry(
        at_desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store fails as the sign-in notes the month (503, retry later): the card is
    not spent, so the retry signs in, once; a card that could be used only once, and
    not given again by an agent, is not lost to a passing fault."""
    card = at_desk.register()
    real = at_desk.store.mark_seen

    def away(*args: object) -> None:
        raise StoreUnavailable("the store did not answer")

    monkeypatch.setattr(at_desk.store, "mark_seen", away)
    problem = refused(at_desk.core, VerifyDeskCode(code=card["code"]))
    assert (problem["status"], problem["code"]) == (503, "store_unavailable")
    assert not at_desk.store.desk_card_used("p-desk-1")
    monkeypatch.setattr(at_desk.store, "mark_seen", real)
    assert at_desk.sign_in(card["code"])["person_id"] == "p-desk-1"
    assert refused(at_desk.core, VerifyDeskCode(code=card["code"]))["code"] == "code_invalid"


def test_a_new_card_voids_the_previous_one(at_desk: Desk) -> None:
    first = at_desk.register()
    second = ok(at_desk.core, IssueDeskCode(**as_(AGENT), person_id="p-desk-1"))[0]
    assert second["code"] != first["code"]
    assert refused(at_desk.core, VerifyDeskCode(code=first["code"]))["code"] == "code_invalid"
    assert at_desk.sign_in(second["code"])["person_id"] == "p-desk-1"


def test_once_a_card_signed_in_a_new_one_is_an_admins_to_give(at_desk: Desk) -> None:
    card = at_desk.register()
    at_desk.sign_in(card["code"])
    for cmd in (IssueDeskCode(**as_(AGENT), person_id="p-desk-1"),
                RegisterAtDesk(**as_(AGENT), person_id="p-desk-1")):
        problem = refused(at_desk.core, cmd)
        assert (problem["status"], problem["code"]) == (403, "desk_card_used")
    new = ok(at_desk.core, IssueDeskCode(**as_(ADMIN), person_id="p-desk-1"))[0]
    assert at_desk.sign_in(new["code"])["person_id"] == "p-desk-1"


def test_the_same_registration_again_makes_no_second_person(at_desk: Desk) -> None:
    first = at_desk.register(district="nord")
    retried = at_desk.register(district="nord")  # the answer was lost: sent again
    assert retried["person_id"] == first["person_id"] and retried["code"] != first["code"]
    assert at_desk.sign_in(retried["code"])["person_id"] == first["person_id"]
    assert refused(at_desk.core, VerifyDeskCode(code=first["code"]))["code"] == "code_invalid"


def test_an_expired_card_does_not_sign_in(at_desk: Desk, clock: Clock) -> None:
    card = at_desk.register()
    clock.advance(seconds=desk.DESK_CODE_TTL.total_seconds())
    assert refused(at_desk.core, VerifyDeskCode(code=card["code"]))["code"] == "code_invalid"
    # The same card a second before its end still works.
    other = at_desk.register(person_id="p-desk-2")
    clock.advance(seconds=desk.DESK_CODE_TTL.total_seconds() - 1)
    assert at_desk.sign_in(other["code"])["person_id"] == "p-desk-2"


def test_only_agents_and_admins_register(at_desk: Desk) -> None:
    for role in ("participant", "organiser", "moderator"):
        problem = refused(at_desk.core, RegisterAtDesk(
            **as_(Actor(person_id="x", role=role)), person_id=f"p-{role}"))
        assert (problem["status"], problem["code"]) == (403, "forbidden"), role
        assert at_desk.store.person(f"p-{role}") is None
    assert at_desk.register(person_id="p-admin", actor=ADMIN)["person_id"] == "p-admin"


def test_an_agent_never_gets_a_way_into_an_e_mail_account(at_desk: Desk) -> None:
    ok(at_desk.core, RequestLoginCode(email="ada@example.org"))
    ada = ok(at_desk.core, VerifyLoginCode(email="ada@example.org",
                                           code=at_desk.mail.sent[-1][1]))[0]["person_id"]
    for cmd in (IssueDeskCode(**as_(AGENT), person_id=ada),
                RegisterAtDesk(**as_(AGENT), person_id=ada)):  # naming her id
        problem = refused(at_desk.core, cmd)
        assert (problem["status"], problem["code"]) == (403, "not_registered_at_desk")
    assert refused(at_desk.core, IssueDeskCode(**as_(AGENT), person_id="nobody"))["code"] \
        == "person_not_found"


def test_wrong_desk_codes_count_against_the_client(at_desk: Desk) -> None:
    at_desk.register()
    for _ in range(limits.FAILURES_FROM_CLIENT.most):
        problem = refused(at_desk.core, VerifyDeskCode(code=desk.new_code(),
                                                       client=KIOSK_NEIGHBOUR))
        assert problem["code"] == "code_invalid"
    problem = refused(at_desk.core, VerifyDeskCode(code="not a code", client=KIOSK_NEIGHBOUR))
    assert (problem["status"], problem["code"]) == (429, "too_many_attempts")


def test_every_desk_action_is_in_the_action_log_with_the_agent_and_no_code(
        at_desk: Desk, clock: Clock) -> None:
    card = at_desk.register(district="nord")
    ok(at_desk.core, IssueDeskCode(**as_(AGENT), person_id=card["person_id"]))
    month = clock().strftime("%Y-%m")
    log = ok(at_desk.core, ListIdentityActions(actor=ADMIN, month=month))[0]["actions"]
    # Both at the same (test clock's) time: in any order.
    assert sorted((a["action"], a["actor"], a["role"], a["subject"]) for a in log) == [
        ("desk.code.issue.v1", "agent-1", "agent", {"person_id": "p-desk-1"}),
        ("desk.person.register.v1", "agent-1", "agent",
         {"person_id": "p-desk-1", "district": "nord"})]
    assert card["code"] not in str(log)


def test_the_purge_forgets_expired_desk_codes_not_the_people(at_desk: Desk,
                                                             clock: Clock) -> None:
    expired = at_desk.register(person_id="p-old")
    clock.advance(seconds=desk.DESK_CODE_TTL.total_seconds())
    current = at_desk.register(person_id="p-new")
    assert ok(at_desk.core, PurgeExpired())[0]["removed"]["desk_codes"] == 1
    row = at_desk.store.db.one("SELECT desk_code_hash FROM persons WHERE person_id = 'p-old'")
    assert row["desk_code_hash"] is None
    assert at_desk.store.person("p-old") is not None
    assert refused(at_desk.core, VerifyDeskCode(code=expired["code"]))["code"] == "code_invalid"
    assert at_desk.sign_in(current["code"])["person_id"] == "p-new"


# --- paper ballots' voting tokens ------------------------------------------------------

def paper_tokens(at_desk: Desk, serials: list[str], actor: Actor = AGENT,
                 district: str | None = None) -> dict:
    return ok(at_desk.core, IssuePaperVotingTokens(**as_(actor), poll_id="p1",
                                                   serials=serials, district=district))[0]


def test_paper_ballots_get_tokens_keyed_by_their_serials(at_desk: Desk, clock: Clock) -> None:
    at_desk.open("p1")
    first = paper_tokens(at_desk, ["A-1", "A-2"], district="nord")["voting_tokens"]
    claims = [at_desk.verifier.voting(t) for t in first]
    assert [(c.poll_id, c.channel, c.district) for c in claims] == [("p1", "paper", "nord")] * 2
    # Entered by this agent (by an admin, the admin's name): the reconciliation's.
    assert {c.agent for c in claims} == {agent_key("agent-1", "p1")} != \
        {at_desk.verifier.voting(t).agent
         for t in paper_tokens(at_desk, ["A-3"], actor=ADMIN)["voting_tokens"]}
    assert claims[0].voter_key != claims[1].voter_key
    # The same paper (its serial in any case) is the same voter, in a later batch too;
    # never a person's voter key, nor the same key in another poll.
    again = at_desk.verifier.voting(paper_tokens(at_desk, ["a-1"])["voting_tokens"][0])
    assert again.voter_key == claims[0].voter_key
    assert again.voter_key == domain.pseudonym("test-secret", "paper:A-1", "p1")
    assert again.voter_key != domain.pseudonym("test-secret", "A-1", "p1")


def test_paper_tokens_need_an_agent_an_open_poll_and_distinct_serials(at_desk: Desk) -> None:
    refusal = refused(at_desk.core, IssuePaperVotingTokens(**as_(AGENT), poll_id="p1",
                                                           serials=["A-1"]))
    assert (refusal["status"], refusal["code"]) == (404, "poll_not_found")
    at_desk.open("p1")
    for actor, serials, status, code in (
            (Actor(person_id="x", role="participant"), ["A-1"], 403, "forbidden"),
            (Actor(person_id="x", role="organiser"), ["A-1"], 403, "forbidden"),
            (AGENT, ["A-1", "B-2", "a-1"], 422, "paper_serial_twice")):
        problem = refused(at_desk.core, IssuePaperVotingTokens(**as_(actor), poll_id="p1",
                                                               serials=serials))
        assert (problem["status"], problem["code"]) == (status, code)
    assert len(paper_tokens(at_desk, ["A-1"], actor=ADMIN)["voting_tokens"]) == 1
    at_desk.close("p1")
    problem = refused(at_desk.core, IssuePaperVotingTokens(**as_(AGENT), poll_id="p1",
                                                           serials=["A-3"]))
    assert (problem["status"], problem["code"]) == (409, "poll_not_open")


@pytest.mark.parametrize("serial", ["", "-A1", "A 1", "A/1", "é1", "A" * 65])
def test_a_serial_is_letters_digits_and_a_few_signs(serial: str) -> None:
    with pytest.raises(ValidationError):
        IssuePaperVotingTokens(**as_(AGENT), poll_id="p1", serials=[serial])


def test_identity_takes_no_agent_on_the_gateways_word(at_desk: Desk) -> None:
    at_desk.open("p1")
    citizen = _ISSUER[-1].access_token("citizen-1", "participant")[0]
    forged = [
        # An actor that says "admin", with a participant's token.
        IssuePaperVotingTokens(actor=ADMIN, access_token=citizen, poll_id="p1",
                               serials=["F-1"]),
        # A token that is no token.
        RegisterAtDesk(actor=AGENT, access_token="not-a-token", person_id="p-f"),
    ]
    for cmd in forged:
        assert refused(at_desk.core, cmd)["status"] in (401, 403)
    # The agent's own token, but the agent is one no more: their role as stored now.
    agent = at_desk.store.person(AGENT.person_id)
    at_desk.store.save_role(replace(agent, role="participant"))
    problem = refused(at_desk.core, IssuePaperVotingTokens(**as_(AGENT), poll_id="p1",
                                                           serials=["F-2"]))
    assert (problem["status"], problem["code"]) == (403, "forbidden")
    assert at_desk.store.person("p-f") is None


def test_no_paper_ballots_in_a_census_poll(at_desk: Desk) -> None:
    rules = YesNoAbstainRules(method="yes_no_abstain", question="?")
    assert deliver(at_desk.core, PollOpened(poll_id="p2", consultation_id="c1", rules=rules,
                                            rules_hash=rules_hash(rules), electorate="census",
                                            opened_at=datetime.now(UTC))) == []
    problem = refused(at_desk.core, IssuePaperVotingTokens(**as_(AGENT), poll_id="p2",
                                                           serials=["C-1"]))
    assert (problem["status"], problem["code"]) == (409, "paper_census_poll")


def test_a_whole_batch_of_serials_is_in_the_action_log(at_desk: Desk, clock: Clock) -> None:
    at_desk.open("p1")
    serials = [f"{n:04d}-{'X' * 59}" for n in range(PAPER_BATCH_MAX)]  # 64 characters each
    paper_tokens(at_desk, serials)
    log = ok(at_desk.core, ListIdentityActions(actor=ADMIN, month=clock().strftime("%Y-%m"))
             )[0]["actions"]
    [batch] = [a for a in log if a["action"] == "paper_voting_tokens.issue.v1"]
    assert batch["subject"]["serials"] == serials and "access_token" not in batch["subject"]
