"""Where each service keeps its numbered schema migrations (SQLite and CQL)."""

from __future__ import annotations

from pathlib import Path

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"


def migration_files(service: str, kind: str) -> list[Path]:
    """``services/<service>/migrations/<kind>/NNN_name.{sql,cql}``, in order of NNN."""
    folder = SERVICES_DIR / service / "migrations" / kind
    return sorted(p for p in folder.iterdir()
                  if p.suffix in (".sql", ".cql") and p.stem[:3].isdigit())


def split_statements(script: str) -> list[str]:
    """Statements of a migration file; ``--`` comments dropped, split on ``;``."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
