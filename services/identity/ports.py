"""What the identity core needs from the outside world."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Protocol

from urne.services.identity.census import CensusEntry
from urne.services.identity.desk import DeskCode
from urne.services.identity.domain import LoginCodes, Person, VotingStatus
from urne.services.identity.limits import Counter
from urne.services.identity.sign_in_list import Mark
from urne.storage.action_log import ActionLog


class IdentityStore(Protocol):
    @property
    def actions(self) -> ActionLog:
        """What admins did here: appended, never changed."""
        ...
    def person_by_email(self, email: str) -> Person | None: ...
    def person_by_phone(self, phone: str) -> Person | None: ...
    def person(self, person_id: str) -> Person | None: ...
    def add_person(self, person: Person) -> Person:
        """Insert, or return the person who already holds that e-mail address (or, with
        none, that phone number): race-safe."""
        ...
    def add_desk_person(self, person: Person, code: DeskCode) -> None:
        """Insert a person an agent registered (no e-mail, no phone) unless they are
        there already, and make ``code`` theirs."""
        ...
    def save_desk_code(self, code: DeskCode) -> None:
        """Make ``code`` the person's desk code, in place of any previous one."""
        ...
    def desk_code_holder(self, code_hash: str) -> str | None:
        """Whose desk code this is or was (a read: nothing spent, expiry not checked)."""
        ...
    def spend_desk_code(self, person_id: str, code_hash: str, now: datetime) -> bool:
        """Whether this is the person's current, unexpired desk code, then cleared.
        Atomic across processes: a code signs in once. The person is marked as having
        used a desk card (``desk_card_used``)."""
        ...
    def desk_card_used(self, person_id: str) -> bool:
        """Whether the person has ever signed in with a desk card."""
        ...
    def delete_person(self, person: Person, departed_key: str | None, now: datetime) -> None:
        """Delete the person's row (and with it their address, phone number, district,
        desk code); keep ``departed_key`` (a keyed hash of their address) with their id,
        written first, so a stop midway leaves nothing unfindable."""
        ...
    def departed(self, departed_key: str) -> str | None:
        """The person id a deleted account left under this key, if any."""
        ...
    def forget_departed(self, departed_key: str) -> None:
        """The person signed in again: their row holds the id now."""
        ...
    def mark_seen(self, person: Person, month: str) -> None:
        """The person signed in in ``month`` (YYYY-MM)."""
        ...
    def unseen_before(self, month: str, limit: int) -> list[Person]:
        """At most ``limit`` people last seen before ``month`` (YYYY-MM)."""
        ...
    def forget_months_before(self, month: str) -> None:
        """Everyone last seen before ``month`` is deleted: what finds them may go."""
        ...
    def save_role(self, person: Person) -> None:
        """Store ``person.role`` for that person, who is stored already."""
        ...
    def save_district(self, person: Person) -> None:
        """Store ``person.district`` for that person, who is stored already."""
        ...
    def login_codes(self, key: str) -> LoginCodes | None:
        """The codes of a sign-in address (an e-mail address or a phone number), found
        by its keyed hash (``domain.codes_key``)."""
        ...
    def swap_login_codes(self, previous: LoginCodes | None, codes: LoginCodes) -> bool:
        """Store ``codes`` if the stored ones are still ``previous`` (same version, or
        none): False if another process wrote in between. Atomic across processes."""
        ...
    def counter(self, key: str) -> Counter | None: ...
    def swap_counter(self, previous: Counter | None, counter: Counter, keep: timedelta) -> bool:
        """As ``swap_login_codes``, for a limit's counter; ``keep`` is how long it
        matters (a store may forget it after that)."""
        ...
    def set_voting_status(self, poll_id: str, status: VotingStatus) -> None: ...
    def close_poll(self, poll_id: str, closed_at: datetime) -> None:
        """No more voting tokens for the poll; ``closed_at`` is when it closed."""
        ...
    def voting_status(self, poll_id: str) -> VotingStatus | None: ...
    def open_poll(self, poll_id: str, consultation_id: str, electorate: str) -> None:
        """The poll is open, to whom ``poll.opened`` froze: one write, so a census poll
        is never seen open without its electorate. A closed poll stays closed, whatever
        the order the two writes come in (no read first); its electorate is kept."""
        ...
    def electorate(self, poll_id: str) -> tuple[str, str] | None:
        """(consultation id, electorate) of the poll; None if not known."""
        ...
    def save_eligible(self, poll_id: str, eligible: int, counted_at: datetime
                      ) -> tuple[int, datetime]:
        """Keep a census poll's count of eligible people at its close, unless one is kept
        already (the first count wins); the count kept, and when it was made."""
        ...
    def eligible(self, poll_id: str) -> tuple[int, datetime] | None:
        """The count kept by ``save_eligible``; None if none."""
        ...
    # --- the census (services/identity/census.py) ---------------------------------
    def open_census_polls(self, consultation_id: str) -> list[str]:
        """The consultation's ``census`` polls open here (poll.opened seen, poll.closed
        not yet)."""
        ...
    def censuses_to_purge(self, closed_before: datetime) -> list[str]:
        """The consultations holding a census whose census polls are all closed, the
        last one before ``closed_before`` (a consultation with no census poll keeps its
        census: a poll of it may still come)."""
        ...
    def purge_census(self, consultation_id: str, now: datetime) -> None:
        """Delete the consultation's census (entries, e-mail keys, claims) and note
        when. A stop midway: called again, it deletes the rest."""
        ...
    def count_eligible(self, consultation_id: str) -> int:
        """How many entries of the consultation's census are eligible."""
        ...
    def save_census(self, entries: list[CensusEntry], emails: list[tuple[str, str]]) -> None:
        """Add or update ``entries`` (their district and eligibility; who claimed one is
        kept), and the (e-mail key, entry key) pairs of the same consultation; a census
        deleted before (``purge_census``) is one again. An address stored for another
        entry before (an earlier part or upload), or given as ``census.SHARED``, is stored
        as ``SHARED`` from then on: nobody claims by it."""
        ...
    def census_entry(self, consultation_id: str, entry_key: str) -> CensusEntry | None: ...
    def census_entry_key_by_email(self, consultation_id: str, email_key: str) -> str | None: ...
    def claim_census_entry(self, consultation_id: str, entry_key: str, person_id: str) -> str:
        """Mark the (existing) entry claimed by ``person_id`` unless someone claimed it
        already; who holds it now. Atomic across processes."""
        ...
    def drop_census_claim(self, consultation_id: str, person_id: str, entry_key: str) -> None:
        """Undo ``add_census_claim`` if the person's claim is still ``entry_key``."""
        ...
    def census_claim(self, consultation_id: str, person_id: str) -> str | None:
        """The entry key the person claimed in the consultation's census."""
        ...
    def add_census_claim(self, consultation_id: str, person_id: str, entry_key: str) -> str:
        """Reserve the entry for the person unless they have a claim already; the entry
        key stored now (another one if they claimed another entry first). Atomic across
        processes."""
        ...
    # --- the sign-in list (services/identity/sign_in_list.py) ------------------------
    def mark_voters(self, marks: list[Mark]) -> None:
        """Add the marks; a mark stored already stays as it is (idempotent), and none
        is stored with a time."""
        ...
    def marks_of(self, poll_id: str, voter_key: str) -> list[Mark]:
        """The voter's marks in the poll (one per channel), if any."""
        ...
    def marks(self, poll_id: str) -> Iterator[Mark]:
        """Every mark of the poll."""
        ...
    def sign_in_list_purged(self, poll_id: str) -> bool:
        """Whether the poll's list was deleted (its retention over)."""
        ...
    def purge_sign_in_lists(self, closed_before: datetime) -> int:
        """Delete the sign-in list of every poll closed before ``closed_before`` (once);
        how many polls' lists were deleted."""
        ...
    def purge_expired(self, now: datetime) -> dict[str, int]:
        """Delete sign-in codes of which none is pending any more, limit counters whose
        window ended before ``now - LONGEST_WINDOW``, and expired desk codes; rows
        deleted, by table."""
        ...
    def ping(self) -> None: ...


class CodeSender(Protocol):
    """Sends a sign-in code to an e-mail address or (an SMS sender) a phone number."""

    def send(self, to: str, code: str, expires_in: int) -> None: ...
