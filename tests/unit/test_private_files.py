"""What urne knows is created readable by its user alone: data files and the outbox
of sign-in codes 0600, in 0700 folders, whatever the umask (issue 9, privacy by
default)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from urne.platform.files import private_file, private_folder
from urne.services.identity.adapters.outbox_sender import FileOutboxSender
from urne.storage.sqlite import SqliteDb

pytestmark = pytest.mark.unit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most careless umask: everything readable and writable by everyone."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_data_file_and_its_wal_are_private(tmp_path: Path, open_umask: None) -> None:
    db = SqliteDb(tmp_path / "data" / "nested" / "vote.db")
    with db.tx() as tx:
        tx.execute("CREATE TABLE t (x INTEGER)")
        tx.execute("INSERT INTO t VALUES (1)")
    assert mode(tmp_path / "data") == mode(tmp_path / "data" / "nested") == 0o700
    for name in ("vote.db", "vote.db-wal", "vote.db-shm"):
        assert mode(tmp_path / "data" / "nested" / name) == 0o600, name
    db.close()


def test_the_outbox_of_codes_is_private(tmp_path: Path, open_umask: None) -> None:
    FileOutboxSender(tmp_path / "outbox", echo_codes=False).send("ada@example.org", "123", 600)
    assert mode(tmp_path / "outbox") == 0o700
    assert mode(tmp_path / "outbox" / "email.jsonl") == 0o600


def test_what_exists_keeps_the_mode_its_owner_gave(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    (shared / "f").write_text("")
    os.chmod(shared / "f", 0o644)
    private_file(shared / "f")
    private_folder(shared)
    assert (mode(shared), mode(shared / "f")) == (0o755, 0o644)
