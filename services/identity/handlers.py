"""Identity command and event handlers, and the service core that registers them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network
from typing import Literal, NoReturn

from urne.contracts.commands import (
    Actor,
    CheckSignInList,
    ClaimCensusEntry,
    DeclareDistrict,
    DeletePerson,
    GetPerson,
    GetTurnout,
    ImportCensus,
    IssueDeskCode,
    IssueDeskVotingToken,
    IssuePaperVotingTokens,
    IssueSyntheticVotingTokens,
    IssueVotingToken,
    IssueVotingTokenV2,
    ListIdentityActions,
    PurgeExpired,
    RegisterAtDesk,
    RequestLoginCode,
    RequestSmsCode,
    SetRole,
    VerifyDeskCode,
    VerifyLoginCode,
    VerifySmsCode,
)
from urne.contracts.events import (
    ElectorateCounted,
    ElectorateMissing,
    PollClosed,
    PollOpened,
    SignInListMarked,
)
from urne.contracts.fields import paper_serial
from urne.contracts.replies import (
    AccessToken,
    ActionLogView,
    CensusClaim,
    CensusImported,
    DeskCodeIssued,
    LoginCodeSent,
    PaperVotingTokens,
    PersonDeleted,
    PersonView,
    Purged,
    SignInStatus,
    SyntheticVotingTokens,
    Turnout,
    TurnoutCell,
    VotingToken,
)
from urne.contracts.roles import ADMIN, AGENT, PARTICIPANT, STAFF
from urne.crypto.keys import KeySet
from urne.crypto.tokens import InvalidToken, TokenIssuer, TokenVerifier, agent_key
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import (
    Busy,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from urne.platform.logging import log_fields
from urne.services.identity import census, desk, domain, limits, phones, sign_in_list
from urne.services.identity.ports import CodeSender, IdentityStore
from urne.storage.action_log import KEEP as ACTION_LOG_KEEP
from urne.storage.action_log import action_log_view, recorder

log = logging.getLogger(__name__)

# Conditional writes lost to another process in a row before giving up (503).
SWAP_TRIES = 8
# The purge runs at most this often, however often the timer asks.
PURGE_EVERY = timedelta(minutes=10)
# Unused accounts deleted per purge at most (each a few writes): a city's accounts
# falling due together go over several runs.
ACCOUNTS_PER_PURGE = 1_000


@dataclass
class IdentityHandlers:
    store: IdentityStore
    sender: CodeSender
    tokens: TokenIssuer
    secret: str  # keys the pseudonyms
    code_secret: str  # keys the code hashes and the limits' counters: apart, on purpose
    organisers: frozenset[str]  # e-mail addresses that register as organisers
    admins: frozenset[str] = frozenset()  # ... as admins, above the organisers
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    new_code: Callable[[], str] = domain.new_code
    # Load tests may ask for tokens of made-up voters: development and test only.
    synthetic_voters: bool = False
    # Its own token keys, past ones too (a key rotation does not sign everyone out);
    # the current one only if not given.
    token_keys: KeySet | None = None
    # Networks of agents' kiosks, which no per-client limit stops.
    kiosks: tuple[IPv4Network | IPv6Network, ...] = ()
    # Sign-in by SMS: where codes go, and the countries whose mobiles may receive them
    # (none: no SMS is sent). See phones.py on SMS pumping.
    sms: CodeSender | None = None
    sms_countries: frozenset[str] = frozenset()
    # How long a poll's sign-in list is kept after its close (URNE_SIGN_IN_LIST_DAYS).
    sign_in_list_keep: timedelta = timedelta(days=90)
    # How long a consultation's census is kept after its last census poll closed, once
    # none is open (URNE_CENSUS_DAYS): then the purge deletes it (upload it again for a
    # later poll).
    census_keep: timedelta = timedelta(days=90)
    # How long the log of what staff did is kept (URNE_ACTION_LOG_DAYS).
    action_log_keep: timedelta = ACTION_LOG_KEEP
    # How long an account no one signs in to is kept (URNE_ACCOUNT_DAYS), by the month
    # of its last sign-in: three years, as the CNIL advises for inactive accounts.
    account_keep: timedelta = timedelta(days=3 * 365)
    _access: TokenVerifier = field(init=False, repr=False)
    _purged_at: datetime | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Identity checks access tokens with its own key: whoever asks for a voting
        # token proves whose it is, whatever carried the request.
        self._access = TokenVerifier(self.token_keys or self.tokens.key.public)

    def request_login_code(self, cmd: RequestLoginCode, ctx: Context) -> LoginCodeSent:
        return self._send_code(domain.normalise_email(cmd.email), "email", self.sender,
                               cmd.client)

    def request_sms_code(self, cmd: RequestSmsCode, ctx: Context) -> LoginCodeSent:
        phone = phones.textable(cmd.phone, self.sms_countries if self.sms else ())
        assert self.sms is not None  # without a sender, textable refused every number
        return self._send_code(phone, "sms", self.sms, cmd.client)

    def _send_code(self, address: str, channel: Literal["email", "sms"], sender: CodeSender,
                   client_address: str | None) -> LoginCodeSent:
        now = self.clock()
        client = self._client(client_address)
        # The stranger's limit first: their refused requests use none of the address's.
        # A kiosk's network (client None) has no per-client limit: its agents help many
        # people, each with their own address, whose own limit still holds.
        per_client = [] if client is None else [(limits.SENDS_TO_ADDRESS_FROM_CLIENT,
                                                 (client, address))]
        for limit, parts in (*per_client, (limits.SENDS_TO_ADDRESS, (address,))):
            if (wait := self._count(limit, now, *parts)) is not None:
                raise TooManyRequests("too many codes were sent to this address; try again "
                                      "later", code="code_rate_limited",
                                      retry_after=limits.retry_after(wait))
        code = self.new_code()
        key = domain.codes_key(self.code_secret, address)
        self._swap_codes(key, lambda codes: domain.with_new_code(
            self.code_secret, key, codes, now, code))
        ttl = int(domain.CODE_TTL.total_seconds())
        sender.send(address, code, ttl)
        return LoginCodeSent(channel=channel, expires_in=ttl)

    def verify_login_code(self, cmd: VerifyLoginCode, ctx: Context) -> AccessToken:
        email = domain.normalise_email(cmd.email)

        def person(now: datetime) -> domain.Person:
            found = self.store.person_by_email(email)
            if found is not None:
                return found
            role = domain.role_for(email, self.organisers, self.admins)
            return self._add_person(email, lambda pid: domain.Person(pid, email, role, now))

        return self._sign_in_with_code(email, cmd.code, cmd.client, person)

    def verify_sms_code(self, cmd: VerifySmsCode, ctx: Context) -> AccessToken:
        try:
            phone = phones.textable(cmd.phone, self.sms_countries)
        except DomainError:
            phone = cmd.phone  # no code was sent to it: the same 401 as any wrong code

        def person(now: datetime) -> domain.Person:
            # A participant: organisers and admins are named by e-mail address.
            return self.store.person_by_phone(phone) or self._add_person(
                phone, lambda pid: domain.Person(pid, None, PARTICIPANT, now, phone=phone))

        return self._sign_in_with_code(phone, cmd.code, cmd.client, person)

    def _add_person(self, address: str, make: Callable[[str], domain.Person]
                    ) -> domain.Person:
        """The person first signing in with ``address`` (or named by an admin): under the
        id their deleted account left, if they had one (so their voter keys are the
        same, and a poll they voted in takes no second ballot), a new one otherwise."""
        key = domain.departed_key(self.code_secret, address)
        before = self.store.departed(key)
        person = self.store.add_person(make(before or uuid.uuid4().hex))
        if before is not None:
            self.store.forget_departed(key)
        return person

    def delete_person(self, cmd: DeletePerson, ctx: Context) -> PersonDeleted:
        """The person deletes their account (``DELETE /v1/me``): their row goes, with
        their address, phone number, district and desk code. A keyed hash of the address
        stays with their id (``_add_person``). Their census claim stays too: the entry
        is theirs, and comes back with the same id."""
        person = self._person(cmd.person_id)
        self._delete(person)
        return PersonDeleted(person_id=person.person_id)

    def _delete(self, person: domain.Person) -> None:
        address = person.email or person.phone
        self.store.delete_person(person, domain.departed_key(self.code_secret, address)
                                 if address else None, self.clock())

    def _purge_unused_accounts(self, now: datetime) -> int:
        """Delete the accounts not signed in for ``account_keep`` (by month), as their
        owners could (``_delete``), at most ACCOUNTS_PER_PURGE a run."""
        before = _month(now - self.account_keep)
        unused = self.store.unseen_before(before, ACCOUNTS_PER_PURGE)
        for person in unused:
            self._delete(person)
        if len(unused) < ACCOUNTS_PER_PURGE:
            self.store.forget_months_before(before)
        if unused:
            log.info("unused accounts deleted, their retention over",
                     extra=log_fields(deleted=len(unused), not_seen_since=before))
        return len(unused)

    def _sign_in_with_code(self, address: str, code: str, client_address: str | None,
                           person: Callable[[datetime], domain.Person]) -> AccessToken:
        """Sign in the holder of ``address`` with one of its pending codes. 401 for a
        wrong, expired, used or burnt code, or one never sent; a wrong one is counted.

        The code is spent last, by a compare-and-set: everything else the sign-in reads
        or writes (the person, found or added; the month they were seen) comes before,
        so a store fault answers 503 with the code still pending for the retry the 503
        asks for. A code that matched proved the address, so a person added before a
        spend that then failed is the one the retry finds."""
        now = self.clock()
        client = self._client(client_address)
        if client is not None:
            self._refuse_if_reached(limits.FAILURES_FROM_CLIENT, now, client,
                                    "too many wrong codes from this network")
        key = domain.codes_key(self.code_secret, address)
        holder: domain.Person | None = None
        for _ in range(SWAP_TRIES):  # again when another process wrote the codes first
            codes = self.store.login_codes(key)
            if codes is None or not codes.live(now):
                self._wrong_code(now, client)  # nothing to burn: the answer is the same
            if not domain.code_matches(self.code_secret, codes, code, now):
                if self.store.swap_login_codes(codes, domain.after_wrong_code(codes, now)):
                    self._wrong_code(now, client)
                continue
            if holder is None:
                holder = person(now)
                self._seen(holder, now)
            if self.store.swap_login_codes(codes, domain.spent(codes)):
                return self._token(holder, now)
        raise Busy("sign-in codes are too busy to change; retry", code="sign_in_busy")

    def _wrong_code(self, now: datetime, client: str | None) -> NoReturn:
        """Wrong, expired, used, burnt or never sent: one answer for all, so that it
        tells a guesser nothing about the address; the failure counted."""
        if client is not None:
            self._count(limits.FAILURES_FROM_CLIENT, now, client)
        raise Unauthorized("this code is not valid (wrong, expired or already used); "
                           "check it, or ask for a new one", code="code_invalid",
                           keep_writes=True)  # the failure is counted, the code burnt

    # --- people registered at a desk (desk.py) -----------------------------------------
    def _agent(self, actor: Actor, access_token: str, why: str) -> str:
        """The role of the agent (or admin) asking, as stored now, from their own access
        token: what lets people vote is never done on the gateway's word."""
        try:
            claims = self._access.access(access_token)
        except InvalidToken as exc:
            raise Unauthorized(f"access token refused: {exc}", code="invalid_token") from exc
        person = self.store.person(claims.person_id)
        if claims.person_id != actor.person_id or person is None \
                or person.role not in (AGENT, ADMIN):
            raise Forbidden(why, code="forbidden")
        return person.role

    def register_at_desk(self, cmd: RegisterAtDesk, ctx: Context) -> DeskCodeIssued:
        role = self._agent(cmd.actor, cmd.access_token, DESK_ONLY)
        existing = self.store.person(cmd.person_id)
        if existing is not None:
            # The same registration again (a retry): a new card for the same person.
            return self._new_card(existing, role)
        now = self.clock()
        code = desk.new_code()
        issued = desk.issued(self.code_secret, cmd.person_id, code, now)
        person = domain.Person(cmd.person_id, None, PARTICIPANT, now, cmd.district)
        self.store.add_desk_person(person, issued)
        self.store.mark_seen(person, _month(now))  # an account's time counts from here
        return _card(issued, code)

    def issue_desk_code(self, cmd: IssueDeskCode, ctx: Context) -> DeskCodeIssued:
        role = self._agent(cmd.actor, cmd.access_token, DESK_ONLY)
        return self._new_card(self._person(cmd.person_id), role)

    def _new_card(self, person: domain.Person, role: str) -> DeskCodeIssued:
        """A new desk code for ``person``, voiding theirs, given by someone of ``role``."""
        if person.email is not None or person.phone is not None:
            # Their account would become the agent's: they sign in by their own address.
            raise Forbidden("this person signs in by e-mail or SMS; agents give desk codes "
                            "only to people they registered at a desk",
                            code="not_registered_at_desk")
        if role != ADMIN and self.store.desk_card_used(person.person_id):
            # A card in clear lets its holder vote as the person, replacing their ballot:
            # once they have signed in with one, a new one is an admin's to give (a lost
            # card before its first use is the agent's: the usual case).
            raise Forbidden("this person has signed in with a desk card already: an admin "
                            "gives them a new one", code="desk_card_used")
        code = desk.new_code()
        issued = desk.issued(self.code_secret, person.person_id, code, self.clock())
        self.store.save_desk_code(issued)
        return _card(issued, code)

    def verify_desk_code(self, cmd: VerifyDeskCode, ctx: Context) -> AccessToken:
        now = self.clock()
        client = self._client(cmd.client)
        if client is not None:
            self._refuse_if_reached(limits.FAILURES_FROM_CLIENT, now, client,
                                    "too many wrong codes from this network")
        code = desk.normalise(cmd.code)
        code_hash = desk.code_hash(self.code_secret, code) if code is not None else None
        # Everything that reads or writes the store before the card is spent: a card is
        # for one sign-in, and an agent may not give another once it is used, so a
        # store fault must leave it unspent for the retry the 503 asks for. Only the
        # spend itself (a compare-and-set) decides.
        holder = self.store.desk_code_holder(code_hash) if code_hash is not None else None
        person = self.store.person(holder) if holder is not None else None
        if person is not None:
            self._seen(person, now)
        if code_hash is None or person is None or \
                not self.store.spend_desk_code(person.person_id, code_hash, now):
            self._wrong_code(now, client)
        assert person is not None  # _wrong_code raises
        return self._token(person, now)

    def _seen(self, person: domain.Person, now: datetime) -> None:
        # The month only: no sign-in time that a ballot's could be matched with.
        self.store.mark_seen(person, _month(now))

    def _token(self, person: domain.Person, now: datetime) -> AccessToken:
        token, exp = self.tokens.access_token(person.person_id, person.role)
        # The token's time is the issuer's, read a moment after ``now``: across a second
        # boundary, exp - now would say one second more than the token lives.
        expires_in = min(exp - int(now.timestamp()), self.tokens.access_ttl)
        return AccessToken(access_token=token, expires_in=expires_in,
                           role=person.role, person_id=person.person_id)

    def _client(self, address: str | None) -> str | None:
        """The client the limits count, None for a kiosk's (or one unknown)."""
        client = limits.client_of(address)
        return None if limits.exempt(client, self.kiosks) else client

    def _refuse_if_reached(self, limit: limits.Limit, now: datetime, part: str,
                           why: str) -> None:
        """429 ``too_many_attempts`` if ``limit`` allows no more failures now (read only:
        failures are counted by ``_count`` when they happen)."""
        counter = self.store.counter(limits.key(self.code_secret, limit, part))
        wait = limits.reached(limit, counter, now)
        if wait is not None:
            raise TooManyRequests(f"{why}; try again later", code="too_many_attempts",
                                  retry_after=limits.retry_after(wait))

    def _count(self, limit: limits.Limit, now: datetime, *parts: str) -> timedelta | None:
        """Count one event; how long to wait instead if ``limit`` is reached."""
        key = limits.key(self.code_secret, limit, *parts)
        for _ in range(SWAP_TRIES):
            previous = self.store.counter(key)
            outcome = limits.counted(limit, previous, key, now)
            if isinstance(outcome, timedelta):
                return outcome
            if self.store.swap_counter(previous, outcome, limit.window):
                return None
        raise Busy("sign-in limits are too busy to count; retry", code="sign_in_busy")

    def _swap_codes(self, key: str, change: Callable[[domain.LoginCodes | None],
                                                  domain.LoginCodes | None]
                    ) -> domain.LoginCodes | None:
        """Apply ``change`` to an address's codes (``key``: ``domain.codes_key``) as one
        conditional write, reading them again if another process wrote first; what was
        written (None: nothing)."""
        for _ in range(SWAP_TRIES):
            previous = self.store.login_codes(key)
            codes = change(previous)
            if codes is None or self.store.swap_login_codes(previous, codes):
                return codes
        raise Busy("sign-in codes are too busy to change; retry", code="sign_in_busy")

    def _person(self, person_id: str) -> domain.Person:
        person = self.store.person(person_id)
        if person is None:
            raise NotFound(f"no person {person_id}", code="person_not_found")
        return person

    def get_person(self, query: GetPerson, ctx: Context) -> PersonView:
        return _view(self._person(query.person_id))

    def set_role(self, cmd: SetRole, ctx: Context) -> PersonView:
        """An admin grants a role (or takes it back): to a person who signed in, or to
        an address that has not yet, where it awaits them."""
        if cmd.actor.role != ADMIN:
            raise Forbidden("only admins grant roles", code="forbidden")
        email = domain.normalise_email(cmd.email)
        person = self.store.person_by_email(email)
        if person is None:
            person = self._add_person(email, lambda pid: domain.Person(pid, email, cmd.role,
                                                                       self.clock()))
            # Named before their first sign-in (which marks it again): the account's
            # time counts from here.
            self.store.mark_seen(person, _month(person.created_at))
        if person.person_id == cmd.actor.person_id:
            # So that an admin cannot leave the service without one by mistake.
            raise Conflict("an admin does not change their own role; ask another admin",
                           code="own_role")
        if person.role != cmd.role:
            person = replace(person, role=cmd.role)
            self.store.save_role(person)
        return _view(person)

    def list_actions(self, query: ListIdentityActions, ctx: Context) -> ActionLogView:
        return action_log_view("identity", self.store.actions, query)

    def declare_district(self, cmd: DeclareDistrict, ctx: Context) -> PersonView:
        # Stored as declared: the person's word until the electorate issue verifies it
        # against a census (then ``district_verified`` can become true).
        person = self._person(cmd.person_id)
        declared = domain.declare_district(person, cmd.district)
        if declared != person:
            self.store.save_district(declared)
        return _view(declared)

    def _ensure_open(self, poll_id: str) -> None:
        status = self.store.voting_status(poll_id)
        if status is None:
            raise NotFound(f"poll {poll_id} is not open for voting", code="poll_not_found")
        if status != "open":
            raise Conflict(f"poll {poll_id} is {status}", code="poll_not_open")

    def refuse_unproven_voting_token(self, cmd: IssueVotingToken, ctx: Context) -> VotingToken:
        raise Forbidden("voting_token.issue.v1 is retired: a voting token is issued only "
                        "against the person's own access token (voting_token.issue.v2)",
                        code="access_token_required")

    def issue_voting_token(self, cmd: IssueVotingTokenV2, ctx: Context) -> VotingToken:
        try:
            person_id = self._access.access(cmd.access_token).person_id
        except InvalidToken as exc:
            raise Unauthorized(f"access token refused: {exc}", code="invalid_token") from exc
        self._ensure_open(cmd.poll_id)
        return self._voting_token(person_id, self.store.person(person_id), cmd.poll_id,
                                  "online")

    def issue_desk_voting_token(self, cmd: IssueDeskVotingToken, ctx: Context) -> VotingToken:
        self._agent(cmd.actor, cmd.access_token, "only agents (and admins) help people vote "
                    "at a desk")
        self._ensure_open(cmd.poll_id)
        return self._voting_token(cmd.person_id, self._person(cmd.person_id), cmd.poll_id,
                                  cmd.channel, agent_key(cmd.actor.person_id, cmd.poll_id))

    def _voting_token(self, person_id: str, person: domain.Person | None, poll_id: str,
                      channel: str, agent: str | None = None) -> VotingToken:
        voter_key = domain.pseudonym(self.secret, person_id, poll_id)
        if channel != "paper" and any(m.channel == "paper"
                                      for m in self.store.marks_of(poll_id, voter_key)):
            # The vote service would refuse the ballot anyway (it decides); told now.
            raise Conflict("this person has voted on paper, at a desk, and a paper ballot "
                           "cannot be replaced", code="voted_on_paper")
        # The declared district, if any (see Person.district); vote and tally learn the
        # district from the token, never who the person is.
        district = person.district if person is not None else None
        frozen = self.store.electorate(poll_id)
        if frozen is not None and frozen[1] == "census":
            if channel == "paper":  # as for the papers themselves (issue_paper_voting_tokens)
                raise Conflict("paper ballots are taken in polls open to all; this poll is "
                               "open to its consultation's census only",
                               code="paper_census_poll")
            # Only a claimed, eligible census entry; the district is the census's.
            district = self._census_entry(frozen[0], person_id).district
        # A person's "paper" token is the mark's alone (paper_mark): it casts no ballot.
        token, exp = self.tokens.voting_token(voter_key, poll_id, district, channel=channel,
                                              paper_mark=channel == "paper", agent=agent)
        return VotingToken(poll_id=poll_id, voting_token=token,
                           expires_at=datetime.fromtimestamp(exp, UTC))

    def issue_paper_voting_tokens(self, cmd: IssuePaperVotingTokens,
                                  ctx: Context) -> PaperVotingTokens:
        """Tokens for the paper ballots an agent enters: one per serial, its voter key the
        pseudonym of the serial (so the same paper entered twice is one voter, and never
        a person's), its channel ``paper``."""
        self._agent(cmd.actor, cmd.access_token, "only agents (and admins) enter paper ballots")
        self._ensure_open(cmd.poll_id)
        frozen = self.store.electorate(cmd.poll_id)
        if frozen is not None and frozen[1] == "census":
            # Who may vote is the census's, claim by claim: nothing ties a paper to an
            # entry yet (the sign-in list will).
            raise Conflict("paper ballots are taken in polls open to all; this poll is "
                           "open to its consultation's census only", code="paper_census_poll")
        serials = [paper_serial(serial) for serial in cmd.serials]
        if len(set(serials)) != len(serials):
            raise DomainError("a serial appears twice in this batch", code="paper_serial_twice",
                              status=422)
        agent = agent_key(cmd.actor.person_id, cmd.poll_id)
        tokens = [self.tokens.voting_token(
            domain.pseudonym(self.secret, domain.paper_voter(serial), cmd.poll_id),
            cmd.poll_id, cmd.district, channel="paper", agent=agent)[0] for serial in serials]
        return PaperVotingTokens(poll_id=cmd.poll_id, voting_tokens=tokens)

    def issue_synthetic_voting_tokens(self, cmd: IssueSyntheticVotingTokens,
                                      ctx: Context) -> SyntheticVotingTokens:
        if not self.synthetic_voters:
            raise Forbidden("synthetic voters exist only in development and test",
                            code="synthetic_voters_refused")
        self._ensure_open(cmd.poll_id)
        tokens = [self.tokens.voting_token(
            domain.pseudonym(self.secret, f"synthetic-{uuid.uuid4().hex}", cmd.poll_id),
            cmd.poll_id, district)[0] for district in domain.spread(cmd.districts, cmd.count)]
        return SyntheticVotingTokens(poll_id=cmd.poll_id, voting_tokens=tokens)

    def _census_entry(self, consultation_id: str, person_id: str) -> census.CensusEntry:
        key = self.store.census_claim(consultation_id, person_id)
        entry = self.store.census_entry(consultation_id, key) if key else None
        if entry is None or entry.claimed_by != person_id:
            raise Forbidden("this poll is open to the consultation's census only: claim your "
                            f"entry first (POST /v1/consultations/{consultation_id}/census/"
                            "claim)", code="census_claim_required")
        if not entry.eligible:
            raise Forbidden("your census entry is not eligible to vote in this poll (age "
                            "or residence)", code="not_eligible")
        return entry

    # --- the census ------------------------------------------------------------------
    def import_census(self, cmd: ImportCensus, ctx: Context) -> CensusImported:
        if cmd.actor.role not in STAFF:  # the gateway checked more: that they organise it
            raise Forbidden("only a consultation's organisers upload its census",
                            code="forbidden")
        if self.store.open_census_polls(cmd.consultation_id):
            # The gateway looked before reading the file; a poll may have opened since
            # (a city's list goes in many parts). Who may vote is frozen with the poll.
            raise Conflict("a census poll of this consultation is open: its census changes "
                           "only before it opens or after it closes", code="census_frozen")
        entries: dict[str, census.CensusEntry] = {}  # by key: a person listed twice, once
        emails: dict[str, str] = {}
        shared: set[str] = set()  # addresses of several people (a family's): no claim by them
        for row in cmd.rows:
            key = census.entry_key(self.code_secret, cmd.consultation_id, row.family_name,
                                   row.given_name, row.birth_date)
            entries[key] = census.CensusEntry(
                cmd.consultation_id, key, row.district,
                census.eligible(row.resident, row.birth_date, cmd.minimum_age, cmd.age_on))
            if row.email is not None:
                email = census.email_key(self.code_secret, cmd.consultation_id,
                                         domain.normalise_email(row.email))
                if emails.setdefault(email, key) != key:
                    shared.add(email)
        for email in shared:
            emails[email] = census.SHARED
        self.store.save_census(list(entries.values()), list(emails.items()))
        return CensusImported(consultation_id=cmd.consultation_id, rows=len(entries),
                              eligible=sum(e.eligible for e in entries.values()))

    def claim_census_entry(self, cmd: ClaimCensusEntry, ctx: Context) -> CensusClaim:
        try:
            person_id = self._access.access(cmd.access_token).person_id
        except InvalidToken as exc:
            raise Unauthorized(f"access token refused: {exc}", code="invalid_token") from exc
        given = (cmd.family_name, cmd.given_name, cmd.birth_date)
        if any(v is not None for v in given) and any(v is None for v in given):
            raise DomainError("give your family name, given name and birth date, or none of "
                              "them (to be found by your e-mail address)",
                              code="census_claim_incomplete", status=422)
        now = self.clock()
        client = self._client(cmd.client)
        # Guesses are limited per account, and per client as wrong sign-in codes are
        # (the same counter): many accounts on one client do not buy more.
        counted = [(census.CLAIM_FAILURES, person_id)]
        if client is not None:
            counted.append((limits.FAILURES_FROM_CLIENT, client))
        for limit, part in counted:
            self._refuse_if_reached(limit, now, part, "too many claims found no census entry")
        key = self._census_key(cmd, person_id)
        entry = self.store.census_entry(cmd.consultation_id, key) if key else None
        if key is None or entry is None:
            for limit, part in counted:
                self._count(limit, now, part)
            raise NotFound("no entry of this consultation's census matches; check the "
                           "spelling and the birth date, or ask the organisers",
                           code="census_entry_not_found", keep_writes=True)
        c = cmd.consultation_id
        # The account's reservation first, then the entry: a crash in between leaves a
        # reservation of an entry it does not hold, which the next claim finishes (the
        # same entry) or drops (another one); never an entry held with nothing pointing
        # to it. A token needs both (``_census_entry``).
        held = self.store.census_claim(c, person_id)
        if held is not None and held != key:
            other = self.store.census_entry(c, held)
            if other is not None and other.claimed_by == person_id:
                raise Conflict("your account holds another entry of this census",
                               code="census_already_claimed")
            self.store.drop_census_claim(c, person_id, held)  # a claim a crash cut short
            held = None
        if held is None and self.store.add_census_claim(c, person_id, key) != key:
            raise Conflict("your account holds another entry of this census",
                           code="census_already_claimed")  # another claim of it won
        if self.store.claim_census_entry(c, key, person_id) != person_id:
            self.store.drop_census_claim(c, person_id, key)
            raise Conflict("this census entry was claimed by another account; if it is "
                           "yours, ask the organisers", code="census_entry_claimed")
        return CensusClaim(consultation_id=cmd.consultation_id, district=entry.district,
                           eligible=entry.eligible)

    def _census_key(self, cmd: ClaimCensusEntry, person_id: str) -> str | None:
        if cmd.family_name is not None and cmd.given_name is not None \
                and cmd.birth_date is not None:
            return census.entry_key(self.code_secret, cmd.consultation_id, cmd.family_name,
                                    cmd.given_name, cmd.birth_date)
        person = self.store.person(person_id)
        if person is None or person.email is None:
            return None
        return self.store.census_entry_key_by_email(
            cmd.consultation_id, census.email_key(self.code_secret, cmd.consultation_id,
                                                  person.email)) or None  # SHARED: by name

    # --- the sign-in list (sign_in_list.py) ---------------------------------------------
    def on_sign_in_list_marked(self, event: SignInListMarked, ctx: Context) -> None:
        # A mark come after its poll's list was deleted (an event replayed months later)
        # is dropped: nothing would ever delete it again. One read a poll of the event.
        gone = {p for p in {v.poll_id for v in event.voters}
                if self.store.sign_in_list_purged(p)}
        self.store.mark_voters([sign_in_list.Mark(v.poll_id, v.voter_key, v.channel,
                                                  v.district)
                                for v in event.voters if v.poll_id not in gone])

    def get_turnout(self, query: GetTurnout, ctx: Context) -> Turnout:
        if query.actor.role not in STAFF:  # the gateway checked more: that they organise it
            raise Forbidden("only a consultation's organisers see its turnout", code="forbidden")
        counted = sign_in_list.count(self.store.marks(query.poll_id))
        return Turnout(poll_id=query.poll_id, voters=counted.voters, channels=counted.channels,
                       districts=[TurnoutCell(district=c.district, voters=c.voters,
                                              channels=c.channels) for c in counted.districts])

    def check_sign_in_list(self, cmd: CheckSignInList, ctx: Context) -> SignInStatus:
        self._agent(cmd.actor, cmd.access_token, "only agents (and admins) read the sign-in "
                    "list at a desk")
        # 404 for a poll or a person that is not there: an agent is told of a typo.
        if self.store.voting_status(cmd.poll_id) is None:
            raise NotFound(f"poll {cmd.poll_id} has not opened", code="poll_not_found")
        self._person(cmd.person_id)
        marks = self.store.marks_of(cmd.poll_id,
                                    domain.pseudonym(self.secret, cmd.person_id, cmd.poll_id))
        channels = sorted({m.channel for m in marks})
        return SignInStatus(poll_id=cmd.poll_id, person_id=cmd.person_id, voted=bool(channels),
                            channels=channels)

    def purge_expired(self, cmd: PurgeExpired, ctx: Context) -> Purged:
        now = self.clock()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return Purged(removed={})
        removed = self.store.purge_expired(now)
        removed["sign_in_lists"] = self.store.purge_sign_in_lists(now - self.sign_in_list_keep)
        censuses = self.store.censuses_to_purge(now - self.census_keep)
        for consultation_id in censuses:
            self.store.purge_census(consultation_id, now)
            log.info("census deleted, its retention over", extra=log_fields(
                consultation_id=consultation_id))
        removed["censuses"] = len(censuses)
        removed["action_log"] = self.store.actions.purge(now - self.action_log_keep)
        removed["accounts"] = self._purge_unused_accounts(now)
        self._purged_at = now
        return Purged(removed=removed)

    def on_poll_opened(self, event: PollOpened, ctx: Context) -> None:
        # The store never lets an opening reopen a closed poll (a late redelivery, or the
        # close taken at the same moment by another process); its electorate is kept all
        # the same. Read after the write: a close that came first, or meanwhile, finds
        # the electorate stored or is found here, and the count is made once.
        self.store.open_poll(event.poll_id, event.consultation_id, event.electorate)
        if self.store.voting_status(event.poll_id) == "closed":
            self._count_electorate(event.poll_id, ctx)

    def on_poll_closed(self, event: PollClosed, ctx: Context) -> None:
        self.store.close_poll(event.poll_id, event.closed_at)
        self._count_electorate(event.poll_id, ctx)

    def on_electorate_missing(self, event: ElectorateMissing, ctx: Context) -> None:
        """The tally waits for a census poll's count (electorate.counted lost on the
        way, or a stop between the count and its sending): sent again, the same."""
        if self.store.voting_status(event.poll_id) == "closed":
            self._count_electorate(event.poll_id, ctx)

    def _count_electorate(self, poll_id: str, ctx: Context) -> None:
        """A closed census poll's eligible people, for the signed reconciliation: counted
        once (the census may be uploaded again later; the count at the close stays)."""
        frozen = self.store.electorate(poll_id)
        if frozen is None or frozen[1] != "census":
            return  # open to all (or its poll.opened still on the way): no such number
        kept = self.store.eligible(poll_id) or self.store.save_eligible(
            poll_id, self.store.count_eligible(frozen[0]), self.clock())
        ctx.emit(ElectorateCounted(poll_id=poll_id, eligible=kept[0], counted_at=kept[1]))

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="identity",
            commands={
                RequestLoginCode: self.request_login_code,
                VerifyLoginCode: self.verify_login_code,
                RequestSmsCode: self.request_sms_code,
                VerifySmsCode: self.verify_sms_code,
                RegisterAtDesk: self.register_at_desk,
                IssueDeskCode: self.issue_desk_code,
                VerifyDeskCode: self.verify_desk_code,
                IssuePaperVotingTokens: self.issue_paper_voting_tokens,
                IssueDeskVotingToken: self.issue_desk_voting_token,
                GetPerson: self.get_person,
                DeletePerson: self.delete_person,
                DeclareDistrict: self.declare_district,
                IssueVotingToken: self.refuse_unproven_voting_token,
                IssueVotingTokenV2: self.issue_voting_token,
                IssueSyntheticVotingTokens: self.issue_synthetic_voting_tokens,
                SetRole: self.set_role,
                ListIdentityActions: self.list_actions,
                ImportCensus: self.import_census,
                ClaimCensusEntry: self.claim_census_entry,
                PurgeExpired: self.purge_expired,
                GetTurnout: self.get_turnout,
                CheckSignInList: self.check_sign_in_list,
            },
            subscriptions={PollOpened: self.on_poll_opened, PollClosed: self.on_poll_closed,
                           SignInListMarked: self.on_sign_in_list_marked,
                           ElectorateMissing: self.on_electorate_missing},
            ping=self.store.ping,
            log_action=recorder(self.store.actions, self.clock, self.action_log_keep),
        )


DESK_ONLY = "only agents (and admins) register people at a desk"


def _month(moment: datetime) -> str:
    """YYYY-MM: the only time identity keeps of a sign-in."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def _card(issued: desk.DeskCode, code: str) -> DeskCodeIssued:
    return DeskCodeIssued(person_id=issued.person_id, code=code, expires_at=issued.expires_at)


def _view(person: domain.Person) -> PersonView:
    return PersonView(person_id=person.person_id, email=person.email, phone=person.phone,
                      role=person.role, district=person.district, district_verified=False)
