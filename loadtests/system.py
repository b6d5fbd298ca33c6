"""Start urne on this machine for a benchmark: the embedded profile (one process), or
the distributed one (four services, vote workers and a gateway, on the RabbitMQ and
Cassandra that ``infra/`` starts), each run in its own RabbitMQ virtual host and
Cassandra keyspaces, removed at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MANAGEMENT = "http://127.0.0.1:15672/api"
GUEST = ("guest", "guest")
SERVICES = ("identity", "proposal", "vote", "tally")


def open_vhost(vhost: str) -> str:
    """A virtual host of its own for a benchmark, guest allowed in it; its AMQP URL."""
    httpx.put(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST, timeout=30).raise_for_status()
    httpx.put(f"{MANAGEMENT}/permissions/{vhost}/guest", auth=GUEST, timeout=30,
              json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    return f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


def close_vhost(vhost: str) -> None:
    httpx.delete(f"{MANAGEMENT}/vhosts/{vhost}", auth=GUEST, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class System:
    profile: str
    base: str
    outbox: Path
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    vhost: str | None = None
    keyspace_prefix: str | None = None
    bases: list[str] = field(default_factory=list)  # every gateway
    # Where the counting processes serve their Prometheus metrics (the lag is there).
    tally_metrics: list[str] = field(default_factory=list)
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    # Distributed: each role's own broker user (urne/messaging/permissions.py), and each
    # service's own Cassandra role (urne/storage/roles.py): (role, password).
    amqp_urls: dict[str, str] = field(default_factory=dict)
    store_logins: dict[str, tuple[str, str]] = field(default_factory=dict)

    def restart(self, name: str) -> None:
        """Start ``name`` again (after a test killed or stopped it)."""
        old = self.processes[name]
        if old.poll() is None:
            old.kill()
            old.wait()
        args, env = self.commands[name]
        _start(self, name, args, env)

    def start_tally_worker(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start one more tally worker (``env``: the system's, taken from a running
        process if not given), serving its metrics on a port of its own."""
        if env is None:
            env = next(e for args, e in self.commands.values() if args == ["tally-worker"])
        port = free_port()
        self.tally_metrics.append(f"http://127.0.0.1:{port}/metrics")
        _start(self, name, ["tally-worker"], {**env, "URNE_METRICS_PORT": str(port)})

    @property
    def pids(self) -> set[int]:
        return {p.pid for p in self.processes.values()}

    def stop(self) -> None:
        for p in self.processes.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.vhost:
            close_vhost(self.vhost)
        for url in self.amqp_urls.values():
            user = url.split("://", 1)[1].split(":", 1)[0]
            httpx.delete(f"{MANAGEMENT}/users/{user}", auth=GUEST, timeout=30)
        if self.keyspace_prefix:
            _drop_keyspaces(self.keyspace_prefix)
        if os.environ.get("URNE_KEEP_LOGS"):  # to read the processes' logs afterwards
            print(f"logs kept in {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _start(system: System, name: str, args: list[str], env: dict[str, str]) -> None:
    role = args[1] if args[0] == "service" else args[0]
    if system.amqp_urls:  # the process connects as the user of its role
        env = {**env, "URNE_AMQP_URL": system.amqp_urls[role]}
    login = system.store_logins.get(role.removesuffix("-worker"))
    if login:  # and to Cassandra as its service's role
        env = {**env, "URNE_CASSANDRA_USERNAME": login[0], "URNE_CASSANDRA_PASSWORD": login[1]}
    system.commands[name] = (args, env)
    log = open(system.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    system.processes[name] = subprocess.Popen(
        [sys.executable, "-m", "urne", *args], env={**os.environ, **env}, cwd=ROOT,
        stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(system: System, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(system.bases or [system.base])
    while time.monotonic() < deadline:
        for name, p in system.processes.items():
            if p.poll() is not None:
                tail = (system.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {p.returncode}:\n{tail}")
        try:
            if httpx.get(f"{waiting[0]}/readyz", timeout=5).status_code == 200:
                waiting.pop(0)
                if not waiting:
                    return
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{waiting[0]} not ready after {timeout}s")


def start_embedded(workdir: Path) -> System:
    port = free_port()
    system = System("embedded", f"http://127.0.0.1:{port}", workdir / "data" / "outbox" /
                    "email.jsonl", workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _start(system, "urne-up", ["up", "--port", str(port), "--data-dir", str(workdir / "data")],
           {"URNE_ENVIRONMENT": "test", "URNE_LOG_LEVEL": "WARNING"})
    system.bases.append(system.base)
    system.tally_metrics = [f"{system.base}/metrics"]  # one process: one registry
    _wait_ready(system)
    return system


def start_distributed(workdir: Path, vote_workers: int = 2, shards: int = 16,
                      gateways: int = 1, env: dict[str, str] | None = None,
                      tally_workers: int = 1, counting_shards: int = 4) -> System:
    from urne.crypto.keys import generate_keys
    from urne.messaging.permissions import ROLES, grant

    run = uuid.uuid4().hex[:8]
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    vhost = f"urne-load-{run}"
    system = System("distributed", f"http://127.0.0.1:{port}", workdir / "outbox" /
                    "email.jsonl", workdir, vhost=vhost, keyspace_prefix=f"load_{run}_")
    guest_url = open_vhost(vhost)
    for role in ROLES:  # least privilege, as in production (guest: the test's own calls)
        password = secrets.token_urlsafe(16)
        grant(MANAGEMENT.removesuffix("/api"), vhost, role, f"load-{run}-{role}", password,
              GUEST)
        system.amqp_urls[role] = f"amqp://load-{run}-{role}:{password}@127.0.0.1:5672/{vhost}"
    system.store_logins = _store_roles(system.keyspace_prefix or "")
    generate_keys(workdir / "keys")
    env = {
        "URNE_ENVIRONMENT": "test", "URNE_LOG_LEVEL": "WARNING",
        "URNE_AMQP_URL": guest_url,
        "URNE_CASSANDRA_KEYSPACE_PREFIX": system.keyspace_prefix or "",
        "URNE_KEYS_DIR": str(workdir / "keys"), "URNE_OUTBOX_DIR": str(workdir / "outbox"),
        "URNE_PORT": str(port), "URNE_BALLOT_SHARDS": str(shards),
        "URNE_COUNTING_SHARDS": str(counting_shards),
        **(env or {}),  # the caller's settings win
    }
    try:
        for name in SERVICES:
            _start(system, name, ["service", name], env)
        for i in range(vote_workers):
            _start(system, f"vote-worker-{i + 1}", ["vote-worker"], env)
        for i in range(tally_workers):
            system.start_tally_worker(f"tally-worker-{i + 1}", env)
        _start(system, "gateway", ["gateway"], env)
        system.bases.append(system.base)
        for i in range(1, gateways):
            other = free_port()
            _start(system, f"gateway-{i + 1}", ["gateway"], {**env, "URNE_PORT": str(other)})
            system.bases.append(f"http://127.0.0.1:{other}")
        _wait_ready(system)
    except BaseException:
        system.stop()
        raise
    return system


def _store_roles(prefix: str) -> dict[str, tuple[str, str]]:
    """Each service's keyspace and Cassandra role, as ``urne store roles`` makes them."""
    from urne.platform.settings import StoreSettings
    from urne.storage.cassandra import connect
    from urne.storage.roles import grant_all

    session = connect(StoreSettings())  # the administrator's login
    try:
        return grant_all(session, StoreSettings(cassandra_keyspace_prefix=prefix), SERVICES)
    finally:
        session.cluster.shutdown()


def _drop_keyspaces(prefix: str) -> None:
    from urne.platform.settings import StoreSettings
    from urne.storage.cassandra import connect

    session = connect(StoreSettings())
    try:
        for name in SERVICES:
            session.execute(f"DROP KEYSPACE IF EXISTS {prefix}{name}", timeout=60)
            session.execute(f"DROP ROLE IF EXISTS {prefix}{name}")
    finally:
        session.cluster.shutdown()
