"""Identity: sign-in codes, access tokens, voting tokens and pseudonyms."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from tests.unit.helpers import Clock, deliver, ok, refused, send, service_db
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
from urne.services.identity import domain, limits
from urne.services.identity.adapters.sqlite_store import SqliteIdentityStore
from urne.services.identity.handlers import IdentityHandlers
from urne.storage.cassandra import StoreUnavailable

pytestmark = pytest.mark.unit

ORGANISER = "mayor@town.example.org"
ADMIN = "clerk@town.example.org"
CITIZEN = "ada@example.org"
OWNER = "198.51.100.7"  # the address's owner, on their own network
STRANGER = "203.0.113.9"
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


def codes_of(identity: Identity, address: str) -> domain.LoginCodes | None:
    return identity.store.login_codes(domain.codes_key("test-code-secret", address))


def make_identity(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Identity:
    store = SqliteIdentityStore(service_db(tmp_path / "identity.db", "identity"))
    sender = CapturingSender()
    handlers = IdentityHandlers(store=store, sender=sender, tokens=TokenIssuer(identity_key),
                                secret="test-secret", code_secret="test-code-secret",
                                organisers=frozenset({ORGANISER}),
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
    # Only a keyed hash of the code is stored, under a keyed hash of the address: the
    # table names no one.
    [pending] = codes_of(identity, CITIZEN).pending
    assert code not in pending.code_hash
    rows = identity.store.db.query("SELECT * FROM sign_in_codes")
    assert len(rows) == 1 and CITIZEN not in repr([tuple(r) for r in rows])

    data, events = ok(identity.core, VerifyLoginCode(email=CITIZEN, code=code))
    assert data["role"] == "participant"
    assert data["token_type"] == "Bearer"
    assert 0 < data["expires_in"] <= 3600
    claims = identity.verifier.access(data["access_token"])
    assert (claims.person_id, claims.role) == (data["person_id"], "participant")
    assert events == []  # signing in tells no other service anything


def test_an_access_token_never_claims_to_live_longer_than_it_does(identity: Identity
                                                                   ) -> None:
    """The handler's time is read before the issuer signs: a second boundary between the
    two (here, a clock 5 s behind) must not make ``expires_in`` exceed the token's life."""
    identity.request(CITIZEN)
    [(_, code, _)] = identity.sender.sent
    identity.clock.advance(seconds=-5)
    data, _ = ok(identity.core, VerifyLoginCode(email=CITIZEN, code=code))
    assert data["expires_in"] == 3600


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


def test_wrong_codes_burn_the_pending_codes(identity: Identity) -> None:
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    for _ in range(domain.MAX_ATTEMPTS):
        error = identity.verify(CITIZEN, wrong(code))
        assert (error["code"], error["status"]) == ("code_invalid", 401)
    # Burnt: even the right code no longer works.
    assert identity.verify(CITIZEN, code)["code"] == "code_invalid"
    # A fresh code works again, with a full set of attempts.
    identity.request(CITIZEN)
    fresh = identity.sender.last_code(CITIZEN)
    assert codes_of(identity, CITIZEN).attempts_left == domain.MAX_ATTEMPTS
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=fresh))


def test_every_failure_gets_the_same_answer(identity: Identity) -> None:
    """Wrong, expired, used, burnt, never sent: a guesser learns nothing of the address."""
    answers = [identity.verify("nobody@example.org", "123456")]  # never sent
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    answers.append(identity.verify(CITIZEN, wrong(code)))  # wrong
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=code))
    answers.append(identity.verify(CITIZEN, code))  # used
    identity.request(CITIZEN)
    identity.clock.advance(minutes=10)
    answers.append(identity.verify(CITIZEN, identity.sender.last_code(CITIZEN)))  # expired
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    answers += [identity.verify(CITIZEN, wrong(code)) for _ in range(domain.MAX_ATTEMPTS)]
    answers.append(identity.verify(CITIZEN, code))  # burnt
    assert len(answers) == 10 and all(a == answers[0] for a in answers)
    assert (answers[0]["status"], answers[0]["code"]) == (401, "code_invalid")


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


def test_a_new_code_leaves_the_one_being_typed_valid(identity: Identity) -> None:
    codes = iter(["111111", "222222"])  # the generator is injectable: no luck involved
    core = replace(identity.handlers, new_code=lambda: next(codes)).core()
    ok(core, RequestLoginCode(email=CITIZEN))
    ok(core, RequestLoginCode(email=CITIZEN))  # a stranger's request, say
    assert identity.sender.last_code(CITIZEN) == "222222"
    ok(core, VerifyLoginCode(email=CITIZEN, code="111111"))
    # Signed in: every code of the address is spent.
    assert refused(core, VerifyLoginCode(email=CITIZEN, code="222222"))["code"] == "code_invalid"


