"""Numbered schema migrations: ``NNN_name.sql`` (SQLite) and ``NNN_name.cql`` (Cassandra).

Each service keeps them in its own package (``services/<name>/migrations/{sqlite,
cassandra}``); the composition root hands the folder to the storage helpers, which
never look for services themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class Migrations:
    """A service's two migration folders."""

    sqlite: Path
    cassandra: Path

    @classmethod
    def of(cls, service_package: ModuleType) -> Migrations:
        """The folders of ``services/<name>/migrations``, given the service's package."""
        assert service_package.__file__, service_package
        root = Path(service_package.__file__).parent / "migrations"
        return cls(sqlite=root / "sqlite", cassandra=root / "cassandra")


def migration_files(folder: Path) -> list[Path]:
    """``NNN_name.sql`` / ``NNN_name.cql`` files of ``folder``, in order of NNN."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix in (".sql", ".cql") and p.stem[:3].isdigit())


def split_statements(script: str) -> list[str]:
    """Statements of a migration file; ``--`` comments dropped, split on ``;``."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
