"""The command-line tools the static checks run (promtool, kustomize, kubeconform …),
installed by infra/ scripts into a cache outside the checkout.

Outside CI a missing tool skips its checks (they run anywhere else); with ``CI=true`` it
is a failure, as a missing server is (tests/support/servers.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.servers import IN_CI

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("URNE_TOOLS_DIR") or Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "urne" / "tools")
TOOLS_BIN = TOOLS / "bin"


def tool(name: str, installer: str) -> str:
    """The path of ``name``, from the tools cache or else the PATH."""
    cached = TOOLS_BIN / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    found = shutil.which(name)
    if found:
        return found
    unavailable(f"{name} is not installed; run {installer}")
    raise AssertionError("unreachable")  # skip and fail raise


def unavailable(message: str) -> None:
    """Skip, or fail under CI: what the checks need is missing."""
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of infra/prometheus/alerts.yml."""
    alerts = yaml.safe_load((ROOT / "infra/prometheus/alerts.yml").read_text())
    return [rule for group in alerts["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    """Every panel query of the Grafana dashboard."""
    dashboard = json.loads((ROOT / "infra/grafana/dashboards/urne.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
