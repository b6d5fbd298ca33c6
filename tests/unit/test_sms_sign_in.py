"""Sign-in by SMS: which numbers get a code (phones.py), and the identity core's SMS
channel, beside the e-mail one it shares its codes and limits with."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.unit.helpers import Clock, deliver, ok, refused, service_db
from tests.unit.test_identity import CapturingSender
from urne.contracts.commands import (
    ClaimCensusEntry,
    GetPerson,
    IssueVotingTokenV2,
    RequestLoginCode,
    RequestSmsCode,
    VerifyLoginCode,
    VerifySmsCode,
)
from urne.contracts.events import PollOpened
from urne.counting import YesNoAbstainRules, rules_hash
from urne.crypto.keys import SigningKey
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.platform.errors import DomainError
from urne.services.identity import limits, phones
from urne.services.identity.adapters.sqlite_store import SqliteIdentityStore
from urne.services.identity.domain import codes_key
from urne.services.identity.handlers import IdentityHandlers

pytestmark = pytest.mark.unit

MOBILE = "+33612345678"  # France, 06: a mobile
BELGIAN = "+32470123456"  # Belgium, 0470: a mobile
STRANGER = "203.0.113.9"
OWNER = "198.51.100.7"


# --- which numbers ---------------------------------------------------------------------

@pytest.mark.parametrize("number", [MOBILE, "+33744556677", BELGIAN])
def test_mobiles_of_allowed_countries_get_codes(number: str) -> None:
    assert phones.textable(number, {"FR", "BE"}) == number


@pytest.mark.parametrize(("number", "code"), [
    ("+3361234", "phone_invalid"),          # too short for France
    ("+33012345678", "phone_invalid"),      # a trunk 0 kept after the country code
    ("+999123456789", "phone_invalid"),     # no such country code
    ("+12015550123", "phone_refused"),      # the United States: not on the list
    ("+447911123456", "phone_refused"),     # the United Kingdom's: not on the list
    ("+33899123456", "phone_refused"),      # French, premium rate: where pumping pays
    ("+33800123456", "phone_refused"),      # French, toll-free
    ("+33123456789", "phone_refused"),      # French, a landline: no SMS to read
])
def test_other_numbers_are_refused_with_their_reason(number: str, code: str) -> None:
    with pytest.raises(DomainError) as refusal:
        phones.textable(number, {"FR", "BE"})
    assert (refusal.value.code, refusal.value.status) == (code, 422)
    assert refusal.value.detail


def test_an_empty_allow_list_texts_nobody() -> None:
    with pytest.raises(DomainError, match="not sent by SMS") as refusal:
        phones.textable(MOBILE, frozenset())
    assert refusal.value.code == "phone_refused"


def test_the_allow_list_setting() -> None:
    assert phones.countries(" fr, BE ,") == {"FR", "BE"}
    assert phones.countries("") == frozenset()
    with pytest.raises(ValueError, match=r"URNE_SMS_COUNTRIES.*XX, ZZ"):
        phones.countries("FR,XX,ZZ")


@pytest.mark.parametrize("number", ["0612345678", "33612345678", "+33 6 12 34 56 78",
                                    "+0612345678", "+1234567890123456", "+33-612345678"])
def test_only_e164_crosses_the_contract(number: str) -> None:
    with pytest.raises(ValidationError):
        RequestSmsCode(phone=number)


# --- the identity core -----------------------------------------------------------------

class SmsIdentity:
    def __init__(self, tmp_path: Path, identity_key: SigningKey, clock: Clock,
                 countries: frozenset[str] = frozenset({"FR", "BE"})):
        self.store = SqliteIdentityStore(service_db(tmp_path / "identity.db", "identity"))
        self.mail, self.sms = CapturingSender(), CapturingSender()
        self.handlers = IdentityHandlers(
            store=self.store, sender=self.mail, tokens=TokenIssuer(identity_key),
            secret="test-secret", code_secret="test-code-secret", organisers=frozenset(),
            clock=clock, sms=self.sms, sms_countries=countries)
        self.core = self.handlers.core()
        self.verifier = TokenVerifier(identity_key.public)

    def code(self, phone: str) -> str:
        return next(code for to, code, _ in reversed(self.sms.sent) if to == phone)

    def sign_in(self, phone: str, client: str | None = None) -> dict:
        assert ok(self.core, RequestSmsCode(phone=phone, client=client))[0] == {
            "channel": "sms", "expires_in": 600}
        return ok(self.core, VerifySmsCode(phone=phone, code=self.code(phone),
                                           client=client))[0]


@pytest.fixture
def identity(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> SmsIdentity:
    return SmsIdentity(tmp_path, identity_key, clock)


def test_a_person_without_e_mail_registers_by_sms(identity: SmsIdentity) -> None:
    ok(identity.core, RequestSmsCode(phone=MOBILE))
    # Only a keyed hash of the code is kept, under a keyed hash of the number.
    [pending] = identity.store.login_codes(codes_key("test-code-secret", MOBILE)).pending
    assert identity.code(MOBILE) not in pending.code_hash
    data = ok(identity.core, VerifySmsCode(phone=MOBILE, code=identity.code(MOBILE)))[0]
    assert [to for to, _, _ in identity.sms.sent] == [MOBILE] and identity.mail.sent == []
    assert data["role"] == "participant"
    assert identity.verifier.access(data["access_token"]).person_id == data["person_id"]
    person = ok(identity.core, GetPerson(person_id=data["person_id"]))[0]
    assert (person["email"], person["phone"], person["role"]) == (None, MOBILE, "participant")
    # The next sign-in is the same person.
    assert identity.sign_in(MOBILE)["person_id"] == data["person_id"]


def test_a_refused_number_is_sent_nothing_and_changes_nothing(identity: SmsIdentity) -> None:
    for number, code in (("+12015550123", "phone_refused"), ("+3361234", "phone_invalid")):
        problem = refused(identity.core, RequestSmsCode(phone=number, client=STRANGER))
        assert problem["code"] == code
        assert identity.store.login_codes(codes_key("test-code-secret", number)) is None
    assert identity.sms.sent == []
    key = limits.key("test-code-secret", limits.SENDS_TO_ADDRESS, "+12015550123")
    assert identity.store.counter(key) is None


def test_every_failed_sms_sign_in_gets_the_one_answer(identity: SmsIdentity) -> None:
    ok(identity.core, RequestSmsCode(phone=MOBILE))
    code = identity.code(MOBILE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for phone, given in ((MOBILE, wrong), (BELGIAN, code), ("+12015550123", code),
                         ("+3361234", code)):
        problem = refused(identity.core, VerifySmsCode(phone=phone, code=given))
        assert (problem["status"], problem["code"]) == (401, "code_invalid"), phone
    # The e-mail channel does not take it either: its addresses are other keys.
    assert refused(identity.core, VerifyLoginCode(email="ada@example.org", code=code)
                   )["code"] == "code_invalid"
    assert ok(identity.core, VerifySmsCode(phone=MOBILE, code=code))[0]["role"] == \
        "participant"


def test_a_strangers_sms_requests_do_not_stop_the_owner(identity: SmsIdentity) -> None:
    for _ in range(limits.SENDS_TO_ADDRESS_FROM_CLIENT.most):
        ok(identity.core, RequestSmsCode(phone=MOBILE, client=STRANGER))
    problem = refused(identity.core, RequestSmsCode(phone=MOBILE, client=STRANGER))
    assert (problem["status"], problem["code"]) == (429, "code_rate_limited")
    assert problem["retry_after"] > 0
    assert identity.sign_in(MOBILE, client=OWNER)["role"] == "participant"


def test_without_an_sms_sender_no_number_gets_a_code(tmp_path: Path, identity_key: SigningKey,
                                                    clock: Clock) -> None:
    nobody = SmsIdentity(tmp_path, identity_key, clock, countries=frozenset())
    assert refused(nobody.core, RequestSmsCode(phone=MOBILE))["code"] == "phone_refused"
    nobody.handlers.sms = None  # countries listed but nothing to send with
    nobody.handlers.sms_countries = frozenset({"FR"})
    assert refused(nobody.core, RequestSmsCode(phone=MOBILE))["code"] == "phone_refused"
    assert nobody.sms.sent == []


def test_an_sms_person_votes_and_claims_a_census_entry_by_name_only(
        identity: SmsIdentity, clock: Clock) -> None:
    data = identity.sign_in(MOBILE)
    rules = YesNoAbstainRules(method="yes_no_abstain", question="?")
    assert deliver(identity.core, PollOpened(poll_id="p1", consultation_id="c1", rules=rules,
                                             rules_hash=rules_hash(rules),
                                             opened_at=clock())) == []
    token = ok(identity.core, IssueVotingTokenV2(poll_id="p1",
                                                 access_token=data["access_token"]))[0]
    assert identity.verifier.voting(token["voting_token"]).poll_id == "p1"
    # No e-mail to be found by: a claim without names finds no entry (and says so).
    problem = refused(identity.core, ClaimCensusEntry(consultation_id="c1",
                                                      access_token=data["access_token"]))
    assert problem["code"] == "census_entry_not_found"


def test_an_e_mail_person_and_an_sms_person_are_apart(identity: SmsIdentity) -> None:
    ok(identity.core, RequestLoginCode(email="ada@example.org"))
    mail_code = identity.mail.sent[-1][1]
    by_mail = ok(identity.core, VerifyLoginCode(email="ada@example.org", code=mail_code))[0]
    by_sms = identity.sign_in(MOBILE)
    assert by_mail["person_id"] != by_sms["person_id"]
    person = ok(identity.core, GetPerson(person_id=by_mail["person_id"]))[0]
    assert (person["email"], person["phone"]) == ("ada@example.org", None)


def test_a_person_registered_by_sms_deletes_their_account_and_comes_back_the_same(
        identity: SmsIdentity) -> None:
    """The number goes with the account: no table holds it, only its keyed hash, under
    which signing in again with it finds the same person id."""
    from urne.contracts.commands import DeletePerson

    phone = "+33612345678"
    person_id = identity.sign_in(phone)["person_id"]
    assert ok(identity.core, DeletePerson(person_id=person_id)) == (
        {"person_id": person_id}, [])
    assert identity.store.person_by_phone(phone) is None
    db = identity.store.db
    tables = [r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = "
                                          "'table' AND name != 'sign_in_codes'")]
    holding = [t for t in tables for row in db.query(f"SELECT * FROM {t}")
               if any(phone in str(v) for v in tuple(row))]
    assert holding == []  # (its spent sign-in code goes with identity's purge)
    assert identity.sign_in(phone)["person_id"] == person_id
