"""Suite-wide settings and reporting: no hypothesis database in the checkout, the nameko
tests in their own process, and a line showing that the distributed tests really ran."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from tests.support.servers import IN_CI, amqp_url, cassandra_address

# Nothing of a test run lands in the checkout. Hypothesis keeps no example database (a
# failure prints its seed and the falsifying example, which is what a rerun needs), and
# its other caches (constants it collects at import, Unicode tables) go to a temporary
# folder, set here because they are written while pytest collects, before any fixture.
settings.register_profile("urne", database=None)
settings.load_profile("urne")
_hypothesis_home = tempfile.TemporaryDirectory(prefix="urne-hypothesis-")
set_hypothesis_home_dir(_hypothesis_home.name)

_distributed: Counter[str] = Counter()
NAMEKO_TESTS = Path(__file__).parent / "nameko"


def _green() -> bool:
    import sys

    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher and patcher.is_monkey_patched("thread"))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # The nameko adapter tests need eventlet's patching, which would change every other
    # test's threads: they run in their own process (`make test` runs both).
    if collection_path == NAMEKO_TESTS and not _green():
        return True
    return None


LOG_TAIL = 6  # last lines of each process's log shown under a failed end-to-end test
LOG_PROBLEMS = 12  # and its last distinct warnings and errors, which say most
LOG_WIDTH = 300  # characters of a line: CI shows only part of a long output


def _digest(log: Path) -> str:
    """What matters in one process's log, short enough that every process fits in the
    part of the output CI keeps: its distinct warnings and errors (with how many times
    each came), then its last lines."""
    lines = log.read_text(errors="replace").splitlines()
    problems: Counter[str] = Counter()
    for line in lines:
        if '"level": "warning"' in line or '"level": "error"' in line or "Traceback" in line:
            # The message, without the time stamp, so repeats fold into one line.
            problems[line.split('"level"', 1)[-1][:LOG_WIDTH]] += 1
    shown = [f"{n} x {text}" for text, n in list(problems.items())[-LOG_PROBLEMS:]]
    tail = [line[:LOG_WIDTH] for line in lines[-LOG_TAIL:]]
    return "\n".join(["warnings and errors:", *(shown or ["none"]),
                      f"last {LOG_TAIL} lines:", *tail])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Any:
    """A failed end-to-end test shows each server process's log in brief: the system's
    folder is gone by the time anyone reads a CI log."""
    report = yield
    if report.failed and call.when == "call":
        for value in getattr(item, "funcargs", {}).values():
            folder = getattr(value, "log_dir", None) or getattr(value, "workdir", None)
            if not isinstance(folder, Path) or not folder.is_dir():
                continue
            for log in sorted(folder.glob("*.log")):
                report.sections.append((f"log of {log.stem}", _digest(log)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "distributed" in report.keywords and (report.when == "call" or report.outcome != "passed"):
        _distributed[report.outcome] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    host, port = cassandra_address()
    broker = amqp_url().rsplit("@", 1)[-1]
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(_distributed.items())) or "none collected"
    terminalreporter.section("distributed profile")
    terminalreporter.write_line(
        f"end-to-end tests against real RabbitMQ ({broker}) and Cassandra ({host}:{port}): "
        f"{outcomes}{' [CI=true: skips are failures]' if IN_CI else ''}")
