"""SQLite for the embedded profile: one WAL file per service, numbered migrations.

``synchronous=FULL`` makes every commit durable before a 2xx goes out: a crash or
a power cut after the reply loses nothing accepted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from urne.platform.files import private_file
from urne.storage.migrations import migration_files, split_statements

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL
)"""


class SqliteDb:
    """A connection shared by the threads of one process, serialised by a lock.

    Embedded serves up to a few thousand people: one writer at a time is plenty,
    and it keeps "read latest sequence, insert next" free of races.
    """

    def __init__(self, path: Path, migrations: Path | None = None):
        # 0600 in 0700 (urne/platform/files.py); SQLite gives its -wal and -shm files
        # the database file's mode.
        private_file(path)
        self.path = path
        self.lock = threading.RLock()
        self._depth = 0  # transactions open on the thread holding the lock
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        if migrations is not None:
            self.migrate(migrations)

    def migrate(self, folder: Path) -> list[str]:
        """Apply the migrations of ``folder`` not applied yet; the ones applied."""
        applied: list[str] = []
        with self.tx() as c:
            c.execute(MIGRATIONS_TABLE)
            done = {r[0] for r in c.execute("SELECT version FROM schema_migrations")}
            for f in migration_files(folder):
                version = int(f.stem[:3])
                if version in done:
                    continue
                for statement in split_statements(f.read_text()):
                    c.execute(statement)
                c.execute("INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))",
                          (version, f.stem))
                applied.append(f.stem)
        return applied

    @contextmanager
    def tx(self) -> Iterator[_Tx]:
        """A transaction; nested in another one on this thread, it joins it, so a unit of
        work (a command and its outbox events, a batch of ballots) commits as one."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield _Tx(self.conn)
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield _Tx(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def ping(self) -> None:
        self.query("SELECT 1")

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class _Tx:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: list[tuple]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)
