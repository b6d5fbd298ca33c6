"""No table of the vote and tally services has a column for a person id, an e-mail
address, a phone number or a name, on either store (issue 9's acceptance; the messages
and tokens: tests/unit/test_no_personal_data.py). Read from the stores themselves, as
the migrations left them, not from the migration files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import CassandraRun
from tests.unit.test_no_personal_data import PERSONAL
from urne.runtime.registry import SERVICES
from urne.storage.sqlite import SqliteDb

pytestmark = pytest.mark.integration

KEPT_APART = ("vote", "tally")


def sqlite_columns(path: Path, service: str) -> dict[str, set[str]]:
    db = SqliteDb(path, SERVICES[service].migrations.sqlite)
    tables = [r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: {r[1] for r in db.query(f"PRAGMA table_info({t})")} for t in tables}


def personal(columns: dict[str, set[str]]) -> dict[str, set[str]]:
    # schema_migrations.name names a migration file (urne/storage/migrations.py).
    return {t: found for t, cols in columns.items() if t != "schema_migrations"
            if (found := {c for c in cols if c in PERSONAL or "email" in c or "phone" in c
                          or "person" in c})}


@pytest.mark.parametrize("service", KEPT_APART)
def test_no_sqlite_table_of_vote_or_tally_names_a_person(tmp_path: Path, service: str) -> None:
    columns = sqlite_columns(tmp_path / f"{service}.db", service)
    assert len(columns) > 3 and personal(columns) == {}


@pytest.mark.distributed
@pytest.mark.parametrize("service", KEPT_APART)
def test_no_cassandra_table_of_vote_or_tally_names_a_person(cassandra: CassandraRun,
                                                           service: str) -> None:
    rows = cassandra.session.execute(
        "SELECT table_name, column_name FROM system_schema.columns WHERE keyspace_name = %s",
        (cassandra.keyspaces[service],))
    columns: dict[str, set[str]] = {}
    for row in rows:
        columns.setdefault(row.table_name, set()).add(row.column_name)
    assert len(columns) > 3 and personal(columns) == {}


def test_identitys_tables_show_the_check_sees_a_person(tmp_path: Path) -> None:
    """The same check on identity, which keeps persons, finds them: it can fail."""
    found = personal(sqlite_columns(tmp_path / "identity.db", "identity"))
    assert {"person_id", "email", "phone"} <= set().union(*found.values())
