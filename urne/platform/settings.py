"""Settings from ``URNE_*`` environment variables: one class per process (D9).

The same names are used by the CLI, docker-compose and the Kubernetes manifests.
Development defaults are refused when ``URNE_ENVIRONMENT`` is not ``development``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PSEUDONYM_SECRET = "dev-only-pseudonym-secret-change-me"
# Keys the sign-in codes' hashes and the limits' counters, apart from the pseudonyms:
# a leak of one does not give the other.
DEV_CODE_SECRET = "dev-only-code-secret-change-me"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="URNE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    # Proxies whose X-Forwarded-For names the client (uvicorn's forwarded_allow_ips:
    # addresses or CIDRs, comma-separated, "*" for any): the client address is what
    # the per-client sign-in limits count.
    trusted_proxies: str = "127.0.0.1"
    # Ballots one voter may cast in a poll (the first and the revotes): each is a
    # public record entry, so it is bounded.
    max_ballots_per_voter: int = Field(default=20, ge=1, le=1000)
    # Proposals one person may submit to one consultation (those its organisers add do
    # not count): moderators read every one, so it is bounded.
    max_proposals_per_person: int = Field(default=5, ge=1, le=1000)
    # Ed25519 keys: identity-token.pem (identity), tally-result.pem (tally) and
    # their .pub.pem; generated on first start in development only.
    keys_dir: Path = Path("urne-data/keys")
    # Prometheus metrics on a port of their own (0: none), as every process serves them.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, for Prometheus to scrape
    # /metrics on the API's port too; unset: in development and test only. Its counters
    # (ballots recorded, requests per route) tell live turnout, embargo or not: outside
    # development they are for the operator's Prometheus, on URNE_METRICS_PORT.
    metrics_on_api: bool | None = None

    @property
    def is_development(self) -> bool:
        return self.environment in ("development", "test")

    @property
    def api_metrics(self) -> bool:
        """Whether the API's port serves /metrics."""
        return self.is_development if self.metrics_on_api is None else self.metrics_on_api


class BrokerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="URNE_", extra="ignore")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    rpc_timeout_seconds: float = 10.0
    # The ballot stream is split into this many shard queues (ARCHITECTURE.md D4): the
    # most vote workers that can be busy at once. Part of the broker topology: every
    # process must agree, and changing it needs the shard queues drained first.
    ballot_shards: int = Field(default=16, ge=1, le=128)
    # The counting streams (D7): the most tally workers that can be busy at once. A
    # worker counts ~9,000 ballots/s (docs/performance.md), so a few suffice; each shard
    # costs a compare-and-set per counting batch and an event per vote batch it appears
    # in. Part of the tally's storage layout (a shard's ballots are whole partitions of
    # its copy: a power of two up to 128) and fixed for the lifetime of the data: a
    # voter's ballots must stay in one shard.
    counting_shards: int = Field(default=4, ge=1, le=128)
    # How long one generation of counting streams takes ballots before the tally workers
    # open the next (urne/messaging/counting_rotation.py); a generation and the ballots on
    # it are deleted once every shard was counted past it. So the broker holds a ballot
    # about this long, plus as long as counting is behind or down.
    counting_rotate_seconds: float = Field(default=86400.0, ge=1)

    @model_validator(mode="after")
    def _shards_divide_buckets(self) -> BrokerSettings:
        if self.counting_shards & (self.counting_shards - 1):
            raise ValueError("URNE_COUNTING_SHARDS must be a power of two (1, 2, 4 … 128)")
        return self

    @model_validator(mode="after")
    def _refuse_default_user(self) -> BrokerSettings:
        # Outside development every process has a broker user of its own (`urne broker
        # users`); RabbitMQ's default guest account, or a user without a password, is
        # refused (issue 10).
        url = urlparse(self.amqp_url)
        if not getattr(self, "is_development", True) and (
                url.username in (None, "", "guest") or not url.password
                or url.password == "guest"):
            raise ValueError("URNE_AMQP_URL must name a broker user of this process's role "
                             "with a password (`urne broker users`), not guest, outside "
                             "development")
        return self

    @property
    def counting_stream(self) -> str:
        """Which broker's counting streams the tally's checkpoints are positions in: the
        virtual host (a checkpoint means nothing in another broker's streams)."""
        return unquote(urlparse(self.amqp_url).path[1:]) or "/"

    @property
    def counted_by_workers(self) -> bool:
        """Ballots reach the tally through its workers (``urne tally-worker``)."""
        return True


