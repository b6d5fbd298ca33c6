"""The floors of ``urne`` (see ``urne/__init__.py``): a module imports from its own
floor or the ones below; on floor 3, the gateway and each service import only
from themselves. Every import counts, including those inside functions."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# Where each part of the namespace lives in the checkout (urne/services and
# urne/gateway are links to the top-level folders).
FOLDERS = {"urne": ROOT / "urne", "urne.services": ROOT / "services",
           "urne.gateway": ROOT / "gateway"}
FLOORS = {
    "urne": 0, "urne.contracts": 0, "urne.counting": 0, "urne.record": 0,
    "urne.platform": 1, "urne.crypto": 1, "urne.audit": 1,
    "urne.messaging": 2, "urne.storage": 2,
    "urne.gateway": 3, "urne.services": 3,
    "urne.runtime": 4, "urne.__main__": 4,
}
SIBLINGS = 3  # the floor whose rooms never import each other
# Importable from a checkout, but not part of what is installed.
OUTSIDE = ("services", "gateway", "tests", "loadtests")
# The one exception: ``urne loadtest`` runs the checkout's benchmark (and says so when
# it is missing, as in an installed wheel).
ALLOWED = {("urne.runtime.cli", "loadtests.run")}


def room(module: str) -> str:
    """The unit of the layering a module belongs to: ``urne.services.vote`` for every
    module of the vote service, ``urne.storage`` for the storage helpers, ..."""
    parts = module.split(".")
    if parts[:2] == ["urne", "services"] and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def floor(module: str) -> int:
    """The floor of a module; KeyError for a part of the namespace no floor lists."""
    name = room(module)
    return FLOORS["urne.services" if name.startswith("urne.services.") else name]


def sources() -> dict[str, str]:
    """Module name -> source text, for every module of the installed package."""
    found: dict[str, str] = {}
    for prefix, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder).with_suffix("")
            if prefix == "urne" and relative.parts[0] in ("services", "gateway"):
                continue  # the links: read through their own folders
            parts = [p for p in relative.parts if p != "__init__"]
            found[".".join([prefix, *parts])] = path.read_text(encoding="utf-8")
    return found


def imports(module: str, source: str, is_package: bool) -> Iterator[str]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                package = module.split(".")
                base = package[: len(package) - node.level + (1 if is_package else 0)]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


def violations(modules: Mapping[str, str], packages: frozenset[str] = frozenset()) -> list[str]:
    found = []
    for module, source in sorted(modules.items()):
        for target in imports(module, source, module in packages):
            if (module, target) in ALLOWED:
                continue
            if target.split(".")[0] in OUTSIDE:
                found.append(f"{module} imports {target}: use the urne.* name")
                continue
            if not target.startswith("urne.") and target != "urne":
                continue  # standard library and third parties
            if room(target) not in FLOORS and not room(target).startswith("urne.services."):
                found.append(f"{module} imports {target}, which is on no floor")
                continue
            mine, theirs = floor(module), floor(target)
            same_room = room(target) == room(module)
            if theirs > mine or (theirs == mine == SIBLINGS and not same_room):
                found.append(f"{module} (floor {mine}) imports {target} (floor {theirs})")
    return found


def package_names() -> frozenset[str]:
    names = set()
    for prefix, folder in FOLDERS.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder).parts
            names.add(".".join([prefix, *relative]))
    return frozenset(names)


def test_every_module_is_on_a_known_floor() -> None:
    for module in sources():
        assert floor(module) in range(5), module


def test_the_tree_respects_its_floors() -> None:
    assert violations(sources(), package_names()) == []


@pytest.mark.parametrize(("module", "source"), [
    ("urne.storage.sqlite", "from urne.services.vote import domain"),
    ("urne.contracts.events", "import urne.gateway.app"),
    ("urne.messaging.kernel", "def late():\n    from urne.runtime import registry"),
    ("urne.platform.settings", "from urne.storage import cassandra"),
    ("urne.services.tally.handlers", "from urne.services.vote.domain import Ballot"),
    ("urne.services.vote.adapters.sqlite_store", "from ...identity import domain"),
    ("urne.services.vote.handlers", "from urne.somewhere import thing"),
    ("urne.gateway.routes.polls", "from urne.services.vote.handlers import VoteHandlers"),
    ("urne.services.identity.handlers", "from urne.gateway.deps import Services"),
    ("urne.services.vote.handlers", "from services.vote.domain import Ballot"),
])
def test_a_wrong_import_is_reported(module: str, source: str) -> None:
    assert len(violations({module: source})) == 1


@pytest.mark.parametrize(("module", "source"), [
    ("urne.services.vote.handlers", "from urne.services.vote.domain import Ballot"),
    ("urne.services.vote.adapters.sqlite_store", "from ..domain import Ballot"),
    ("urne.gateway.routes.polls", "from urne.contracts.commands import CastBallot"),
    ("urne.runtime.registry", "import urne.services.vote\nfrom urne.gateway import app"),
    ("urne.messaging.embedded_bus", "from urne.storage.sqlite import SqliteDb"),
    ("urne.counting.rules", "from urne.record.canonical import canonical_json"),
])
def test_a_right_import_is_not_reported(module: str, source: str) -> None:
    assert violations({module: source}) == []
