"""Prometheus's configuration, its alerts and the Grafana dashboard: checked by promtool
(infra/prometheus/install-promtool.sh), and held to the metrics urne and RabbitMQ really
export, so no panel or alert reads a series that never exists."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import urne.platform.metrics  # noqa: F401  (registers every metric urne exports)
from tests.ops.tools import ROOT, alert_rules, dashboard_queries, tool
from tests.support.servers import require_rabbitmq
from urne.messaging.ballot_stream import DEAD_LETTERS, shard_queue

pytestmark = pytest.mark.unit

PROMETHEUS = ROOT / "infra" / "prometheus"
RULES = alert_rules()
QUERIES = dashboard_queries()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
# A metric name in PromQL: urne's own, RabbitMQ's plugin's, and Prometheus's `up`.
METRIC = re.compile(r"\b((?:urne|rabbitmq)_[a-z0-9_]+|up)\b(?![\s]*\()")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = tool("promtool", "infra/prometheus/install-promtool.sh")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120,
                          cwd=PROMETHEUS)


def test_promtool_accepts_the_configuration_and_its_rules() -> None:
    for args in (("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml")):
        checked = promtool(*args)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_fire_as_their_unit_tests_say() -> None:
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    covered = {case["alertname"] for test in cases for case in test["alert_rule_test"]
               if case.get("exp_alerts")}
    assert covered == {rule["alert"] for rule in RULES}  # each alert seen firing


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    # The check above could not pass a mistake: a query that does not parse fails it.
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"alert": "Broken", "expr": "sum(rate(urne_results_published_total[5m])"}]}]}))
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    # promtool parses PromQL in rule files: each panel's query as a recording rule.
    rules = tmp_path / "dashboard_queries.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(QUERIES)]}]}))
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _urne_series() -> set[str]:
    """Every series name urne's processes can export (a histogram as its buckets, sum and
    count; a counter with its _total)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",), "summary": ("_sum", "_count")}
    return {family.name + suffix for family in REGISTRY.collect()
            if family.name.startswith("urne_") for suffix in suffixes[family.type]}


def _names(queries: list[str]) -> set[str]:
    return {name for query in queries for name in METRIC.findall(query)}


QUERIED = _names(QUERIES + [rule["expr"] for rule in RULES])


def test_every_urne_metric_queried_is_exported_by_the_code() -> None:
    queried = {name for name in QUERIED if name.startswith("urne_")}
    assert queried - _urne_series() == set()
    # What the dashboard is for (issue 12): each of these is on it.
    on_dashboard = _names(QUERIES)
    assert {"urne_ballots_recorded_total", "urne_http_problems_total",
            "urne_http_request_duration_seconds_bucket", "urne_tally_lag_seconds_bucket",
            "urne_tally_worker_checkpoint", "urne_service_ready",
            "rabbitmq_detailed_queue_messages"} <= on_dashboard


def _rabbitmq_families(path: str) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:15692{path}", timeout=10) as page:
        text = page.read().decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))


def test_every_rabbitmq_metric_queried_is_one_the_broker_serves() -> None:
    # The real broker started by infra/rabbitmq (its rabbitmq_prometheus plugin), on the
    # two endpoints prometheus.yml scrapes.
    require_rabbitmq()
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (detailed,) = [job for job in config["scrape_configs"]
                   if job.get("metrics_path") == "/metrics/detailed"]
    query = "&".join(f"family={f}" for f in detailed["params"]["family"])
    served = _rabbitmq_families("/metrics") | _rabbitmq_families(
        f"/metrics/detailed?{query}")
    queried = {name for name in QUERIED if name.startswith("rabbitmq_")}
    assert queried and queried - served == set()


def test_the_queues_named_are_the_code_s() -> None:
    texts = QUERIES + [rule["expr"] for rule in RULES]
    for text in texts:
        for queue in re.findall(r'queue="([^"]+)"', text):
            assert queue == DEAD_LETTERS, queue
        for pattern in re.findall(r'queue=~"([^"]+)"', text):
            regex = pattern.encode().decode("unicode_escape")  # PromQL's string escapes
            assert re.fullmatch(regex, shard_queue(0)) and re.fullmatch(regex, shard_queue(127))
            assert not re.fullmatch(regex, DEAD_LETTERS)


def test_each_alert_has_its_runbook() -> None:
    for rule in RULES:
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert re.search(rf"^### {rule['alert']}$", OPERATIONS, re.MULTILINE), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
