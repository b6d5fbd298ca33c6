"""Starting and stopping urne processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from urne.runtime.registry import SERVICES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def command_of(name: str) -> list[str]:
    """The ``urne`` command of process ``name`` (``vote``, ``vote-worker-2`` …), as the
    distributed end-to-end tests start it; docker-compose.yml and infra/k8s/ run the
    same, the gateway's bind address and port given as options there
    (tests/unit/test_deploy_config.py)."""
    if name in SERVICES:
        return ["service", name]
    for role in ("vote-worker", "tally-worker", "gateway"):
        if name == role or name.startswith(f"{role}-"):
            return [role]
    raise ValueError(f"no urne process is called {name!r}")


def start(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    fh = open(log, "ab")  # noqa: SIM115 - the child owns it
    popen = subprocess.Popen([sys.executable, "-m", "urne", *args],
                             env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT,
                             cwd=Path(__file__).resolve().parents[2])
    return Proc(name, popen, log)


def wait_http(url: str, procs: list[Proc], timeout: float = 90, status: int = 200) -> None:
    """Wait until ``url`` answers ``status``; fail early with logs if a process died."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for p in procs:
            if p.popen.poll() is not None:
                raise AssertionError(f"{p.name} exited with {p.popen.returncode}:\n{p.tail()}")
        try:
            r = httpx.get(url, timeout=5)
            if r.status_code == status:
                return
            last = f"{r.status_code} {r.text[:300]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.3)
    logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in procs)
    raise AssertionError(f"{url} not {status} after {timeout}s (last: {last})\n{logs}")
