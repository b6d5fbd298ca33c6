"""``urne up`` (the embedded profile) as a real process on a free port, for the tests
that drive it from outside: the end-to-end slice and the browser tests."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.scenario import TEST_ENV
from tests.support.processes import Proc, free_port, start, wait_http


class Embedded:
    def __init__(self, data_dir: Path, host: str = "127.0.0.1"):
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://{host}:{self.port}"
        self.proc: Proc | None = None

    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox" / "email.jsonl"

    def start(self, env: dict[str, str] | None = None) -> None:
        self.proc = start("urne-up", ["up", "--port", str(self.port), "--data-dir",
                                      str(self.data_dir)],
                          {"URNE_ENVIRONMENT": "test", **TEST_ENV, **(env or {})},
                          self.data_dir.parent / "logs")
        wait_http(f"{self.base}/readyz", [self.proc])

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
