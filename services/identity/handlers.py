"""Identity command and event handlers, and the service core that registers them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network

from urne.contracts.commands import (
    DeclareDistrict,
    GetPerson,
    IssueSyntheticVotingTokens,
    IssueVotingToken,
    IssueVotingTokenV2,
    ListIdentityActions,
    RequestLoginCode,
    SetRole,
    VerifyLoginCode,
)
from urne.contracts.events import PollClosed, PollOpened
from urne.contracts.replies import (
    AccessToken,
    ActionLogView,
    LoginCodeSent,
    PersonView,
    SyntheticVotingTokens,
    VotingToken,
)
from urne.contracts.roles import ADMIN
from urne.crypto.keys import KeySet
from urne.crypto.tokens import InvalidToken, TokenIssuer, TokenVerifier
from urne.messaging.kernel import Context, ServiceCore
from urne.platform.errors import (
    Busy,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from urne.services.identity import domain, limits
from urne.services.identity.ports import CodeSender, IdentityStore
from urne.storage.action_log import action_log_view, recorder

# Conditional writes lost to another process in a row before giving up (503).
SWAP_TRIES = 8


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
    _access: TokenVerifier = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Identity checks access tokens with its own key: whoever asks for a voting
        # token proves whose it is, whatever carried the request.
        self._access = TokenVerifier(self.token_keys or self.tokens.key.public)

    def request_login_code(self, cmd: RequestLoginCode, ctx: Context) -> LoginCodeSent:
        email = domain.normalise_email(cmd.email)
        now = self.clock()
        client = self._client(cmd.client)
        # The stranger's limit first: their refused requests use none of the address's.
        for limit, parts in ((limits.SENDS_TO_ADDRESS_FROM_CLIENT, (client or "", email)),
                             (limits.SENDS_TO_ADDRESS, (email,))):
            if (wait := self._count(limit, now, *parts)) is not None:
                raise TooManyRequests("too many codes were sent to this address; try again "
                                      "later", code="code_rate_limited",
                                      retry_after=limits.retry_after(wait))
        code = self.new_code()
        self._swap_codes(email, lambda codes: domain.with_new_code(self.code_secret, email, codes,
                                                                   now, code))
        ttl = int(domain.CODE_TTL.total_seconds())
        self.sender.send(email, code, ttl)
        return LoginCodeSent(channel="email", expires_in=ttl)

    def verify_login_code(self, cmd: VerifyLoginCode, ctx: Context) -> AccessToken:
        email = domain.normalise_email(cmd.email)
        now = self.clock()
        client = self._client(cmd.client)
        if client is not None:
            failures = limits.key(self.code_secret, limits.FAILURES_FROM_CLIENT, client)
            wait = limits.reached(limits.FAILURES_FROM_CLIENT, self.store.counter(failures),
                                  now)
            if wait is not None:
                raise TooManyRequests("too many wrong codes from this network; try again "
                                      "later", code="too_many_attempts",
                                      retry_after=limits.retry_after(wait))
        matched = False

        def verdict(codes: domain.LoginCodes | None) -> domain.LoginCodes | None:
            # Called again if another process wrote first: ``matched`` is the last call's.
            nonlocal matched
            matched = codes is not None and domain.code_matches(self.code_secret, codes,
                                                                cmd.code, now)
            if codes is None or not codes.live(now):
                return None  # nothing to burn: the answer is the same
            return domain.spent(codes) if matched else domain.after_wrong_code(codes, now)

        self._swap_codes(email, verdict)
        if not matched:
            # Wrong, expired, used, burnt or never sent: one answer for all, so that it
            # tells a guesser nothing about the address.
            if client is not None:
                self._count(limits.FAILURES_FROM_CLIENT, now, client)
            raise Unauthorized("this code is not valid (wrong, expired or already used); "
                               "check it, or ask for a new one", code="code_invalid",
                               keep_writes=True)  # the failure is counted, the code burnt
        person = self.store.person_by_email(email)
        if person is None:
            role = domain.role_for(email, self.organisers, self.admins)
            person = self.store.add_person(domain.Person(uuid.uuid4().hex, email, role, now))
        token, exp = self.tokens.access_token(person.person_id, person.role)
        return AccessToken(access_token=token, expires_in=exp - int(now.timestamp()),
                           role=person.role, person_id=person.person_id)

    def _client(self, address: str | None) -> str | None:
        """The client the limits count, None for a kiosk's (or one unknown)."""
        client = limits.client_of(address)
        return None if limits.exempt(client, self.kiosks) else client

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

    def _swap_codes(self, email: str, change: Callable[[domain.LoginCodes | None],
                                                      domain.LoginCodes | None]
                    ) -> domain.LoginCodes | None:
        """Apply ``change`` to the address's codes as one conditional write, reading them
        again if another process wrote first; what was written (None: nothing)."""
        for _ in range(SWAP_TRIES):
            previous = self.store.login_codes(email)
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
            person = self.store.add_person(domain.Person(uuid.uuid4().hex, email, cmd.role,
                                                         self.clock()))
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
        voter_key = domain.pseudonym(self.secret, person_id, cmd.poll_id)
        # The declared district, if any (see Person.district); vote and tally learn the
        # district from the token, never who the person is.
        person = self.store.person(person_id)
        district = person.district if person is not None else None
        token, exp = self.tokens.voting_token(voter_key, cmd.poll_id, district)
        return VotingToken(poll_id=cmd.poll_id, voting_token=token,
                           expires_at=datetime.fromtimestamp(exp, UTC))

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

    def on_poll_opened(self, event: PollOpened, ctx: Context) -> None:
        # A late redelivery of "opened" must not reopen a closed poll.
        if self.store.voting_status(event.poll_id) != "closed":
            self.store.set_voting_status(event.poll_id, "open")

    def on_poll_closed(self, event: PollClosed, ctx: Context) -> None:
        self.store.set_voting_status(event.poll_id, "closed")

    def core(self) -> ServiceCore:
        return ServiceCore(
            name="identity",
            commands={
                RequestLoginCode: self.request_login_code,
                VerifyLoginCode: self.verify_login_code,
                GetPerson: self.get_person,
                DeclareDistrict: self.declare_district,
                IssueVotingToken: self.refuse_unproven_voting_token,
                IssueVotingTokenV2: self.issue_voting_token,
                IssueSyntheticVotingTokens: self.issue_synthetic_voting_tokens,
                SetRole: self.set_role,
                ListIdentityActions: self.list_actions,
            },
            subscriptions={PollOpened: self.on_poll_opened, PollClosed: self.on_poll_closed},
            ping=self.store.ping,
            log_action=recorder(self.store.actions, self.clock),
        )


def _view(person: domain.Person) -> PersonView:
    return PersonView(person_id=person.person_id, email=person.email, role=person.role,
                      district=person.district, district_verified=False)