def test_asking_for_codes_buys_no_guesses(identity: Identity) -> None:
    codes = iter(f"{n:06d}" for n in range(100, 200))
    core = replace(identity.handlers, new_code=lambda: next(codes)).core()
    ok(core, RequestLoginCode(email=CITIZEN))
    for _ in range(domain.MAX_ATTEMPTS - 1):
        refused(core, VerifyLoginCode(email=CITIZEN, code="999999"))
    ok(core, RequestLoginCode(email=CITIZEN))  # pending codes: the count goes on
    refused(core, VerifyLoginCode(email=CITIZEN, code="999999"))
    assert codes_of(identity, CITIZEN).pending == ()  # the fifth burnt both
    assert refused(core, VerifyLoginCode(email=CITIZEN, code="000101"))["code"] == "code_invalid"


def send_from(identity: Identity, client: str, email: str = CITIZEN) -> dict:
    reply, events = send(identity.core, RequestLoginCode(email=email, client=client))
    assert events == []
    return reply


def test_a_strangers_requests_do_not_stop_the_owner(identity: Identity) -> None:
    """Issue 9's acceptance: five code requests by a stranger for an address."""
    assert send_from(identity, OWNER)["ok"]
    owners = identity.sender.last_code(CITIZEN)
    for _ in range(limits.SENDS_TO_ADDRESS_FROM_CLIENT.most):
        assert send_from(identity, STRANGER)["ok"]
    stopped = send_from(identity, STRANGER)
    assert (stopped["ok"], stopped["error"]["code"]) == (False, "code_rate_limited")
    assert 3500 <= stopped["error"]["retry_after"] <= 3600
    # The owner's code still works, and so does asking for another.
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=owners, client=OWNER))
    assert send_from(identity, OWNER)["ok"]
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=identity.sender.last_code(CITIZEN),
                                      client=OWNER))


def test_codes_to_one_address_are_capped_across_clients(identity: Identity) -> None:
    for n in range(limits.SENDS_TO_ADDRESS.most):
        assert send_from(identity, f"198.51.100.{n}")["ok"]
    sent = len(identity.sender.sent)
    stopped = send_from(identity, "198.51.100.200")["error"]
    assert (stopped["code"], stopped["status"]) == ("code_rate_limited", 429)
    assert len(identity.sender.sent) == sent  # nothing sent
    assert send_from(identity, "198.51.100.200", "other@example.org")["ok"]
    identity.clock.advance(hours=1)
    assert send_from(identity, "198.51.100.200")["ok"]


def test_signing_in_does_not_reset_the_send_limits(identity: Identity) -> None:
    for _ in range(limits.SENDS_TO_ADDRESS_FROM_CLIENT.most - 1):
        send_from(identity, STRANGER)
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=identity.sender.last_code(CITIZEN)))
    send_from(identity, STRANGER)
    assert send_from(identity, STRANGER)["error"]["code"] == "code_rate_limited"


def guess(identity: Identity, client: str, email: str, code: str = "999999") -> dict:
    return refused(identity.core, VerifyLoginCode(email=email, code=code, client=client))


def test_one_clients_guesses_over_many_addresses_are_stopped(identity: Identity) -> None:
    """Issue 9's acceptance: 100 wrong guesses by one client, spread over addresses."""
    codes = iter(f"{n:06d}" for n in range(100, 200))
    core = replace(identity.handlers, new_code=lambda: next(codes)).core()
    for n in range(10):
        ok(core, RequestLoginCode(email=f"voter{n}@example.org"))
    answers = [guess(identity, STRANGER, f"voter{n % 50}@example.org") for n in range(100)]
    most = limits.FAILURES_FROM_CLIENT.most
    assert all(a["code"] == "code_invalid" for a in answers[:most])
    assert all((a["code"], a["status"]) == ("too_many_attempts", 429) for a in answers[most:])
    assert 0 < answers[-1]["retry_after"] <= 15 * 60
    # Stopped means stopped: even the right code, from that client.
    assert guess(identity, STRANGER, "voter9@example.org", "000109")["code"] == \
        "too_many_attempts"
    # Another client is not; and the window passes.
    ok(core, VerifyLoginCode(email="voter9@example.org", code="000109", client=OWNER))
    identity.clock.advance(minutes=15)
    assert guess(identity, STRANGER, "voter1@example.org")["code"] == "code_invalid"


