"""docker-compose.yml, .env.example and the Dockerfile, checked without Docker: the
compose file against the Compose Specification's schema (vendored), every variable it
reads documented in .env.example, and its defaults equal to the settings classes' own.
(tests/unit/test_deploy_config.py checks the processes' commands, users and secrets.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from tests.ops.tools import ROOT, tool
from urne.platform.settings import GatewaySettings, ServiceSettings
from urne.runtime.registry import SERVICES

pytestmark = pytest.mark.unit

COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
ROLES = (*SERVICES, "vote-worker", "tally-worker", "gateway")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                      r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class Unset(Exception):
    """A required variable (``${NAME:?message}``) is empty or unset."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """What compose makes of ``value`` given ``env`` (the rules of the Compose
    Specification's interpolation section, for the forms this file uses)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        present = env.get(name)
        empty = not present
        if op in (":-", "-"):
            return arg if (present is None or (op == ":-" and empty)) else present
        if op in (":?", "?") and (present is None or (op == ":?" and empty)):
            raise Unset(f"{name}: {arg}")
        return present or ""

    return VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def dotenv(text: str) -> dict[str, str]:
    """The variables a .env file sets (commented lines set nothing)."""
    pairs = (line.split("=", 1) for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def filled_env() -> dict[str, str]:
    """.env.example as an operator leaves it: every empty value given one."""
    return {k: v or f"set-{k.lower()}" for k, v in dotenv(ENV_EXAMPLE).items()}


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    validator = jsonschema_rs.validator_for(SCHEMA)
    resolved = interpolate(COMPOSE, filled_env())
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
              for e in validator.iter_errors(resolved)]
    assert not errors, errors


def compose_check(env: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """docker-compose.yml loaded by Docker Compose's own loader (compose-go, built by
    infra/tools/install.sh), with ``env`` as its .env."""
    env_file = tmp_path / "compose.env"
    env_file.write_text(env)
    return subprocess.run([tool("compose-check", "infra/tools/install.sh"),
                           str(ROOT / "docker-compose.yml"), str(env_file)],
                          capture_output=True, text=True, timeout=60)


def test_docker_compose_s_loader_takes_the_file_as_this_test_reads_it(
        tmp_path: Path) -> None:
    env = filled_env()
    loaded = compose_check("".join(f"{k}={v}\n" for k, v in env.items()), tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    project = json.loads(loaded.stdout)["services"]
    ours = interpolate(COMPOSE, env)["services"]
    assert set(project) == set(ours)
    for name in ROLES:  # what each urne process is started with, resolved by compose
        assert project[name]["command"] == ours[name]["command"], name
        assert project[name]["environment"] == {
            k: str(v) for k, v in ours[name]["environment"].items()}, name
    assert project["gateway"]["deploy"]["replicas"] == 2


def test_docker_compose_refuses_env_example_until_its_secrets_are_set(
        tmp_path: Path) -> None:
    loaded = compose_check(ENV_EXAMPLE, tmp_path)
    assert loaded.returncode == 1
    required = {m["name"] for m in VARIABLE.finditer(COMPOSE_TEXT) if m["op"] == ":?"}
    for name in required:
        assert f"required variable {name} is missing a value" in loaded.stderr, name


def test_docker_compose_s_loader_catches_a_mistake(tmp_path: Path) -> None:
    # With every secret set, a service depending on one that does not exist: the loader
    # (not the schema, which cannot tell) refuses it.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_TEXT.replace("depends_on: [prometheus]",
                                           "depends_on: [prometheus-server]"))
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in filled_env().items()))
    loaded = subprocess.run([tool("compose-check", "infra/tools/install.sh"), str(broken),
                             str(env_file)], capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 1
    assert "prometheus-server" in loaded.stderr
    assert jsonschema_rs.validator_for(SCHEMA).is_valid(
        interpolate(yaml.safe_load(broken.read_text()), filled_env()))


def test_the_schema_would_catch_a_mistake() -> None:
    # The vendored schema really constrains: a misspelt key and a wrong type fail it.
    validator = jsonschema_rs.validator_for(SCHEMA)
    for broken in ({"services": {"gateway": {"image": "urne", "restrat": "always"}}},
                   {"services": {"gateway": {"image": "urne", "cap_drop": "ALL"}}},
                   {"services": {"gateway": {"image": "urne", "depends_on": {"x": {
                       "condition": "service_finished"}}}}}):
        assert not validator.is_valid(broken), broken


def test_every_variable_compose_reads_is_in_env_example_and_no_other() -> None:
    used = {m["name"] for m in VARIABLE.finditer(COMPOSE_TEXT)}
    documented = set(dotenv(ENV_EXAMPLE))
    assert used - documented == set(), "not in .env.example"
    assert documented - used == set(), "in .env.example, but compose does not read it"


def test_env_example_as_shipped_does_not_start_a_deployment() -> None:
    # Every password and secret must be chosen: compose refuses an empty one.
    with pytest.raises(Unset, match="set URNE_"):
        interpolate(COMPOSE, dotenv(ENV_EXAMPLE))
    required = {m["name"] for m in VARIABLE.finditer(COMPOSE_TEXT) if m["op"] == ":?"}
    assert {"URNE_PSEUDONYM_SECRET", "URNE_CODE_SECRET", "URNE_RABBITMQ_PASSWORD",
            "GRAFANA_ADMIN_PASSWORD"} <= required
    assert all(dotenv(ENV_EXAMPLE)[name] == "" for name in required)


def test_every_setting_is_documented_in_env_example() -> None:
    settings = {f"URNE_{field.upper()}" for cls in (ServiceSettings, GatewaySettings)
                for field in cls.model_fields}
    mentioned = set(re.findall(r"^#?\s*(URNE_[A-Z0-9_]+)=", ENV_EXAMPLE, re.MULTILINE))
    assert settings - mentioned == set(), "settings .env.example does not mention"
    per_service = {"URNE_RABBITMQ_PASSWORD", "URNE_CASSANDRA_ADMIN_PASSWORD"} | {
        name for name in mentioned if re.match(
            r"URNE_(BROKER|CASSANDRA)_PASSWORD_[A-Z_]+$", name)}
    assert mentioned - settings - per_service == set(), "mentioned, but no setting"


def test_the_defaults_compose_and_env_example_give_are_the_settings_own() -> None:
    fields = {**GatewaySettings.model_fields, **ServiceSettings.model_fields}
    example = dotenv(ENV_EXAMPLE)
    checked = 0
    for match in VARIABLE.finditer(COMPOSE_TEXT):
        name, op, default = match["name"], match["op"], match["arg"]
        field = fields.get(name.removeprefix("URNE_").lower())
        if op != ":-" or field is None or not default:
            continue
        assert str(field.default) == default, name
        assert example[name] == default, name
        checked += 1
    assert checked >= 20  # the tunables of x-urne-env


def test_the_urne_processes_use_one_locked_down_image() -> None:
    services = COMPOSE["services"]
    urne = {name: spec for name, spec in services.items()
            if spec.get("image", "").startswith("urne:")}
    assert set(ROLES) | {"broker-users", "store-roles", "migrate"} == set(urne)
    for name, spec in urne.items():
        assert spec["build"] == ".", name
        assert spec["user"] == "10001" and spec["read_only"] is True, name
        assert spec["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in spec["security_opt"], name
        assert "/tmp" in spec["tmpfs"], name  # the root file system is read-only
    # Migrations run once, before any service; the services wait for them.
    assert services["migrate"]["command"] == ["migrate"]
    for name in ROLES:
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"}, name


def test_prometheus_scrapes_every_urne_process_and_grafana_is_provisioned() -> None:
    services = COMPOSE["services"]
    config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    (urne_job,) = [job for job in config["scrape_configs"] if job["job_name"] == "urne"]
    (dns,) = urne_job["dns_sd_configs"]
    assert set(dns["names"]) == set(ROLES)
    assert all(services[r]["environment"]["URNE_METRICS_PORT"] == str(dns["port"])
               for r in ROLES)
    assert "./infra/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    grafana = services["grafana"]["volumes"]
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./infra/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    provider = yaml.safe_load(
        (ROOT / "infra/grafana/provisioning/dashboards/urne.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_image_is_built_in_two_stages_and_runs_as_its_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.MULTILINE)
    assert len(stages) == 2 and stages[0][1] == "build"  # no compiler in the image
    assert "COPY --from=build /opt/urne /opt/urne" in dockerfile
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["urne"\]$', dockerfile, re.MULTILINE)


# What the cassandra:5.0 image's /etc/cassandra/cassandra.yaml says on the lines the
# compose file edits (Cassandra's defaults: everyone allowed, the commit log synced every
# 10 s after the writes were acknowledged), with a commented line that must stay as is.
STOCK_CASSANDRA_LINES = """\
authenticator:
  class_name : org.apache.cassandra.auth.AllowAllAuthenticator
authorizer: AllowAllAuthorizer
commitlog_sync: periodic
commitlog_sync_period: 10000ms
# commitlog_sync_group_window: 1000ms
commitlog_segment_size: 32MiB
"""


def _cassandra_start(config: Path) -> subprocess.CompletedProcess[str]:
    """The compose file's command for the cassandra service, run here on ``config``
    instead of the image's file, with the image's entry point replaced by an echo."""
    command = COMPOSE["services"]["cassandra"]["command"]
    assert command.startswith('bash -c "') and command.rstrip().endswith('"')
    script = command.rstrip()[len('bash -c "'):-1]
    assert script.count("/etc/cassandra/cassandra.yaml") == 2  # edited, then checked
    assert script.endswith("exec docker-entrypoint.sh cassandra -f")
    script = (script.replace("/etc/cassandra/cassandra.yaml", str(config))
              .replace("exec docker-entrypoint.sh cassandra -f", "echo started"))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)


def test_compose_s_cassandra_acknowledges_a_write_once_its_commit_log_is_synced(
        tmp_path: Path) -> None:
    """A 201 means the ballot is on disk (docs/architecture.md): the image's `periodic`
    commit log would acknowledge first and sync up to 10 s later."""
    config = tmp_path / "cassandra.yaml"
    config.write_text(STOCK_CASSANDRA_LINES)
    started = _cassandra_start(config)
    assert started.returncode == 0 and started.stdout == "started\n", started.stderr
    edited = config.read_text().splitlines()
    assert "commitlog_sync: batch" in edited
    # Cassandra refuses to start with batch and a sync period.
    assert not [line for line in edited if line.startswith("commitlog_sync_period")]
    assert "# commitlog_sync_group_window: 1000ms" in edited
    assert "  class_name : org.apache.cassandra.auth.PasswordAuthenticator" in edited
    assert "authorizer: CassandraAuthorizer" in edited


def test_compose_s_cassandra_does_not_start_if_its_image_has_no_line_to_edit(
        tmp_path: Path) -> None:
    config = tmp_path / "cassandra.yaml"
    config.write_text(STOCK_CASSANDRA_LINES.replace("commitlog_sync: periodic\n", ""))
    started = _cassandra_start(config)
    assert started.returncode != 0 and "started" not in started.stdout