DEV_CASSANDRA_USER = "cassandra"  # Cassandra's default superuser, as the local server has it


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="URNE_", extra="ignore")

    cassandra_hosts: str = "127.0.0.1"
    cassandra_port: int = 9042
    # Every keyspace is "<prefix><service>", so test runs can use their own.
    cassandra_keyspace_prefix: str = "urne_"
    cassandra_replication_factor: int = 1
    # Cassandra runs with PasswordAuthenticator: outside development each process logs in
    # as its service's role, which may use its own keyspace only (`urne store roles`).
    cassandra_username: str = DEV_CASSANDRA_USER
    cassandra_password: str = DEV_CASSANDRA_USER
    # TLS to Cassandra: the file of the authorities that vouch for the nodes' certificates
    # (PEM). Set, every connection is TLS, and the node's certificate must name the
    # address the driver connects to (its host name or IP); empty, plain CQL.
    cassandra_tls_cafile: str = ""

    @model_validator(mode="after")
    def _refuse_superuser(self) -> StoreSettings:
        if not getattr(self, "is_development", True) and (
                self.cassandra_username in ("", DEV_CASSANDRA_USER)
                or not self.cassandra_password):
            raise ValueError("URNE_CASSANDRA_USERNAME must name the role of this process's "
                             "service with its password (`urne store roles`), not the "
                             "cassandra superuser, outside development")
        return self


class RoleSettings(BaseSettings):
    """Who registers with more than the participant's role (identity reads it)."""

    model_config = SettingsConfigDict(env_prefix="URNE_", extra="ignore")

    # Comma-separated addresses that register as organisers, and as admins (who may act
    # on every consultation); everyone else registers as a participant. A role is given at
    # registration (the first sign-in). urne.example cannot receive mail: the defaults
    # sign in only where codes go to the development outbox.
    organiser_emails: str = "organiser@urne.example"
    admin_emails: str = "admin@urne.example"
    # Networks of agents' kiosks (town hall desks), comma-separated CIDRs: no per-client
    # sign-in limit applies to them (urne/services/identity/limits.py).
    kiosk_networks: str = ""
    # Days a poll's sign-in list is kept after the poll closed (the appeal period, two
    # months for an administrative decision in France, and then some); identity's purge
    # deletes it then (services/identity/sign_in_list.py).
    sign_in_list_days: int = Field(default=90, ge=1, le=3_650)
    # Days a consultation's census is kept after its last census poll closed, once none
    # is open; identity's purge deletes it then (upload it again for a later poll).
    census_days: int = Field(default=90, ge=1, le=3_650)
    # Days the log of what staff did (roles granted, consultations run, people helped at
    # a desk) is kept: Cassandra's time-to-live, a purge on SQLite.
    action_log_days: int = Field(default=365, ge=1, le=3_650)
    # Days after a consultation's last step or poll ended that its proposals keep their
    # authors' person ids and its reports (reporter, reason) are kept; the proposal
    # service's schedule then forgets them, the proposals staying as its archive.
    participation_days: int = Field(default=365, ge=1, le=3_650)
    # Days an account no one signs in to is kept, by the month of its last sign-in;
    # identity's purge deletes it then, as its owner could (DELETE /v1/me).
    account_days: int = Field(default=3 * 365, ge=31, le=36_500)
    # The tally appends a poll's counted ballots to its public log, and signs a tree
    # head, at most this often, once at least URNE_TREE_HEAD_MIN_BALLOTS wait: an
    # interval of very few ballots would tell when each came (docs/auditing.md).
    tree_head_seconds: int = Field(default=300, ge=1, le=86_400)
    tree_head_min_ballots: int = Field(default=10, ge=1, le=1_000_000)
    # Days the tally keeps its copy of a poll's ballots (voter keys and choices) after
    # signing its result, as the sign-in list after the close: then its check deletes
    # the copy. The result, the stored record and the tree heads stay: they are the
    # public proof, and name no voter key.
    tally_copy_days: int = Field(default=90, ge=1, le=3_650)
    # Days the vote service keeps a poll's ballots (voter keys, choices, agents) after
    # the tally signed its result: then its purge deletes them (the box and its seal,
    # which name no voter, stay).
    vote_ballot_days: int = Field(default=90, ge=1, le=3_650)
    # The fewest ballots an agent's line (desk or paper) in a poll's signed
    # reconciliation may count to be published alone: smaller lines are pooled, so no
    # small count tells how few people came to one desk (docs/privacy.md).
    min_cell: int = Field(default=5, ge=1, le=1_000)


class MailSettings(BaseSettings):
    """How identity sends sign-in codes: by e-mail, and by SMS."""

    model_config = SettingsConfigDict(env_prefix="URNE_", extra="ignore")

    # smtp://user:password@host:587 (STARTTLS required), smtps://host:465, or
    # smtp://host:25?tls=off for a local relay; ?cafile= names the authority to trust
    # (services/identity/adapters/smtp_sender.py). Empty: codes go to the file outbox
    # (URNE_OUTBOX_DIR), for development and tests, or for a relay of the operator's.
    smtp_url: str = ""
    mail_from: str = ""  # the sender's address, required with smtp_url
    # Sign-in by SMS, for people without an e-mail address: the countries whose mobile
    # numbers may receive a code (ISO 3166 alpha-2, comma-separated, e.g. "FR,BE"; an
    # allow-list against SMS pumping, services/identity/phones.py). Empty: none, no SMS.
    sms_countries: str = ""
    # The SMS provider's (or a relay's) HTTPS endpoint, its bearer token and the sender
    # name (services/identity/adapters/sms_http_sender.py documents the request). Empty:
    # codes go to the file outbox's sms.jsonl, as e-mail's go to email.jsonl.
    sms_url: str = ""
    sms_token: str = ""
    sms_from: str = ""