def test_ipv6_clients_are_counted_by_their_64(identity: Identity) -> None:
    for n in range(limits.FAILURES_FROM_CLIENT.most):
        guess(identity, f"2001:db8:1:2::{n + 1:x}", f"voter{n}@example.org")
    assert guess(identity, "2001:db8:1:2:ffff::9", CITIZEN)["code"] == "too_many_attempts"
    assert guess(identity, "2001:db8:1:3::1", CITIZEN)["code"] == "code_invalid"


def test_kiosks_are_not_limited_per_client(tmp_path: Path, identity_key: SigningKey,
                                           clock: Clock) -> None:
    identity = make_identity(tmp_path, identity_key, clock)
    identity.handlers.kiosks = limits.networks("192.0.2.0/24, 2001:db8:ffff::/48")
    core = identity.handlers.core()
    for n in range(limits.FAILURES_FROM_CLIENT.most + 5):
        error = refused(core, VerifyLoginCode(email=f"voter{n}@example.org", code="999999",
                                              client="192.0.2.10"))
        assert error["code"] == "code_invalid"
    # Codes to one address from kiosks are not held to one client's share (5 an hour):
    # the per-address limit (15, from everywhere) holds for them.
    assert limits.SENDS_TO_ADDRESS.most > limits.SENDS_TO_ADDRESS_FROM_CLIENT.most
    for n in range(limits.SENDS_TO_ADDRESS.most):
        ok(core, RequestLoginCode(email=CITIZEN, client=f"192.0.2.{10 + n}"))
    assert refused(core, RequestLoginCode(email=CITIZEN, client="192.0.2.10"))["code"] == \
        "code_rate_limited"


def test_codes_and_counters_are_keyed_apart_from_the_pseudonyms(identity: Identity) -> None:
    """Two secrets: the code hashes and counters change with the code secret only."""
    identity.request(CITIZEN)
    [pending] = codes_of(identity, CITIZEN).pending
    code = identity.sender.last_code(CITIZEN)
    stored_under = domain.codes_key("test-code-secret", CITIZEN)
    assert stored_under != domain.codes_key("test-secret", CITIZEN)
    assert pending.code_hash == domain.hash_code("test-code-secret", stored_under, code)
    assert pending.code_hash != domain.hash_code("test-secret", stored_under, code)
    keys = {r["key"] for r in identity.store.db.query("SELECT key FROM limit_counters")}
    assert limits.key("test-code-secret", limits.SENDS_TO_ADDRESS, CITIZEN) in keys
    assert limits.key("test-secret", limits.SENDS_TO_ADDRESS, CITIZEN) not in keys


def test_the_counters_name_no_address_and_no_client(identity: Identity) -> None:
    send_from(identity, STRANGER)
    guess(identity, STRANGER, CITIZEN)
    keys = [r["key"] for r in identity.store.db.query("SELECT key FROM limit_counters")]
    assert len(keys) == 3
    assert not [k for k in keys if CITIZEN in k or STRANGER in k or "203.0.113" in k]


@pytest.mark.parametrize(("address", "client"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),  # an IPv4 client on a dual-stack socket
    ("testclient", None), ("", None), (None, None),
])
def test_the_client_a_limit_counts(address: str | None, client: str | None) -> None:
    assert limits.client_of(address) == client


def test_a_write_lost_to_another_process_is_made_again(identity: Identity) -> None:
    """Counters and codes are written on condition that nobody wrote since they were
    read: a process that loses the race reads again, so no count is lost."""
    other = replace(identity.handlers, store=SqliteIdentityStore(identity.store.db))
    raced = RacingStore(identity.store.db, lambda: send(other.core(), RequestLoginCode(
        email=CITIZEN, client=STRANGER)))
    core = replace(identity.handlers, store=raced).core()
    assert send(core, RequestLoginCode(email=CITIZEN, client=STRANGER))[0]["ok"]
    assert raced.lost > 0
    # Both requests were counted, and both codes are pending.
    counts = sorted(r["count"] for r in identity.store.db.query(
        "SELECT count FROM limit_counters"))
    assert counts == [2, 2]
    assert len(codes_of(identity, CITIZEN).pending) == 2


