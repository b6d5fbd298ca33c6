"""Identity: sign-in codes, access tokens, voting tokens and pseudonyms."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest

from tests.unit.helpers import Clock, deliver, ok, refused, service_db
from urne.contracts import wrap
from urne.contracts.commands import (
    DeclareDistrict,
    GetPerson,
    IssueSyntheticVotingTokens,
    IssueVotingToken,
    IssueVotingTokenV2,
    RequestLoginCode,
    VerifyLoginCode,
)
from urne.contracts.events import PollClosed, PollOpened
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import SigningKey, generate_keys, load_signing_key
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.messaging.kernel import ServiceCore
from urne.services.identity import domain
from urne.services.identity.adapters.sqlite_store import SqliteIdentityStore
from urne.services.identity.handlers import IdentityHandlers

pytestmark = pytest.mark.unit

ORGANISER = "mayor@town.example.org"
ADMIN = "clerk@town.example.org"
CITIZEN = "ada@example.org"
RULES = YesNoAbstainRules(method="yes_no_abstain", question="New library?")


@dataclass
class CapturingSender:
    sent: list[tuple[str, str, int]] = field(default_factory=list)

    def send(self, email: str, code: str, expires_in: int) -> None:
        self.sent.append((email, code, expires_in))

    def last_code(self, email: str) -> str:
        # Codes go to the normalised address.
        return next(code for to, code, _ in reversed(self.sent) if to == email.lower())


@dataclass
class Identity:
    handlers: IdentityHandlers
    core: ServiceCore
    sender: CapturingSender
    store: SqliteIdentityStore
    verifier: TokenVerifier
    clock: Clock

    def request(self, email: str) -> dict:
        return ok(self.core, RequestLoginCode(email=email))[0]

    def sign_in(self, email: str) -> tuple[dict, list[dict]]:
        self.request(email)
        return ok(self.core, VerifyLoginCode(email=email, code=self.sender.last_code(email)))

    def verify(self, email: str, code: str) -> dict:
        return refused(self.core, VerifyLoginCode(email=email, code=code))

    def open_poll(self, poll_id: str) -> None:
        assert deliver(self.core, PollOpened(poll_id=poll_id, consultation_id="c1", rules=RULES,
                                             rules_hash=rules_hash(RULES),
                                             opened_at=self.clock())) == []

    def close_poll(self, poll_id: str) -> None:
        assert deliver(self.core, PollClosed(poll_id=poll_id, closed_at=self.clock())) == []

    def access(self, person_id: str) -> str:
        """An access token of this person, as sign-in gives it."""
        return self.handlers.tokens.access_token(person_id, "participant")[0]

    def ask(self, person_id: str, poll_id: str) -> IssueVotingTokenV2:
        return IssueVotingTokenV2(poll_id=poll_id, access_token=self.access(person_id))

    def voting_token(self, person_id: str, poll_id: str) -> str:
        data, events = ok(self.core, self.ask(person_id, poll_id))
        assert events == []
        assert data["poll_id"] == poll_id
        return data["voting_token"]


@pytest.fixture
def identity(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Identity:
    return make_identity(tmp_path, identity_key, clock)


def make_identity(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Identity:
    store = SqliteIdentityStore(service_db(tmp_path / "identity.db", "identity"))
    sender = CapturingSender()
    handlers = IdentityHandlers(store=store, sender=sender, tokens=TokenIssuer(identity_key),
                                secret="test-secret", organisers=frozenset({ORGANISER}),
                                admins=frozenset({ADMIN}), clock=clock)
    return Identity(handlers, handlers.core(), sender, store, TokenVerifier(identity_key.public),
                    clock)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**domain.CODE_DIGITS:0{domain.CODE_DIGITS}d}"


def test_sign_in_gives_a_participant_access_token(identity: Identity) -> None:
    sent = identity.request(CITIZEN)
    assert sent == {"channel": "email", "expires_in": 600}
    [(to, code, expires_in)] = identity.sender.sent
    assert (to, expires_in) == (CITIZEN, 600)
    assert len(code) == domain.CODE_DIGITS and code.isdigit()
    # Only a keyed hash of the code is stored.
    assert code not in identity.store.login_code(CITIZEN).code_hash

    data, events = ok(identity.core, VerifyLoginCode(email=CITIZEN, code=code))
    assert data["role"] == "participant"
    assert data["token_type"] == "Bearer"
    assert 0 < data["expires_in"] <= 3600
    claims = identity.verifier.access(data["access_token"])
    assert (claims.person_id, claims.role) == (data["person_id"], "participant")
    assert events == []  # signing in tells no other service anything


def test_organiser_email_is_matched_case_insensitively(identity: Identity) -> None:
    data, _ = identity.sign_in("Mayor@Town.Example.org")
    assert data["role"] == "organiser"
    assert identity.verifier.access(data["access_token"]).role == "organiser"
    # The same person, whatever the case of the address.
    again, events = identity.sign_in(ORGANISER.upper())
    assert again["person_id"] == data["person_id"]
    assert events == []


def test_admin_email_registers_as_admin(identity: Identity) -> None:
    data, _ = identity.sign_in("Clerk@Town.Example.org")
    assert data["role"] == "admin"
    assert identity.verifier.access(data["access_token"]).role == "admin"
    assert ok(identity.core, GetPerson(person_id=data["person_id"]))[0]["role"] == "admin"


@pytest.mark.parametrize(("organisers", "admins", "role"), [
    (set(), set(), "participant"),
    ({CITIZEN}, set(), "organiser"),
    (set(), {CITIZEN}, "admin"),
    ({CITIZEN}, {CITIZEN}, "admin"),  # the higher role wins
])
def test_the_role_an_address_registers_with(organisers: set[str], admins: set[str],
                                            role: str) -> None:
    assert domain.role_for(CITIZEN, organisers, admins) == role


def test_codes_are_per_address_and_tolerate_surrounding_spaces(identity: Identity) -> None:
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    assert identity.verify("someone@example.org", code)["code"] == "code_invalid"
    data, _ = ok(identity.core, VerifyLoginCode(email=CITIZEN, code=f" {code} "))
    assert data["role"] == "participant"


def test_wrong_codes_burn_attempts_until_exhausted(identity: Identity) -> None:
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    for _ in range(domain.MAX_ATTEMPTS - 1):
        error = identity.verify(CITIZEN, wrong(code))
        assert (error["code"], error["status"]) == ("code_invalid", 401)
    error = identity.verify(CITIZEN, wrong(code))
    assert (error["code"], error["status"]) == ("code_attempts_exhausted", 429)
    # Burnt: even the right code no longer works.
    assert identity.verify(CITIZEN, code)["code"] == "code_invalid"
    # A fresh code works again, with a full set of attempts.
    identity.request(CITIZEN)
    fresh = identity.sender.last_code(CITIZEN)
    assert identity.store.login_code(CITIZEN).attempts_left == domain.MAX_ATTEMPTS
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=fresh))


def test_an_expired_code_is_invalid(identity: Identity) -> None:
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    identity.clock.advance(minutes=10)
    error = identity.verify(CITIZEN, code)
    assert (error["code"], error["status"]) == ("code_invalid", 401)


def test_a_code_just_before_expiry_still_works(identity: Identity) -> None:
    identity.request(CITIZEN)
    identity.clock.advance(minutes=9, seconds=59)
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=identity.sender.last_code(CITIZEN)))


def test_a_new_code_replaces_the_previous_one(identity: Identity) -> None:
    codes = iter(["111111", "222222"])  # the generator is injectable: no luck involved
    core = replace(identity.handlers, new_code=lambda: next(codes)).core()
    ok(core, RequestLoginCode(email=CITIZEN))
    ok(core, RequestLoginCode(email=CITIZEN))
    assert identity.sender.last_code(CITIZEN) == "222222"
    error = refused(core, VerifyLoginCode(email=CITIZEN, code="111111"))
    assert error["code"] == "code_invalid"
    ok(core, VerifyLoginCode(email=CITIZEN, code="222222"))


def test_sixth_code_within_an_hour_is_rate_limited(identity: Identity) -> None:
    for _ in range(domain.MAX_SENDS_PER_WINDOW):
        identity.request(CITIZEN)
        identity.clock.advance(minutes=5)
    error = refused(identity.core, RequestLoginCode(email=CITIZEN))
    assert (error["code"], error["status"]) == ("code_rate_limited", 429)
    assert len(identity.sender.sent) == domain.MAX_SENDS_PER_WINDOW  # nothing sent
    # Another address is not affected; the limited one recovers after the window.
    identity.request("other@example.org")
    identity.clock.advance(minutes=40)
    identity.request(CITIZEN)


def test_signing_in_does_not_reset_the_send_window(identity: Identity) -> None:
    for _ in range(domain.MAX_SENDS_PER_WINDOW - 1):
        identity.request(CITIZEN)
    identity.sign_in(CITIZEN)  # the 5th code, used
    assert refused(identity.core, RequestLoginCode(email=CITIZEN))["code"] == "code_rate_limited"


def test_a_code_cannot_be_reused(identity: Identity) -> None:
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=code))
    assert identity.verify(CITIZEN, code)["code"] == "code_invalid"


def test_verify_without_any_code_is_invalid(identity: Identity) -> None:
    assert identity.verify(CITIZEN, "123456")["code"] == "code_invalid"


def test_a_person_is_registered_once(identity: Identity) -> None:
    first, _ = identity.sign_in(CITIZEN)
    second, _ = identity.sign_in(CITIZEN.upper())
    assert second["person_id"] == first["person_id"]


def test_invalid_addresses_are_refused_by_the_contract(identity: Identity) -> None:
    raw = wrap(RequestLoginCode(email=CITIZEN), "test")
    raw["payload"]["email"] = "not-an-address"
    reply, _ = identity.core.handle(raw)
    assert (reply["error"]["code"], reply["error"]["status"]) == ("invalid_message", 422)
    assert identity.sender.sent == []


def test_voting_token_for_an_unknown_poll(identity: Identity) -> None:
    error = refused(identity.core, identity.ask("p", "nope"))
    assert (error["code"], error["status"]) == ("poll_not_found", 404)


def test_voting_token_for_open_then_closed_poll(identity: Identity) -> None:
    person = identity.sign_in(CITIZEN)[0]["person_id"]
    identity.open_poll("poll-1")
    token = identity.voting_token(person, "poll-1")
    claims = identity.verifier.voting(token)
    assert claims.poll_id == "poll-1"
    assert claims.voter_key != person  # a pseudonym, never the person id
    identity.close_poll("poll-1")
    error = refused(identity.core, identity.ask(person, "poll-1"))
    assert (error["code"], error["status"]) == ("poll_not_open", 409)


def test_a_voting_token_is_issued_only_against_the_persons_own_access_token(
        identity: Identity, tmp_path: Path) -> None:
    """Whoever can send RPC cannot name a person: the retired v1, which did, is refused;
    v2 needs an access token identity signed, for the API, still valid."""
    identity.open_poll("poll-1")
    error = refused(identity.core, IssueVotingToken(person_id="alice", poll_id="poll-1"))
    assert (error["code"], error["status"]) == ("access_token_required", 403)
    token = identity.voting_token("alice", "poll-1")
    assert identity.verifier.voting(token).voter_key == domain.pseudonym(
        "test-secret", "alice", "poll-1")
    generate_keys(tmp_path / "other")
    forger = TokenIssuer(load_signing_key(tmp_path / "other", "identity-token"))
    expired = TokenIssuer(identity.handlers.tokens.key, access_ttl=-60)
    voting = identity.handlers.tokens.voting_token("alice-key", "poll-1")[0]
    for bad in (forger.access_token("alice", "participant")[0],  # not identity's key
                expired.access_token("alice", "participant")[0],
                voting,  # a voting token is no access token (audience)
                identity.access("alice")[:-4] + "AAAA"):  # tampered signature
        error = refused(identity.core, IssueVotingTokenV2(poll_id="poll-1", access_token=bad))
        assert (error["code"], error["status"]) == ("invalid_token", 401), bad


def test_pseudonyms_differ_per_poll_and_person_and_are_stable(identity: Identity) -> None:
    for poll in ("poll-1", "poll-2"):
        identity.open_poll(poll)

    def key(person: str, poll: str) -> str:
        return identity.verifier.voting(identity.voting_token(person, poll)).voter_key

    a1, a2, b1 = key("alice", "poll-1"), key("alice", "poll-2"), key("bob", "poll-1")
    assert len({a1, a2, b1}) == 3
    assert key("alice", "poll-1") == a1
    assert a1 == domain.pseudonym("test-secret", "alice", "poll-1")
    assert a1 != domain.pseudonym("another-secret", "alice", "poll-1")


def test_late_poll_opened_does_not_reopen_a_closed_poll(identity: Identity) -> None:
    identity.open_poll("poll-1")
    identity.close_poll("poll-1")
    identity.open_poll("poll-1")  # redelivered late
    assert identity.store.voting_status("poll-1") == "closed"
    assert refused(identity.core, identity.ask("p", "poll-1"))["code"] == "poll_not_open"


def test_poll_closed_before_opened_stays_closed(identity: Identity) -> None:
    identity.close_poll("poll-1")
    identity.open_poll("poll-1")
    assert identity.store.voting_status("poll-1") == "closed"


def test_poll_events_are_idempotent(identity: Identity) -> None:
    identity.open_poll("poll-1")
    identity.open_poll("poll-1")
    assert identity.store.voting_status("poll-1") == "open"
    identity.close_poll("poll-1")
    identity.close_poll("poll-1")
    assert identity.store.voting_status("poll-1") == "closed"


def test_domain_issue_code_window() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    code = domain.issue_code("s", CITIZEN, None, now, "123456")
    assert code is not None and code.sent_in_window == 1
    assert domain.code_matches("s", code, "123456")
    assert not domain.code_matches("other", code, "123456")
    spent = domain.spent(code, now)
    assert not domain.code_matches("s", spent, "123456")
    assert spent.window_started_at == code.window_started_at


def test_synthetic_voters_only_in_development(identity: Identity) -> None:
    identity.open_poll("poll-1")
    error = refused(identity.core, IssueSyntheticVotingTokens(poll_id="poll-1", count=3))
    assert (error["code"], error["status"]) == ("synthetic_voters_refused", 403)
    allowed = replace(identity.handlers, synthetic_voters=True).core()
    data, events = ok(allowed, IssueSyntheticVotingTokens(poll_id="poll-1", count=3))
    assert events == [] and len(data["voting_tokens"]) == 3
    keys = {identity.verifier.voting(t).voter_key for t in data["voting_tokens"]}
    assert len(keys) == 3  # three different made-up voters
    identity.close_poll("poll-1")
    error = refused(allowed, IssueSyntheticVotingTokens(poll_id="poll-1", count=1))
    assert error["code"] == "poll_not_open"


# --- districts: declared by the person, carried by their voting tokens ------------------


def test_a_new_person_has_no_district_until_they_declare_one(identity: Identity) -> None:
    signed_in, _ = identity.sign_in(CITIZEN)
    person = signed_in["person_id"]
    data, events = ok(identity.core, GetPerson(person_id=person))
    assert data == {"person_id": person, "email": CITIZEN, "role": "participant",
                    "district": None, "district_verified": False}
    assert events == []


def test_declaring_a_district_stores_it_and_a_new_declaration_replaces_it(
        identity: Identity) -> None:
    person = identity.sign_in(CITIZEN)[0]["person_id"]
    data, events = ok(identity.core, DeclareDistrict(person_id=person, district="north"))
    assert data == {"person_id": person, "email": CITIZEN, "role": "participant",
                    "district": "north", "district_verified": False}  # taken at their word
    assert events == []  # nobody else is told: the district travels in voting tokens only
    assert identity.store.person(person).district == "north"
    ok(identity.core, DeclareDistrict(person_id=person, district="north"))  # again: the same
    assert ok(identity.core, DeclareDistrict(person_id=person, district="Quartier-2.sud"))[0][
        "district"] == "Quartier-2.sud"
    assert ok(identity.core, GetPerson(person_id=person))[0]["district"] == "Quartier-2.sud"
    # Signing in again keeps it.
    identity.sign_in(CITIZEN)
    assert identity.store.person_by_email(CITIZEN).district == "Quartier-2.sud"


@pytest.mark.parametrize("district", ["", "*", " north", "north ", "nord/est", "-north",
                                      "n" * 65, "north\n", 7, None])
def test_an_invalid_district_is_refused_and_changes_nothing(
        identity: Identity, district: object) -> None:
    person = identity.sign_in(CITIZEN)[0]["person_id"]
    ok(identity.core, DeclareDistrict(person_id=person, district="north"))
    raw = wrap(DeclareDistrict(person_id=person, district="south"), "test")
    raw["payload"]["district"] = district
    reply, events = identity.core.handle(raw)
    assert (reply["error"]["code"], reply["error"]["status"]) == ("invalid_message", 422)
    assert events == []
    assert identity.store.person(person).district == "north"


def test_a_district_at_its_limits_is_accepted(identity: Identity) -> None:
    person = identity.sign_in(CITIZEN)[0]["person_id"]
    for district in ("n", "N" * 64, "0", "a_b.c:d-e"):
        assert ok(identity.core, DeclareDistrict(person_id=person, district=district))[0][
            "district"] == district


def test_an_unknown_person_has_no_profile_and_no_district(identity: Identity) -> None:
    for cmd in (GetPerson(person_id="nobody"),
                DeclareDistrict(person_id="nobody", district="north")):
        error = refused(identity.core, cmd)
        assert (error["code"], error["status"]) == ("person_not_found", 404)
    assert identity.store.person("nobody") is None


def test_the_voting_token_carries_the_declared_district(identity: Identity) -> None:
    person = identity.sign_in(CITIZEN)[0]["person_id"]
    identity.open_poll("poll-1")
    before = identity.voting_token(person, "poll-1")
    assert identity.verifier.voting(before).district is None
    assert "district" not in jwt.decode(before, options={"verify_signature": False})
    ok(identity.core, DeclareDistrict(person_id=person, district="north"))
    after = identity.verifier.voting(identity.voting_token(person, "poll-1"))
    assert (after.district, after.poll_id) == ("north", "poll-1")
    # The same pseudonym: the district is an attribute of the voter, not a new voter.
    assert after.voter_key == identity.verifier.voting(before).voter_key
    ok(identity.core, DeclareDistrict(person_id=person, district="south"))
    assert identity.verifier.voting(identity.voting_token(person, "poll-1")).district == "south"


def test_synthetic_voters_are_spread_round_robin_over_districts(identity: Identity) -> None:
    identity.open_poll("poll-1")
    allowed = replace(identity.handlers, synthetic_voters=True).core()
    data, _ = ok(allowed, IssueSyntheticVotingTokens(poll_id="poll-1", count=5,
                                                     districts=["north", "south"]))
    claims = [identity.verifier.voting(t) for t in data["voting_tokens"]]
    assert [c.district for c in claims] == ["north", "south", "north", "south", "north"]
    assert len({c.voter_key for c in claims}) == 5
    data, _ = ok(allowed, IssueSyntheticVotingTokens(poll_id="poll-1", count=2))
    assert [identity.verifier.voting(t).district for t in data["voting_tokens"]] == [None, None]
    raw = wrap(IssueSyntheticVotingTokens(poll_id="poll-1", count=1), "test")
    raw["payload"]["districts"] = ["north", "*"]
    reply, _ = allowed.handle(raw)
    assert reply["error"]["code"] == "invalid_message"


def test_domain_spread_and_declare() -> None:
    assert domain.spread(["a", "b", "c"], 4) == ["a", "b", "c", "a"]
    assert domain.spread([], 2) == [None, None]
    assert domain.spread(["a"], 0) == []
    person = domain.Person("p", CITIZEN, "participant", datetime(2025, 1, 1, tzinfo=UTC))
    assert person.district is None
    assert domain.declare_district(person, "north") == replace(person, district="north")