class ServiceSettings(CommonSettings, BrokerSettings, StoreSettings, RoleSettings,
                      MailSettings):
    """``urne service NAME``: one service, nameko over RabbitMQ, Cassandra storage."""

    pseudonym_secret: str = ""  # identity's alone; the development one if unset there
    code_secret: str = ""  # identity's alone too (code hashes, limits' counters)
    outbox_dir: Path = Path("urne-data/outbox")
    max_workers: int = 10
    # urne vote-worker: deliveries in flight per worker (shared by its shard consumers,
    # at least 32 each), and ballots per batch.
    vote_worker_prefetch: int = Field(default=500, ge=1, le=10_000)
    vote_worker_batch: int = Field(default=500, ge=1, le=10_000)
    # How long a vote worker lets what arrived wait for more before taking it as a batch
    # (urne/messaging/ballot_stream.py): the most a ballot's answer waits for it. At 200
    # ballots/s, 20 ms took about a fifth off the CPU a ballot costs (docs/performance.md).
    vote_worker_linger_seconds: float = Field(default=0.02, ge=0, le=1)
    # How long a vote worker's batch's events (and the acks that wait for them) may wait
    # for the next batches', to go out together; the answers do not wait for them
    # (urne/messaging/ballot_stream.py). 0: each batch's events at once.
    vote_worker_events_every_seconds: float = Field(default=0.1, ge=0, le=5)
    # AMQP heartbeat of a vote worker: a worker that stops answering (paused, cut off)
    # loses its shards to another after about twice this.
    vote_worker_heartbeat_seconds: int = Field(default=10, ge=1, le=600)

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> ServiceSettings:
        # Only identity needs the secret (the pseudonyms are made there): the other
        # services run without it, and identity refuses to start without a real one
        # outside development (registry.identity_core).
        if not self.is_development and self.pseudonym_secret == DEV_PSEUDONYM_SECRET:
            raise ValueError("URNE_PSEUDONYM_SECRET must be set outside development")
        if not self.is_development and self.code_secret == DEV_CODE_SECRET:
            raise ValueError("URNE_CODE_SECRET must be set outside development")
        return self


class GatewaySettings(CommonSettings, BrokerSettings):
    """``urne gateway``: the HTTP API against RabbitMQ."""

    host: str = "127.0.0.1"
    port: int = 8000


class EmbeddedSettings(CommonSettings, RoleSettings, MailSettings):
    """``urne up``: every service and the gateway in one process, SQLite files."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("urne-data")
    # Empty: in development, a random secret made for the data folder on its first start
    # (<data_dir>/pseudonym-secret, <data_dir>/code-secret); outside development they
    # must be given.
    pseudonym_secret: str = ""
    code_secret: str = ""
    keys_dir: Path = Field(default=Path(""))  # empty: <data_dir>/keys
    outbox_dir: Path = Field(default=Path(""))  # empty: <data_dir>/outbox
    # How long the first ballot of a group commit waits for others (urne/messaging/
    # group_commit.py): a batch costs a transaction and its events whatever its size, so
    # at 600 ballots/s waiting 20 ms took a quarter to a third off the CPU a ballot costs
    # (docs/performance.md); a ballot's answer waits at most this much longer.
    ballot_linger_seconds: float = Field(default=0.02, ge=0, le=1)

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> EmbeddedSettings:
        if self.keys_dir == Path(""):
            self.keys_dir = self.data_dir / "keys"
        if self.outbox_dir == Path(""):
            self.outbox_dir = self.data_dir / "outbox"
        self.check_secrets()
        return self

    def check_secrets(self) -> None:
        """Refuse secrets everyone knows where they would serve others: unset or the
        development ones outside development, the development ones off loopback. Also
        called on secrets a data folder supplies after the settings were read
        (``runtime.embedded``): a folder made with the development one keeps it."""
        for value, dev, name, what in (
                (self.pseudonym_secret, DEV_PSEUDONYM_SECRET, "URNE_PSEUDONYM_SECRET",
                 "pseudonym"),
                (self.code_secret, DEV_CODE_SECRET, "URNE_CODE_SECRET", "code")):
            if not self.is_development and value in ("", dev):
                raise ValueError(f"{name} must be set outside development")
            if value == dev and not _loopback(self.host):
                # Everyone knows it: with the pseudonym one, anyone could link voter keys
                # to persons; with the code one, forge nothing but guess less blindly.
                raise ValueError(f"the development {what} secret may not serve {self.host}: "
                                 f"set {name}, or leave it unset for a random one")

    # One process: one shard, counted by the tally's event handler in the same SQLite
    # transaction as its copy of the ballots (no stream, no position).
    @property
    def ballot_shards(self) -> int:
        return 1

    @property
    def counting_shards(self) -> int:
        return 1

    @property
    def counting_stream(self) -> str:
        return "embedded"

    @property
    def counted_by_workers(self) -> bool:
        return False
