"""The census of a consultation (issue 9): identity keeps keyed hashes of who is on it,
one entry goes to one account, and a census poll issues voting tokens to claimed,
eligible entries only, with the census's district."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from tests.unit.helpers import Clock, deliver, ok, refused
from tests.unit.test_identity import RULES, Identity, make_identity
from urne.contracts.commands import (
    Actor,
    CensusRow,
    ClaimCensusEntry,
    ImportCensus,
    IssueVotingTokenV2,
    PurgeExpired,
)
from urne.contracts.events import ElectorateMissing, PollClosed, PollOpened
from urne.counting import rules_hash
from urne.crypto.keys import SigningKey
from urne.services.identity import census

pytestmark = pytest.mark.unit

ORGANISER = Actor(person_id="org-1", role="organiser")
ON = date(2026, 11, 30)


def row(family: str, given: str, born: str, district: str | None = "nord",
        email: str | None = None, resident: bool = True) -> CensusRow:
    return CensusRow(family_name=family, given_name=given, birth_date=date.fromisoformat(born),
                     district=district, email=email, resident=resident)


ROWS = [row("Dupont-Léger", "Éloïse", "1990-05-17", "nord", email="eloise@example.org"),
        row("Martin", "Paul", "2010-01-01", "sud"),  # 16 on ON: under age
        row("Nguyen", "Anh", "1985-03-03", "est", resident=False),
        row("O'Brien", "Sean", "1970-12-31", None)]


@pytest.fixture
def identity(tmp_path: Path, identity_key: SigningKey, clock: Clock) -> Identity:
    made = make_identity(tmp_path, identity_key, clock)
    data, _ = ok(made.core, ImportCensus(consultation_id="c1", rows=ROWS, minimum_age=18,
                                         age_on=ON, actor=ORGANISER))
    assert (data["rows"], data["eligible"]) == (4, 2)
    return made


def signed_in(identity: Identity, email: str) -> str:
    return identity.sign_in(email)[0]["person_id"]


def claim(identity: Identity, person_id: str, family: str | None = None,
          given: str | None = None, born: str | None = None,
          consultation_id: str = "c1") -> ClaimCensusEntry:
    return ClaimCensusEntry(consultation_id=consultation_id,
                            access_token=identity.access(person_id), family_name=family,
                            given_name=given,
                            birth_date=date.fromisoformat(born) if born else None)


def open_census_poll(identity: Identity, poll_id: str, electorate: str = "census") -> None:
    assert deliver(identity.core, PollOpened(
        poll_id=poll_id, consultation_id="c1", rules=RULES, rules_hash=rules_hash(RULES),
        opened_at=identity.clock(), electorate=electorate)) == []


# --- the pure part ---------------------------------------------------------------


@pytest.mark.parametrize("a, b", [("Jean-Pierre", "jean pierre"), ("Éloïse", "ELOISE"),
                                  ("O'Brien", "o brien"), ("  Anne  Marie ", "Anne-Marie"),
                                  ("Straße", "STRASSE")])
def test_names_are_matched_however_they_are_written(a: str, b: str) -> None:
    assert census.normalise_name(a) == census.normalise_name(b)


def test_different_names_stay_different() -> None:
    assert census.normalise_name("Anne") != census.normalise_name("Anna")
    # In any script: letters outside Latin are letters, not separators.
    born = date(1980, 1, 1)
    assert census.entry_key("s", "c1", "Ivanov", "Ivan", born) != census.entry_key(
        "s", "c1", "Petrov", "Pyotr", born)
    for a, b in (("\u0418\u0432\u0430\u043d\u043e\u0432", "\u041f\u0435\u0442\u0440\u043e\u0432"),
                 ("\u674e", "\u738b"), ("\u0141ukasz", "ukasz")):
        assert census.normalise_name(a) and census.normalise_name(a) != census.normalise_name(b)


@pytest.mark.parametrize("born, on, age", [("2008-11-30", "2026-11-30", 18),
                                           ("2008-12-01", "2026-11-30", 17),
                                           ("2008-02-29", "2026-02-28", 17),
                                           ("2008-02-29", "2026-03-01", 18)])
def test_full_years_of_age(born: str, on: str, age: int) -> None:
    assert census.age_on(date.fromisoformat(born), date.fromisoformat(on)) == age


def test_keys_depend_on_the_consultation_and_the_secret() -> None:
    born = date(1990, 5, 17)
    one = census.entry_key("s", "c1", "Dupont", "Eloise", born)
    assert one == census.entry_key("s", "c1", "DUPONT", "Éloïse", born)
    assert one != census.entry_key("s", "c2", "Dupont", "Eloise", born)
    assert one != census.entry_key("t", "c1", "Dupont", "Eloise", born)
    assert one != census.entry_key("s", "c1", "Dupont", "Eloise", date(1990, 5, 18))


# --- the service -----------------------------------------------------------------


def test_the_store_holds_no_name_birth_date_or_address(identity: Identity,
                                                       tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "identity.db") as db:
        dumped = "\n".join(db.iterdump()).casefold()
    for word in ("dupont", "eloise", "éloïse", "1990-05-17", "eloise@example.org", "martin",
                 "o'brien", "obrien"):
        assert word not in dumped, word
    assert "nord" in dumped  # the district is kept in clear


def test_only_staff_import_a_census(identity: Identity) -> None:
    error = refused(identity.core, ImportCensus(
        consultation_id="c1", rows=ROWS[:1], age_on=ON,
        actor=Actor(person_id="p", role="participant")))
    assert (error["status"], error["code"]) == (403, "forbidden")


def test_a_person_claims_their_entry_by_name_as_they_write_it(identity: Identity) -> None:
    person = signed_in(identity, "someone@example.org")
    data, events = ok(identity.core, claim(identity, person, "dupont leger", "eloise",
                                           "1990-05-17"))
    assert data == {"consultation_id": "c1", "district": "nord", "eligible": True}
    assert events == []
    # Claiming again is the same answer.
    again, _ = ok(identity.core, claim(identity, person, "DUPONT-LÉGER", "Éloïse",
                                       "1990-05-17"))
    assert again == data


def test_a_person_claims_their_entry_by_the_address_they_signed_in_with(
        identity: Identity) -> None:
    person = signed_in(identity, "Eloise@Example.org")
    data, _ = ok(identity.core, claim(identity, person))
    assert (data["district"], data["eligible"]) == ("nord", True)


def test_one_entry_goes_to_one_account(identity: Identity) -> None:
    first, second = signed_in(identity, "a@example.org"), signed_in(identity, "b@example.org")
    ok(identity.core, claim(identity, first, "Martin", "Paul", "2010-01-01"))
    error = refused(identity.core, claim(identity, second, "Martin", "Paul", "2010-01-01"))
    assert (error["status"], error["code"]) == (409, "census_entry_claimed")


def test_one_account_claims_one_entry(identity: Identity) -> None:
    person = signed_in(identity, "a@example.org")
    ok(identity.core, claim(identity, person, "Martin", "Paul", "2010-01-01"))
    error = refused(identity.core, claim(identity, person, "Nguyen", "Anh", "1985-03-03"))
    assert (error["status"], error["code"]) == (409, "census_already_claimed")
    # The other entry is still free for its owner.
    other = signed_in(identity, "anh@example.org")
    assert ok(identity.core, claim(identity, other, "Nguyen", "Anh", "1985-03-03"))[0][
        "eligible"] is False


def test_a_claim_a_crash_cut_short_is_finished_or_dropped(identity: Identity) -> None:
    person, other = signed_in(identity, "a@example.org"), signed_in(identity, "b@example.org")
    paul = census.entry_key("test-code-secret", "c1", "Martin", "Paul", date(2010, 1, 1))
    anh = census.entry_key("test-code-secret", "c1", "Nguyen", "Anh", date(1985, 3, 3))
    # A crash after the reservation, before the entry was claimed:
    identity.store.add_census_claim("c1", person, paul)
    # Another account may still claim Paul's entry: a reservation alone holds nothing...
    ok(identity.core, claim(identity, other, "Martin", "Paul", "2010-01-01"))
    # ... and the cut-short claim does not stop its account from claiming its own entry.
    ok(identity.core, claim(identity, person, "Nguyen", "Anh", "1985-03-03"))
    assert identity.store.census_claim("c1", person) == anh
    assert identity.store.census_entry("c1", paul).claimed_by == other


def test_the_same_claim_again_finishes_what_a_crash_cut_short(identity: Identity) -> None:
    person = signed_in(identity, "a@example.org")
    paul = census.entry_key("test-code-secret", "c1", "Martin", "Paul", date(2010, 1, 1))
    identity.store.add_census_claim("c1", person, paul)  # the crash, as above
    assert identity.store.census_entry("c1", paul).claimed_by is None
    ok(identity.core, claim(identity, person, "Martin", "Paul", "2010-01-01"))
    assert identity.store.census_entry("c1", paul).claimed_by == person


def test_an_address_of_several_people_claims_nobody(identity: Identity) -> None:
    family = "famille@example.org"
    ok(identity.core, ImportCensus(consultation_id="c3", age_on=ON, actor=ORGANISER, rows=[
        row("Roux", "Anne", "1970-01-01", email=family),
        row("Roux", "Leo", "2012-01-01", email=family)]))
    person = signed_in(identity, family)
    error = refused(identity.core, claim(identity, person, consultation_id="c3"))
    assert (error["status"], error["code"]) == (404, "census_entry_not_found")
    # Each claims by name instead.
    assert ok(identity.core, claim(identity, person, "Roux", "Anne", "1970-01-01",
                                   consultation_id="c3"))[0]["eligible"] is True


@pytest.mark.parametrize("same_import_again", [False, True])
def test_an_address_of_several_people_in_two_imports_claims_nobody(
        identity: Identity, same_import_again: bool) -> None:
    # A city's list comes in parts (the gateway's 2,000 rows a command, or several
    # files): the family's two rows may fall in two of them, in either order.
    family = "famille@example.org"
    parts = [[row("Roux", "Anne", "1970-01-01", email=family)],
             [row("Roux", "Leo", "2012-01-01", email=family)]]
    if same_import_again:
        parts.append(parts[0])  # Anne's part sent again: the address stays shared
    for rows in parts:
        ok(identity.core, ImportCensus(consultation_id="c4", age_on=ON, actor=ORGANISER,
                                       rows=rows))
    person = signed_in(identity, family)
    error = refused(identity.core, claim(identity, person, consultation_id="c4"))
    assert (error["status"], error["code"]) == (404, "census_entry_not_found")
    assert ok(identity.core, claim(identity, person, "Roux", "Leo", "2012-01-01",
                                   consultation_id="c4"))[0]["eligible"] is True


def test_an_address_listed_again_for_the_same_person_still_claims(identity: Identity) -> None:
    rows = [row("Roux", "Anne", "1970-01-01", email="anne@example.org")]
    for _ in range(2):
        ok(identity.core, ImportCensus(consultation_id="c5", age_on=ON, actor=ORGANISER,
                                       rows=rows))
    person = signed_in(identity, "anne@example.org")
    assert ok(identity.core, claim(identity, person, consultation_id="c5"))[0]["eligible"]


def test_the_census_of_an_open_census_poll_does_not_change(identity: Identity) -> None:
    # Identity checks it too: the gateway looked before reading the file, and a city's
    # list goes in many parts, between which a poll may open.
    newcomer = [row("Roux", "Anne", "1970-01-01", email="anne@example.org")]
    open_census_poll(identity, "p-all", electorate="open")  # open to all: no matter
    ok(identity.core, ImportCensus(consultation_id="c1", age_on=ON, actor=ORGANISER,
                                   rows=newcomer))
    open_census_poll(identity, "p1")
    before = identity.store.count_eligible("c1")
    error = refused(identity.core, ImportCensus(
        consultation_id="c1", age_on=ON, actor=ORGANISER,
        rows=[row("Roux", "Leo", "1990-01-01"), row("Martin", "Paul", "2010-01-01")]))
    assert (error["status"], error["code"]) == (409, "census_frozen")
    assert identity.store.count_eligible("c1") == before  # Leo not added, nobody changed
    # Another consultation's census is not frozen by this poll.
    ok(identity.core, ImportCensus(consultation_id="c9", age_on=ON, actor=ORGANISER,
                                   rows=newcomer))
    deliver(identity.core, PollClosed(poll_id="p1", closed_at=identity.clock()))
    data, _ = ok(identity.core, ImportCensus(consultation_id="c1", age_on=ON,
                                             actor=ORGANISER, rows=[row("Roux", "Leo",
                                                                        "1990-01-01")]))
    assert data["rows"] == 1 and identity.store.count_eligible("c1") == before + 1


def test_a_claim_gives_all_three_or_none(identity: Identity) -> None:
    person = signed_in(identity, "a@example.org")
    error = refused(identity.core, claim(identity, person, "Martin", "Paul"))
    assert (error["status"], error["code"]) == (422, "census_claim_incomplete")


def test_failed_claims_are_limited_per_account(identity: Identity) -> None:
    person = signed_in(identity, "guesser@example.org")
    for day in range(census.CLAIM_FAILURES.most):
        error = refused(identity.core, claim(identity, person, "Dupont-Léger", "Éloïse",
                                             f"1990-05-{day + 1:02d}"))
        assert (error["status"], error["code"]) == (404, "census_entry_not_found")
    # Even the right answer is refused now: guessing is over for the day.
    error = refused(identity.core, claim(identity, person, "Dupont-Léger", "Éloïse",
                                         "1990-05-17"))
    assert (error["status"], error["code"]) == (429, "too_many_attempts")
    assert 0 < error["retry_after"] <= 24 * 3600
    # Another account is not stopped by this one's guesses.
    owner = signed_in(identity, "eloise@example.org")
    assert ok(identity.core, claim(identity, owner))[0]["district"] == "nord"


def test_a_census_poll_issues_tokens_to_claimed_eligible_entries_only(
        identity: Identity) -> None:
    open_census_poll(identity, "p1")
    eligible, minor, stranger = (signed_in(identity, f"{n}@example.org")
                                 for n in ("e", "m", "s"))
    ok(identity.core, claim(identity, eligible, "Dupont-Léger", "Éloïse", "1990-05-17"))
    ok(identity.core, claim(identity, minor, "Martin", "Paul", "2010-01-01"))

    error = refused(identity.core, IssueVotingTokenV2(poll_id="p1",
                                                      access_token=identity.access(stranger)))
    assert (error["status"], error["code"]) == (403, "census_claim_required")
    error = refused(identity.core, IssueVotingTokenV2(poll_id="p1",
                                                      access_token=identity.access(minor)))
    assert (error["status"], error["code"]) == (403, "not_eligible")
    token = identity.voting_token(eligible, "p1")
    assert identity.verifier.voting(token).district == "nord"  # the census's, not declared


def test_an_open_poll_and_an_event_without_electorate_stay_open_to_all(
        identity: Identity) -> None:
    open_census_poll(identity, "p-open", electorate="open")
    identity.open_poll("p-old")  # a poll.opened without the field: open
    stranger = signed_in(identity, "s@example.org")
    for poll in ("p-open", "p-old"):
        assert identity.voting_token(stranger, poll)


def test_a_census_is_per_consultation(identity: Identity) -> None:
    person = signed_in(identity, "eloise@example.org")
    error = refused(identity.core, claim(identity, person, consultation_id="c2"))
    assert (error["status"], error["code"]) == (404, "census_entry_not_found")


def test_importing_again_updates_and_keeps_the_claim(identity: Identity) -> None:
    person = signed_in(identity, "paul@example.org")
    ok(identity.core, claim(identity, person, "Martin", "Paul", "2010-01-01"))
    data, _ = ok(identity.core, ImportCensus(
        consultation_id="c1", rows=[row("Martin", "Paul", "2010-01-01", "ouest")],
        minimum_age=16, age_on=ON, actor=ORGANISER))
    assert (data["rows"], data["eligible"]) == (1, 1)
    assert ok(identity.core, claim(identity, person, "Martin", "Paul", "2010-01-01"))[0] == {
        "consultation_id": "c1", "district": "ouest", "eligible": True}


def test_failed_claims_from_one_client_count_with_its_wrong_codes(identity: Identity) -> None:
    from urne.services.identity import limits

    accounts = [signed_in(identity, f"g{i}@example.org") for i in range(4)]
    tries = 0
    while tries < limits.FAILURES_FROM_CLIENT.most:
        for person in accounts:  # spread over accounts, each under its own limit
            if tries == limits.FAILURES_FROM_CLIENT.most:
                break
            error = refused(identity.core, claim(identity, person, "X", "Y", "1990-01-01")
                            .model_copy(update={"client": "203.0.113.50"}))
            assert error["code"] == "census_entry_not_found"
            tries += 1
    error = refused(identity.core, claim(identity, accounts[0], "X", "Y", "1990-01-01")
                    .model_copy(update={"client": "203.0.113.50"}))
    assert (error["status"], error["code"]) == (429, "too_many_attempts")
    # From another client the same account is not stopped by that client's guesses.
    error = refused(identity.core, claim(identity, accounts[0], "X", "Y", "1990-01-01")
                    .model_copy(update={"client": "198.51.100.1"}))
    assert error["code"] == "census_entry_not_found"


def electorate_counts(events: list[dict]) -> list[tuple[str, dict]]:
    return [(e["type"], e["payload"]) for e in events]


def test_a_census_poll_counts_its_eligible_people_once_at_its_close(
        identity: Identity) -> None:
    """At the close, identity counts the eligible entries (Éloïse and Sean: Paul is
    under age, Anh not resident) for the tally's signed reconciliation; every sending
    after that (poll.closed redelivered, the tally asking again) carries the first count,
    even if the census changed since."""
    open_census_poll(identity, "p1")
    assert deliver(identity.core, ElectorateMissing(poll_id="p1")) == []  # still open
    identity.clock.advance(minutes=5)
    closed = PollClosed(poll_id="p1", closed_at=identity.clock())
    first = electorate_counts(deliver(identity.core, closed))
    assert first == [("electorate.counted.v1", {
        "poll_id": "p1", "eligible": 2,
        "counted_at": identity.clock().isoformat().replace("+00:00", "Z")})]
    ok(identity.core, ImportCensus(consultation_id="c1", rows=[row("Martin", "Paul",
                                                                   "2010-01-01")],
                                   minimum_age=16, age_on=ON, actor=ORGANISER))
    identity.clock.advance(minutes=5)
    assert electorate_counts(deliver(identity.core, closed)) == first
    assert electorate_counts(deliver(identity.core, ElectorateMissing(poll_id="p1"))) == first


def test_a_poll_open_to_all_has_no_count_of_eligible_people(identity: Identity) -> None:
    open_census_poll(identity, "p-open", electorate="open")
    assert deliver(identity.core, PollClosed(poll_id="p-open",
                                             closed_at=identity.clock())) == []
    assert deliver(identity.core, ElectorateMissing(poll_id="p-open")) == []
    assert deliver(identity.core, ElectorateMissing(poll_id="p-unknown")) == []


def test_a_close_that_came_before_its_opening_is_counted_at_the_opening(
        identity: Identity) -> None:
    """poll.opened redelivered after poll.closed: the poll stays closed, and its
    electorate, known only now, is counted."""
    assert deliver(identity.core, PollClosed(poll_id="p1", closed_at=identity.clock())) == []
    assert deliver(identity.core, ElectorateMissing(poll_id="p1")) == []  # not known yet
    events = electorate_counts(deliver(identity.core, PollOpened(
        poll_id="p1", consultation_id="c1", rules=RULES, rules_hash=rules_hash(RULES),
        opened_at=identity.clock(), electorate="census")))
    assert [(t, p["eligible"]) for t, p in events] == [("electorate.counted.v1", 2)]
    person = signed_in(identity, "eloise@example.org")
    ok(identity.core, claim(identity, person))
    error = refused(identity.core, IssueVotingTokenV2(
        poll_id="p1", access_token=identity.access(person)))
    assert (error["status"], error["code"]) == (409, "poll_not_open")


def test_the_purge_deletes_a_census_after_its_last_poll_closed(identity: Identity) -> None:
    """URNE_CENSUS_DAYS (90) after the close of the consultation's last census poll,
    identity's purge deletes its census: no entry is claimed any more, and a token for
    a later census poll needs the census uploaded again."""
    person = signed_in(identity, "eloise@example.org")
    ok(identity.core, claim(identity, person))
    open_census_poll(identity, "p1")
    deliver(identity.core, PollClosed(poll_id="p1", closed_at=identity.clock()))
    identity.clock.advance(days=90, seconds=-1)
    assert ok(identity.core, PurgeExpired())[0]["removed"]["censuses"] == 0
    identity.clock.advance(minutes=11)
    assert ok(identity.core, PurgeExpired())[0]["removed"]["censuses"] == 1
    error = refused(identity.core, claim(identity, person))
    assert (error["status"], error["code"]) == (404, "census_entry_not_found")
    open_census_poll(identity, "p2")
    error = refused(identity.core, IssueVotingTokenV2(poll_id="p2",
                                                      access_token=identity.access(person)))
    assert (error["status"], error["code"]) == (403, "census_claim_required")