class RacingStore(SqliteIdentityStore):
    """Lets another process write once, between this one's first read and its write."""

    def __init__(self, db: object, meanwhile: object) -> None:
        super().__init__(db)  # type: ignore[arg-type]
        self.meanwhile, self.lost, self.raced = meanwhile, 0, False

    def _race(self) -> None:
        if not self.raced:
            self.raced = True
            self.meanwhile()  # type: ignore[operator]

    def swap_counter(self, previous, counter, keep):  # type: ignore[no-untyped-def]
        self._race()
        done = super().swap_counter(previous, counter, keep)
        self.lost += not done
        return done


def test_a_code_cannot_be_reused(identity: Identity) -> None:
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    ok(identity.core, VerifyLoginCode(email=CITIZEN, code=code))
    assert identity.verify(CITIZEN, code)["code"] == "code_invalid"


@pytest.mark.parametrize("failing", ["add_person", "mark_seen"])
def test_a_store_fault_during_a_sign_in_leaves_the_code_for_the_retry(
        identity: Identity, failing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store fails as the sign-in adds the person or notes the month (503, retry
    later): the code is not spent, so the retry the 503 asks for signs in, once, as one
    person. Before, the code was spent first, and the retry was told it was invalid."""
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    real = getattr(identity.store, failing)

    def away(*args: object) -> None:
        raise StoreUnavailable("the store did not answer")

    monkeypatch.setattr(identity.store, failing, away)
    problem = identity.verify(CITIZEN, code)
    assert (problem["status"], problem["code"]) == (503, "store_unavailable")
    assert len(codes_of(identity, CITIZEN).live(identity.clock())) == 1
    monkeypatch.setattr(identity.store, failing, real)
    data, _ = ok(identity.core, VerifyLoginCode(email=CITIZEN, code=code))
    assert identity.store.person_by_email(CITIZEN).person_id == data["person_id"]
    assert identity.verify(CITIZEN, code)["code"] == "code_invalid"


def test_one_code_used_twice_at_once_signs_in_once(identity: Identity) -> None:
    """Two sign-ins with the same code, read at once by two processes: the spend is a
    compare-and-set, so the one that loses reads the codes again, finds the code spent
    and is refused."""
    identity.request(CITIZEN)
    code = identity.sender.last_code(CITIZEN)
    other = replace(identity.handlers, store=SqliteIdentityStore(identity.store.db)).core()
    winner: list[dict] = []
    raced = SpendRacingStore(identity.store.db, lambda: winner.append(
        ok(other, VerifyLoginCode(email=CITIZEN, code=code))[0]))
    loser = refused(replace(identity.handlers, store=raced).core(),
                    VerifyLoginCode(email=CITIZEN, code=code))
    assert raced.lost == 1 and len(winner) == 1
    assert (loser["status"], loser["code"]) == (401, "code_invalid")
    assert identity.verifier.access(winner[0]["access_token"]).person_id \
        == identity.store.person_by_email(CITIZEN).person_id


class SpendRacingStore(SqliteIdentityStore):
    """Lets another process sign in once, between this one's read of the codes and its
    spend of them."""

    def __init__(self, db: object, meanwhile: object) -> None:
        super().__init__(db)  # type: ignore[arg-type]
        self.meanwhile, self.lost, self.raced = meanwhile, 0, False

    def swap_login_codes(self, previous, codes):  # type: ignore[no-untyped-def]
        if not self.raced:
            self.raced = True
            self.meanwhile()  # type: ignore[operator]
        done = super().swap_login_codes(previous, codes)
        self.lost += not done
        return done


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


def test_domain_pending_codes() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    codes = domain.with_new_code("s", CITIZEN, None, now, "123456")
    assert (len(codes.pending), codes.attempts_left, codes.version) == (1, domain.MAX_ATTEMPTS, 0)
    assert domain.code_matches("s", codes, " 123456 ", now)
    assert not domain.code_matches("other", codes, "123456", now)  # keyed
    assert not domain.code_matches("s", codes, "123456", now + domain.CODE_TTL)  # expired
    later = domain.with_new_code("s", CITIZEN, codes, now + domain.CODE_TTL, "654321")
    assert [p.code_hash for p in later.pending] == [domain.hash_code("s", CITIZEN, "654321")]
    assert domain.pending_from_json(domain.pending_json(codes.pending)) == codes.pending
    assert not domain.code_matches("s", domain.spent(codes), "123456", now)
    many = None
    for n in range(domain.MAX_PENDING + 3):
        many = domain.with_new_code("s", CITIZEN, many, now, f"{n:06d}")
    assert many is not None and len(many.pending) == domain.MAX_PENDING  # the newest
    assert domain.code_matches("s", many, f"{domain.MAX_PENDING + 2:06d}", now)
    assert not domain.code_matches("s", many, "000000", now)


@pytest.mark.parametrize(("count", "elapsed", "outcome"), [
    (None, 0, 1), (4, 10, 5), (5, 10, timedelta(minutes=50)),
    (5, 60, 1),  # the window has passed: a new one starts
])
def test_a_limit_counts_in_windows(count: int | None, elapsed: int,
                                   outcome: int | timedelta) -> None:
    limit = limits.Limit("t", 5, timedelta(hours=1))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    previous = None if count is None else limits.Counter("k", start, count, 3)
    got = limits.counted(limit, previous, "k", start + timedelta(minutes=elapsed))
    if isinstance(outcome, timedelta):
        assert got == outcome
        assert limits.reached(limit, previous, start + timedelta(minutes=elapsed)) == outcome
    else:
        assert isinstance(got, limits.Counter) and got.count == outcome
        assert got.version == (0 if previous is None else 4)


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
                    "district": None, "district_verified": False, "phone": None}
    assert events == []


def test_declaring_a_district_stores_it_and_a_new_declaration_replaces_it(
        identity: Identity) -> None:
    person = identity.sign_in(CITIZEN)[0]["person_id"]
    data, events = ok(identity.core, DeclareDistrict(person_id=person, district="north"))
    assert data == {"person_id": person, "email": CITIZEN, "role": "participant",
                    # taken at their word
                    "district": "north", "district_verified": False, "phone": None}
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


# --- the purge of what expired (issue 9, retention) ---------------------------------


def test_the_purge_deletes_spent_codes_and_old_counters_only(identity: Identity) -> None:
    from urne.contracts.commands import PurgeExpired

    send_from(identity, STRANGER, "early@example.org")
    identity.clock.advance(seconds=(domain.CODE_TTL + timedelta(minutes=1)).total_seconds())
    send_from(identity, STRANGER, "late@example.org")  # still pending
    data, events = ok(identity.core, PurgeExpired())
    assert events == []
    assert data == {"removed": {"sign_in_codes": 1, "limit_counters": 0, "desk_codes": 0,
                                "sign_in_lists": 0, "censuses": 0,
                                "action_log": 0, "accounts": 0}}
    assert codes_of(identity, "early@example.org") is None
    assert codes_of(identity, "late@example.org") is not None
    # Within ten minutes the timer's asking does nothing.
    assert ok(identity.core, PurgeExpired())[0] == {"removed": {}}

    identity.clock.advance(seconds=(limits.LONGEST_WINDOW + timedelta(minutes=1)).total_seconds())
    data, _ = ok(identity.core, PurgeExpired())
    # Both addresses' counters (two limits each) have outlived every window.
    assert data == {"removed": {"sign_in_codes": 1, "limit_counters": 4, "desk_codes": 0,
                                "sign_in_lists": 0, "censuses": 0,
                                "action_log": 0, "accounts": 0}}
    # The owner of an address may sign in again as if nothing had happened.
    assert identity.request("early@example.org") == {"channel": "email", "expires_in": 600}


def test_the_purge_is_no_command_anyone_may_send_over_the_broker() -> None:
    from urne.contracts.commands import PurgeBallots, PurgeExpired
    from urne.messaging.signatures import allowed

    for purge in (PurgeExpired, PurgeBallots):
        assert not any(allowed(purge.TYPE, sender) for sender in
                       ("gateway", "identity", "proposal", "vote", "tally"))


def test_an_account_no_one_signs_in_to_is_deleted_after_three_years(
        identity: Identity) -> None:
    """Identity keeps the month of each sign-in, nothing finer; an account not signed in
    for URNE_ACCOUNT_DAYS (three years), by that month, is deleted by the purge as its
    owner could have deleted it: signing in again gives the same person id."""
    from urne.contracts.commands import PurgeExpired

    idle = identity.sign_in("idle@example.org")[0]["person_id"]
    active = identity.sign_in(CITIZEN)[0]["person_id"]
    identity.clock.advance(days=2 * 365)
    identity.sign_in(CITIZEN)
    identity.clock.advance(days=365)
    assert ok(identity.core, PurgeExpired())[0]["removed"]["accounts"] == 0  # same month
    identity.clock.advance(days=62)
    assert ok(identity.core, PurgeExpired())[0]["removed"]["accounts"] == 1
    assert identity.store.person(idle) is None and identity.store.person(active)
    identity.clock.advance(minutes=11)
    assert ok(identity.core, PurgeExpired())[0]["removed"]["accounts"] == 0  # once
    assert identity.sign_in("idle@example.org")[0]["person_id"] == idle
