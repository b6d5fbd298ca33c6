"""docker-compose.yml and the settings classes describe the same system (D9)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tests.support.processes import command_of
from urne.platform.settings import GatewaySettings, ServiceSettings
from urne.runtime.registry import SERVICES

pytestmark = pytest.mark.unit

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
ROLES = (*SERVICES, "vote-worker", "tally-worker", "gateway")
URNE_PROCESSES = {name: spec for name, spec in COMPOSE["services"].items() if name in ROLES}


def test_every_service_the_workers_and_the_gateway_are_composed() -> None:
    assert set(URNE_PROCESSES) == set(ROLES)
    for name, spec in URNE_PROCESSES.items():
        # The command the distributed end-to-end tests start (command_of), and only
        # where to listen after it.
        expected = command_of(name)
        assert spec["command"][: len(expected)] == expected, name
        assert spec["command"][len(expected):] in ([], ["--host", "0.0.0.0", "--port", "8000"])


def test_compose_sets_only_settings_that_exist() -> None:
    known = {f"URNE_{field.upper()}" for cls in (ServiceSettings, GatewaySettings)
             for field in cls.model_fields}
    for name, spec in URNE_PROCESSES.items():
        unknown = {k for k in spec["environment"] if k.startswith("URNE_")} - known
        assert not unknown, f"{name} sets {unknown}, which no settings class reads"


def test_compose_runs_production_with_its_own_secrets() -> None:
    for name, spec in URNE_PROCESSES.items():
        env = spec["environment"]
        assert env["URNE_ENVIRONMENT"] == "production"
        # The pseudonym secret is identity's alone; each process mounts its own key
        # folder (its private keys, everyone's public ones), read-only.
        if name == "identity":
            assert "${URNE_PSEUDONYM_SECRET:?" in env["URNE_PSEUDONYM_SECRET"]
        else:
            assert "URNE_PSEUDONYM_SECRET" not in env, name
        folder = {"vote-worker": "vote", "tally-worker": "tally"}.get(name, name)
        assert f"./secrets/keys/{folder}:/keys:ro" in spec["volumes"], name
        assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"]


def test_compose_gives_each_process_the_broker_user_of_its_role() -> None:
    setup = COMPOSE["services"]["broker-users"]
    assert setup["command"][:2] == ["broker", "users"]
    for name, spec in URNE_PROCESSES.items():
        variable = "URNE_BROKER_PASSWORD_" + name.upper().replace("-", "_")
        assert spec["environment"]["URNE_AMQP_URL"].startswith(
            f"amqp://urne-{name}:${{{variable}:?"), name
        assert variable in setup["environment"], name
        assert spec["depends_on"]["broker-users"] == {
            "condition": "service_completed_successfully"}


def test_counting_shards_are_a_power_of_two_and_vote_shards_any_count() -> None:
    # A voter's counting shard is bits of the voter key modulo the count, and a shard's
    # ballots must be whole partitions of the tally's 128-bucket copy.
    for bad in (3, 6, 12, 0, 256):
        with pytest.raises(ValidationError):
            ServiceSettings(environment="test", counting_shards=bad)
    settings = ServiceSettings(environment="test", counting_shards=8, ballot_shards=12)
    assert (settings.counting_shards, settings.ballot_shards) == (8, 12)
    assert ServiceSettings(environment="test").counting_shards == 4


STORE_LOGIN = {"cassandra_username": "urne_vote", "cassandra_password": "pw"}


def test_the_broker_guest_is_refused_outside_development() -> None:
    secret = {"pseudonym_secret": "s" * 40, **STORE_LOGIN}
    for url in ("amqp://guest:guest@rabbitmq:5672/", "amqp://rabbitmq:5672/",
                "amqp://urne-vote@rabbitmq:5672/", "amqp://urne-vote:guest@rabbitmq/"):
        with pytest.raises(ValidationError, match="broker user"):
            ServiceSettings(environment="production", amqp_url=url, **secret)
        with pytest.raises(ValidationError, match="broker user"):
            GatewaySettings(environment="production", amqp_url=url)
        ServiceSettings(environment="test", amqp_url=url)  # development: as it comes
    ok = ServiceSettings(environment="production", amqp_url="amqp://urne-vote:x7@rabbitmq/",
                         **secret)
    assert ok.amqp_url.startswith("amqp://urne-vote:")


def test_the_cassandra_superuser_is_refused_outside_development() -> None:
    base = {"environment": "production", "amqp_url": "amqp://urne-vote:pw@rabbitmq/",
            "pseudonym_secret": "s" * 40}
    for login in ({}, {"cassandra_username": "cassandra", "cassandra_password": "other"},
                  {"cassandra_username": "urne_vote", "cassandra_password": ""},
                  {"cassandra_username": "", "cassandra_password": "pw"}):
        with pytest.raises(ValidationError, match="URNE_CASSANDRA_USERNAME"):
            ServiceSettings(**base, **login)
        ServiceSettings(**{**base, "environment": "test"}, **login)  # development: as it comes
    assert ServiceSettings(**base, **STORE_LOGIN).cassandra_username == "urne_vote"


def test_compose_logs_each_service_in_to_cassandra_as_its_own_role() -> None:
    compose = COMPOSE["services"]
    for name, service in (("identity", "identity"), ("proposal", "proposal"),
                          ("vote", "vote"), ("tally", "tally"), ("vote-worker", "vote"),
                          ("tally-worker", "tally")):
        env = compose[name]["environment"]
        assert env["URNE_CASSANDRA_USERNAME"] == f"urne_{service}", name
        assert f"URNE_CASSANDRA_PASSWORD_{service.upper()}" in env["URNE_CASSANDRA_PASSWORD"]
        assert "store-roles" in compose[name]["depends_on"], name
    assert "URNE_CASSANDRA_USERNAME" not in compose["gateway"]["environment"]
    assert compose["store-roles"]["command"] == ["store", "roles"]
