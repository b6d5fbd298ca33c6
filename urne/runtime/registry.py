"""Every service urne runs, listed explicitly, and how each one is wired.

This is the one place that knows the concrete parts: which store each service
gets in each profile, which keys it holds, where its migrations are. The embedded
profile (``embedded.py``), the nameko services (``nameko_services.py``), ``urne
migrate`` and the tests all read ``SERVICES``; adding a service means adding one
``ServiceSpec`` here (see "How to add a service" in docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from cassandra.cluster import Session

import urne.services.identity
import urne.services.proposal
import urne.services.tally
import urne.services.vote
from urne.contracts.commands import CheckPolls, PurgeBallots, PurgeExpired, RunSchedule
from urne.contracts.envelope import Command
from urne.crypto.keys import IDENTITY_TOKEN_KEY, TALLY_RESULT_KEY, load_key_set, load_signing_key
from urne.crypto.tokens import TokenIssuer, TokenVerifier
from urne.messaging.kernel import ServiceCore
from urne.platform.settings import DEV_CODE_SECRET, DEV_PSEUDONYM_SECRET
from urne.services.identity import phones
from urne.services.identity.adapters.cassandra_store import CassandraIdentityStore
from urne.services.identity.adapters.outbox_sender import FileOutboxSender
from urne.services.identity.adapters.sms_http_sender import HttpSmsSender
from urne.services.identity.adapters.smtp_sender import SmtpSender
from urne.services.identity.adapters.sqlite_store import SqliteIdentityStore
from urne.services.identity.handlers import IdentityHandlers
from urne.services.identity.limits import networks
from urne.services.identity.ports import CodeSender, IdentityStore
from urne.services.proposal.adapters.cassandra_store import CassandraProposalStore
from urne.services.proposal.adapters.sqlite_store import SqliteProposalStore
from urne.services.proposal.handlers import ProposalHandlers
from urne.services.proposal.ports import ProposalStore
from urne.services.tally.adapters.cassandra_store import CassandraTallyStore
from urne.services.tally.adapters.sqlite_store import SqliteTallyStore
from urne.services.tally.handlers import TallyHandlers
from urne.services.tally.ports import TallyStore
from urne.services.vote.adapters.cassandra_store import CassandraVoteStore
from urne.services.vote.adapters.sqlite_store import SqliteVoteStore
from urne.services.vote.handlers import VoteHandlers
from urne.services.vote.intake import BallotIntake
from urne.services.vote.ports import VoteStore
from urne.storage.migrations import Migrations
from urne.storage.sqlite import SqliteDb

StoreT = TypeVar("StoreT")


class ServiceConfig(Protocol):
    """What the services' wiring reads from settings; ``EmbeddedSettings`` and
    ``ServiceSettings`` both provide it."""

    @property
    def keys_dir(self) -> Path: ...
    @property
    def outbox_dir(self) -> Path: ...
    @property
    def pseudonym_secret(self) -> str: ...
    @property
    def code_secret(self) -> str: ...
    @property
    def organiser_emails(self) -> str: ...
    @property
    def admin_emails(self) -> str: ...
    @property
    def kiosk_networks(self) -> str: ...
    @property
    def sign_in_list_days(self) -> int: ...
    @property
    def census_days(self) -> int: ...
    @property
    def action_log_days(self) -> int: ...
    @property
    def participation_days(self) -> int: ...
    @property
    def account_days(self) -> int: ...
    @property
    def tree_head_seconds(self) -> int: ...
    @property
    def tree_head_min_ballots(self) -> int: ...
    @property
    def tally_copy_days(self) -> int: ...
    @property
    def vote_ballot_days(self) -> int: ...
    @property
    def min_cell(self) -> int: ...
    @property
    def smtp_url(self) -> str: ...
    @property
    def mail_from(self) -> str: ...
    @property
    def sms_countries(self) -> str: ...
    @property
    def sms_url(self) -> str: ...
    @property
    def sms_token(self) -> str: ...
    @property
    def sms_from(self) -> str: ...
    @property
    def is_development(self) -> bool: ...
    @property
    def max_ballots_per_voter(self) -> int: ...
    @property
    def max_proposals_per_person(self) -> int: ...
    @property
    def ballot_shards(self) -> int: ...
    @property
    def counting_shards(self) -> int: ...
    @property
    def counting_stream(self) -> str: ...
    @property
    def counted_by_workers(self) -> bool: ...


@dataclass(frozen=True)
class ServiceSpec(Generic[StoreT]):
    name: str
    migrations: Migrations
    sqlite_store: Callable[[SqliteDb], StoreT]
    cassandra_store: Callable[[Session, str], StoreT]  # (session, keyspace)
    core: Callable[[StoreT, ServiceConfig], ServiceCore]
    # The batched ballot path, for the one service that has it: (store, config, shards).
    intake: Callable[[StoreT, ServiceConfig, int], BallotIntake] | None = None
    # A command the runtime sends the service every SCHEDULE_INTERVAL_SECONDS (the
    # embedded profile's ticker, a nameko timer), for work no request starts.
    periodic: type[Command] | None = None


# How often a service's periodic command runs: a scheduled poll opens or closes within
# about this long after its time (plus the close's grace, ProposalHandlers.close_grace).
SCHEDULE_INTERVAL_SECONDS = 1.0


def _emails(listed: str) -> frozenset[str]:
    return frozenset(e.strip().lower() for e in listed.split(",") if e.strip())


def pseudonym_secret(config: ServiceConfig) -> str:
    """Identity's secret of pseudonyms: given, or the development one in development."""
    return _identity_secret(config.pseudonym_secret, "URNE_PSEUDONYM_SECRET",
                            DEV_PSEUDONYM_SECRET, config.is_development)


