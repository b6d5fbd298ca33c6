"""The wheel installs one top-level package, ``urne``, with the services, the gateway,
their migrations and the contract schemas inside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # Built from a copy of the working tree's files that git would commit (links kept as
    # links), so the build leaves nothing in the checkout; no build isolation, so no
    # network: setuptools is a dev pin.
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if not (ROOT / name).is_symlink() and not (ROOT / name).exists():
            continue  # deleted, not committed yet
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(out), str(source)], check=True,
                   capture_output=True)
    [built] = out.glob("urne-*.whl")
    return zipfile.ZipFile(built)


def test_one_top_level_package(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"urne"}
    [top_level] = [n for n in wheel.namelist() if n.endswith("top_level.txt")]
    assert wheel.read(top_level).decode().split() == ["urne"]


def test_services_gateway_migrations_and_schemas_are_inside(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for service in ("identity", "proposal", "vote", "tally"):
        assert f"urne/services/{service}/handlers.py" in names
        assert f"urne/services/{service}/migrations/sqlite/001_init.sql" in names
        assert f"urne/services/{service}/migrations/cassandra/001_init.cql" in names
    assert "urne/gateway/app.py" in names and "urne/runtime/registry.py" in names
    assert "urne/contracts/schemas/envelope.json" in names
    # The web pages' templates, assets and catalogues.
    assert {"urne/gateway/web/templates/base.html", "urne/gateway/web/static/urne.css",
            "urne/gateway/web/templates/results/result.html",
            "urne/gateway/web/static/budget.js",
            "urne/gateway/web/locales/fr/LC_MESSAGES/messages.po"} <= names
    # The links are followed: real files, not link entries.
    info = wheel.getinfo("urne/services/vote/handlers.py")
    assert info.file_size > 1000
