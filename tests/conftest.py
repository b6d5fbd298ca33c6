"""Suite-wide reporting: make it visible that the distributed tests really ran."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.servers import IN_CI, amqp_url, cassandra_address

_distributed: Counter[str] = Counter()


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