def code_secret(config: ServiceConfig) -> str:
    """Identity's secret of code hashes and limits: given, or the development one."""
    return _identity_secret(config.code_secret, "URNE_CODE_SECRET", DEV_CODE_SECRET,
                            config.is_development)


def _identity_secret(given: str, name: str, development: str, is_development: bool) -> str:
    if given:
        return given
    if not is_development:
        raise RuntimeError(f"{name} must be set for identity outside development")
    return development


def code_sender(config: ServiceConfig) -> CodeSender:
    """SMTP when configured, else the file outbox (development, tests, or a relay)."""
    if config.smtp_url:
        return SmtpSender(config.smtp_url, config.mail_from)
    return FileOutboxSender(config.outbox_dir, echo_codes=config.is_development)


def sms_sender(config: ServiceConfig) -> CodeSender | None:
    """The SMS provider's HTTP endpoint when configured, else the file outbox; none when
    no country may receive codes."""
    if not config.sms_countries:
        return None
    if config.sms_url:
        return HttpSmsSender(config.sms_url, config.sms_token, config.sms_from)
    return FileOutboxSender(config.outbox_dir, echo_codes=config.is_development,
                            channel="sms")


def identity_core(store: IdentityStore, config: ServiceConfig) -> ServiceCore:
    return IdentityHandlers(
        store=store,
        sender=code_sender(config),
        tokens=TokenIssuer(load_signing_key(config.keys_dir, IDENTITY_TOKEN_KEY)),
        secret=pseudonym_secret(config),
        code_secret=code_secret(config),
        organisers=_emails(config.organiser_emails),
        admins=_emails(config.admin_emails),
        synthetic_voters=config.is_development,
        token_keys=load_key_set(config.keys_dir, IDENTITY_TOKEN_KEY),
        kiosks=networks(config.kiosk_networks),
        sms=sms_sender(config),
        sms_countries=phones.countries(config.sms_countries),
        sign_in_list_keep=timedelta(days=config.sign_in_list_days),
        census_keep=timedelta(days=config.census_days),
        action_log_keep=timedelta(days=config.action_log_days),
        account_keep=timedelta(days=config.account_days),
    ).core()


def proposal_core(store: ProposalStore, config: ServiceConfig) -> ServiceCore:
    return ProposalHandlers(store, max_proposals_per_person=config.max_proposals_per_person,
                            action_log_keep=timedelta(days=config.action_log_days),
                            participation_keep=timedelta(days=config.participation_days),
                            ).core()


def vote_core(store: VoteStore, config: ServiceConfig) -> ServiceCore:
    return VoteHandlers(store, shards=config.counting_shards,
                        ballots_keep=timedelta(days=config.vote_ballot_days)).core()


def vote_intake(store: VoteStore, config: ServiceConfig, shards: int) -> BallotIntake:
    # vote holds only identity's public key: it can check tokens, never mint them.
    verifier = TokenVerifier(load_key_set(config.keys_dir, IDENTITY_TOKEN_KEY))
    return BallotIntake(store, verifier, shards=shards, counting_shards=config.counting_shards,
                        max_ballots=config.max_ballots_per_voter)


def tally_core(store: TallyStore, config: ServiceConfig) -> ServiceCore:
    return TallyHandlers(store, load_signing_key(config.keys_dir, TALLY_RESULT_KEY),
                         stream=config.counting_stream, shards=config.counting_shards,
                         counted_by_workers=config.counted_by_workers,
                         head_every=timedelta(seconds=config.tree_head_seconds),
                         head_min=config.tree_head_min_ballots,
                         copy_keep=timedelta(days=config.tally_copy_days),
                         min_cell=config.min_cell).core()


IDENTITY = ServiceSpec[IdentityStore](
    "identity", Migrations.of(urne.services.identity), SqliteIdentityStore,
    CassandraIdentityStore, identity_core, periodic=PurgeExpired)
PROPOSAL = ServiceSpec[ProposalStore](
    "proposal", Migrations.of(urne.services.proposal), SqliteProposalStore,
    CassandraProposalStore, proposal_core, periodic=RunSchedule)
VOTE = ServiceSpec[VoteStore](
    "vote", Migrations.of(urne.services.vote), SqliteVoteStore, CassandraVoteStore, vote_core,
    intake=vote_intake, periodic=PurgeBallots)
TALLY = ServiceSpec[TallyStore](
    "tally", Migrations.of(urne.services.tally), SqliteTallyStore, CassandraTallyStore,
    tally_core, periodic=CheckPolls)

SERVICES: dict[str, ServiceSpec[Any]] = {s.name: s for s in (IDENTITY, PROPOSAL, VOTE, TALLY)}
