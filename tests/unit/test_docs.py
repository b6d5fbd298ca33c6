"""docs/architecture.md opens with a map of the folders: it must match the tree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from urne.runtime.registry import SERVICES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def the_map() -> list[str]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = re.search(r"## Map\s+```\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no '## Map' code block"
    return block.group(1).splitlines()


def tracked_folders() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return {f.split("/")[0] for f in files if "/" in f and not f.startswith(".")}


def entries() -> dict[str, tuple[str, list[str]]]:
    """Top-level folder -> (its description, its indented lines)."""
    found: dict[str, tuple[str, list[str]]] = {}
    top = ""
    for line in the_map():
        if not line.strip():
            continue
        if not line.startswith(" "):
            top, _, description = line.partition(" ")
            top = top.rstrip("/")
            found[top] = (description, [])
        else:
            found[top][1].append(line.strip())
    return found


def test_every_top_level_folder_is_on_the_map_and_exists() -> None:
    mapped = set(entries())
    assert mapped >= tracked_folders(), tracked_folders() - mapped
    for name in mapped:
        assert (ROOT / name).is_dir(), name


def test_every_package_of_urne_is_on_the_map() -> None:
    _, lines = entries()["urne"]
    named = {line.split()[0].rstrip("/") for line in lines}
    real = {p.name for p in (ROOT / "urne").iterdir()
            if p.is_dir() and not p.is_symlink() and p.name != "__pycache__"}
    assert named - {"services"} == real  # "services -> …, gateway -> …" names the links
    for link in ("services", "gateway"):
        assert (ROOT / "urne" / link).resolve() == ROOT / link


def test_the_service_layout_holds_for_every_service() -> None:
    described = [line.split()[0].rstrip("/") for line in entries()["services"][1]]
    common = [d.removeprefix("<name>/") for d in described if d.startswith("<name>/")]
    assert set(SERVICES) == {p.name for p in (ROOT / "services").iterdir()
                             if p.is_dir() and p.name != "__pycache__"}
    for name in SERVICES:
        own = [d.removeprefix(f"{name}/") for d in described if d.startswith(f"{name}/")]
        folder = ROOT / "services" / name
        actual = {p.name for p in folder.iterdir()
                  if p.name not in ("__init__.py", "__pycache__")}
        assert actual == {*common, *own}, f"services/{name}: on disk {sorted(actual)}"


def test_every_test_folder_is_named() -> None:
    line = entries()["tests"][0]
    real = {p.name for p in (ROOT / "tests").iterdir()
            if p.is_dir() and p.name != "__pycache__"}
    named = set(re.findall(r"([a-z0-9_]+)/", line))
    assert named == real


def test_every_message_type_has_its_row() -> None:
    """The message table of docs/architecture.md names every registered message type:
    a new message without a row there is a flow the page no longer tells."""
    from urne.contracts import REGISTRY

    rows = "\n".join(line for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines()
                     if line.startswith("| `"))
    missing = sorted(t for t in REGISTRY if f"`{t}`" not in rows)
    assert missing == [], f"no row in docs/architecture.md's message table for {missing}"
