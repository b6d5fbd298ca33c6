"""``urne backup`` and ``urne restore``: the embedded profile's data folder in one file.

The archive (a gzipped tar) holds every service's SQLite file (``<service>.db``), copied
online with SQLite's backup API while ``urne up`` may be running; the signing keys
(``keys/``, from ``URNE_KEYS_DIR`` when it is set); the folder's secrets
(``pseudonym-secret``, ``code-secret``) when it has them; and ``manifest.json``: the
format, urne's version, when it was made, each file's SHA-256 and size, and each
database's applied migrations. It holds secrets: whoever has it can sign results and
tokens and link voter keys to persons. It is written 0600, under a temporary name, and
published by a hard link, which never replaces an existing file.

The databases are taken at one instant: with every file's write lock held (``BEGIN
IMMEDIATE`` on a connection of its own per file, so no file can take a commit), a read
transaction is opened on each, then the locks are let go; writers wait the milliseconds
that takes (their busy timeout), and the copies are made from the read snapshots while
they write on. Waiting for a moment when no file commits instead would never come under
a steady load of ballots. The copy is then what a power cut at that instant would have
left: every commit is whole, and an event committed to its producer's outbox but not yet
handled by every subscriber is still in that outbox, to be delivered when the restored
folder starts (``EmbeddedBus.recover``). Not in the archive: the ``outbox/`` folder (a
spool of the sign-in codes sent in development, not state) and anything else in the
folder.

``restore`` reads the whole archive and checks it (the manifest, every member's name,
type, size and checksum, that this urne knows each database's migrations) before it
writes anything; then it extracts into a folder beside the target, checks each database
with ``PRAGMA integrity_check`` and renames that folder into place. A non-empty target is
refused unless ``replace`` is given, and refused even then while a process holds one of
its databases open (``urne up``); its contents are then moved beside it, not deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

import urne
from urne.runtime.registry import SERVICES
from urne.storage.migrations import migration_files

FORMAT = "urne-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SECRET_FILES = ("pseudonym-secret", "code-secret")  # runtime/embedded.py, folder_secret
SECRET_VARIABLES = ("URNE_PSEUDONYM_SECRET", "URNE_CODE_SECRET")
KEYS = "keys"
CHUNK = 1 << 20
MAX_MANIFEST = 1 << 20  # bytes: a manifest lists a few dozen files
# Tries to hold every database's write lock at once, each waiting this long for a lock
# (a writer holds one for a transaction: milliseconds), all let go between tries.
CUT_ATTEMPTS = 50
LOCK_WAIT_SECONDS = 0.2


class BackupError(Exception):
    """A backup or a restore that cannot be done; nothing was written."""


@dataclass(frozen=True)
class Backup:
    archive: Path
    size: int  # bytes of the archive
    files: int
    attempts: int  # tries it took to take every database at one instant
    seconds: float
    secrets_elsewhere: tuple[str, ...]  # URNE_* secrets set, hence not in the archive


@dataclass(frozen=True)
class Restored:
    data_dir: Path
    files: int
    databases: dict[str, list[str]]  # service -> migrations applied
    created_at: str
    urne_version: str
    moved_aside: Path | None = None  # where a replaced folder's contents went
    notes: list[str] = field(default_factory=list)


def embedded_keys_dir(data_dir: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """Where ``urne up --data-dir data_dir`` keeps its keys (EmbeddedSettings: the
    ``URNE_KEYS_DIR`` variable, else ``<data_dir>/keys``), without its other settings,
    which a backup does not need."""
    return Path(environ["URNE_KEYS_DIR"]) if environ.get("URNE_KEYS_DIR") else data_dir / KEYS


# --- backup ---------------------------------------------------------------------------

def backup(data_dir: Path, archive: Path, keys_dir: Path | None = None,
           environ: Mapping[str, str] = os.environ) -> Backup:
    """Write ``archive`` from the embedded data folder ``data_dir`` (``urne up`` may run on
    it); refuses an existing ``archive``."""
    started = time.monotonic()
    keys_dir = keys_dir or embedded_keys_dir(data_dir, environ)
    databases = {name: data_dir / f"{name}.db" for name in SERVICES}
    missing = [p.name for p in databases.values() if not p.is_file()]
    if missing:
        raise BackupError(f"{data_dir} is not an embedded data folder (no {', '.join(missing)};"
                          " start `urne up --data-dir` on it once)")
    if not keys_dir.is_dir():
        raise BackupError(f"no keys folder {keys_dir}")
    if archive.exists() or archive.is_symlink():
        raise BackupError(f"{archive} exists: give a new name (a backup never overwrites)")
    if not archive.parent.is_dir():
        raise BackupError(f"no folder {archive.parent}")
    # The copies are staged beside the archive (its disk, not /tmp's), in a 0700 folder.
    staging = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", dir=archive.parent))
    try:
        copies, attempts = _copy_databases(databases, staging)
        members: list[tuple[str, Path | bytes]] = [(f"{name}.db", path)
                                                   for name, path in copies.items()]
        for name in SECRET_FILES:
            if (data_dir / name).is_file():
                members.append((name, (data_dir / name).read_bytes()))
        for path in sorted(keys_dir.rglob("*")):
            if path.is_symlink():
                raise BackupError(f"{path} is a link: the keys folder must hold files only")
            if path.is_file():
                members.append((f"{KEYS}/{path.relative_to(keys_dir).as_posix()}",
                                path.read_bytes()))
        manifest = _manifest(members, copies)
        size = _write_archive(archive, staging, manifest, members)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Backup(archive, size, len(members), attempts, time.monotonic() - started,
                  tuple(v for v in SECRET_VARIABLES if environ.get(v)))


def _copy_databases(databases: dict[str, Path], staging: Path) -> tuple[dict[str, Path], int]:
    """Each database copied into ``staging``, all at one instant; and the tries it took."""
    with contextlib.ExitStack() as stack:
        def connect(path: Path) -> sqlite3.Connection:
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None,
                                   timeout=10)
            stack.callback(conn.close)
            conn.execute("PRAGMA query_only=ON")
            return conn

        sources = {name: connect(path) for name, path in databases.items()}
        lockers = []  # never write: they only keep writers out while the snapshots open
        for path in databases.values():
            locker = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None,
                                     timeout=LOCK_WAIT_SECONDS)
            stack.callback(locker.close)
            lockers.append(locker)
        attempts = 0
        while not _snapshots_at_one_instant(lockers, list(sources.values())):
            attempts += 1
            if attempts == CUT_ATTEMPTS:
                raise BackupError(f"could not hold every database's write lock at once in "
                                  f"{CUT_ATTEMPTS} tries; try again")
            time.sleep(random.uniform(0, 0.05))
        attempts += 1
        copies = {}
        for name, conn in sources.items():
            copies[name] = staging / f"{name}.db"
            target = sqlite3.connect(copies[name], isolation_level=None)
            try:
                conn.backup(target)  # from the snapshot, in one step
                # A file of its own, without -wal: urne turns WAL on again when it opens it.
                target.execute("PRAGMA journal_mode=DELETE")
                _check_integrity(target, name)
            finally:
                target.close()
            conn.execute("ROLLBACK")
        return copies, attempts


def _snapshots_at_one_instant(lockers: list[sqlite3.Connection],
                              sources: list[sqlite3.Connection]) -> bool:
    """Every write lock taken (in one order, each waiting its busy timeout), a read
    snapshot opened on each source, every lock let go; False, with nothing held, if a
    lock could not be had."""
    held = []
    try:
        for locker in lockers:
            locker.execute("BEGIN IMMEDIATE")
            held.append(locker)
        for conn in sources:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot
        return True
    except sqlite3.OperationalError:  # "database is locked": a writer kept it
        for conn in sources:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return False
    finally:
        for locker in held:
            locker.execute("ROLLBACK")


def _check_integrity(conn: sqlite3.Connection, name: str) -> None:
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{name}: not a sound database ({exc})") from exc
    if rows != ["ok"]:
        raise BackupError(f"{name}: integrity_check failed: {'; '.join(rows[:5])}")


def _migrations(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute(
            "SELECT name FROM schema_migrations ORDER BY version")]
    except sqlite3.Error as exc:
        raise BackupError(f"{path.name}: no migrations table ({exc})") from exc
    finally:
        conn.close()


def _manifest(members: list[tuple[str, Path | bytes]], copies: dict[str, Path]
              ) -> dict[str, Any]:
    files = []
    for name, source in members:
        digest, size = _digest(source)
        files.append({"path": name, "sha256": digest, "size": size})
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "profile": "embedded",
            "urne_version": urne.__version__, "sqlite_version": sqlite3.sqlite_version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "consistency": "every database at one instant",
            "files": files,
            "databases": {name: {"path": f"{name}.db", "migrations": _migrations(path)}
                          for name, path in copies.items()}}


def _digest(source: Path | bytes) -> tuple[str, int]:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest(), len(source)
    h, size = hashlib.sha256(), 0
    with source.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _write_archive(archive: Path, staging: Path, manifest: dict[str, Any],
                   members: list[tuple[str, Path | bytes]]) -> int:
    partial = staging / "archive.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    now = int(time.time())

    def info(name: str, size: int) -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.size, member.mode, member.mtime = size, 0o600, now
        return member

    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            text = json.dumps(manifest, indent=2).encode() + b"\n"
            tar.addfile(info(MANIFEST, len(text)), io.BytesIO(text))
            for name, source in members:
                if isinstance(source, bytes):
                    tar.addfile(info(name, len(source)), io.BytesIO(source))
                else:
                    with source.open("rb") as fh:
                        tar.addfile(info(name, source.stat().st_size), fh)
        raw.flush()
        os.fsync(raw.fileno())
    try:
        os.link(partial, archive)  # atomic, and never replaces an existing file
    except FileExistsError as exc:
        raise BackupError(f"{archive} appeared meanwhile: left as it is") from exc
    _fsync_folder(archive.parent)
    return archive.stat().st_size


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- restore --------------------------------------------------------------------------

def restore(archive: Path, data_dir: Path, replace: bool = False,
            environ: Mapping[str, str] = os.environ) -> Restored:
    """Restore ``archive`` into ``data_dir`` (missing or empty, or non-empty with
    ``replace``): all of it, checked, or nothing."""
    manifest = _check_archive(archive)
    moved_aside = None
    target_exists = data_dir.exists() or data_dir.is_symlink()
    if target_exists and not data_dir.is_dir():
        raise BackupError(f"{data_dir} is not a folder")
    if target_exists and any(data_dir.iterdir()):
        if not replace:
            raise BackupError(f"{data_dir} is not empty: restore into a new folder, or give "
                              "--replace (its contents are then moved beside it)")
        _refuse_if_open(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=data_dir.parent))
    try:
        _extract(archive, manifest, staging)
        for name, db in manifest["databases"].items():
            path = staging / db["path"]
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                _check_integrity(conn, name)
            finally:
                conn.close()
            if _migrations(path) != db["migrations"]:
                raise BackupError(f"{db['path']}: its migrations are not the manifest's")
        _fsync_folder(staging)
        if target_exists and any(data_dir.iterdir()):
            moved_aside = _aside(data_dir)
            data_dir.rename(moved_aside)
        elif target_exists:
            data_dir.rmdir()
        try:
            staging.rename(data_dir)
        except OSError:
            if moved_aside is not None:
                moved_aside.rename(data_dir)
            raise
        _fsync_folder(data_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    notes = []
    keys_dir = embedded_keys_dir(data_dir, environ)
    if keys_dir != data_dir / KEYS:
        notes.append(f"the keys are in {data_dir / KEYS}, but URNE_KEYS_DIR names {keys_dir}: "
                     "unset it, or move them there")
    present = {f["path"] for f in manifest["files"]}
    for file, variable in zip(SECRET_FILES, SECRET_VARIABLES, strict=True):
        if file not in present:
            notes.append(f"{file} was not in the archive: urne needs {variable} as it was "
                         "when the backup was made")
    return Restored(data_dir, len(manifest["files"]),
                    {n: d["migrations"] for n, d in manifest["databases"].items()},
                    manifest["created_at"], manifest["urne_version"], moved_aside, notes)


def _aside(data_dir: Path) -> Path:
    """A new name beside ``data_dir`` for what it held."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        aside = data_dir.with_name(f"{data_dir.name}.before-restore-{stamp}"
                                   + (f"-{n}" if n > 1 else ""))
        if not (aside.exists() or aside.is_symlink()):
            return aside
    raise BackupError(f"too many folders named {data_dir.name}.before-restore-{stamp}*")


def _open(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, mode="r:gz")
    except FileNotFoundError as exc:
        raise BackupError(f"no file {archive}") from exc
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BackupError(f"{archive} is not a urne backup (not a tar.gz: {exc})") from exc


@contextlib.contextmanager
def _reading(archive: Path) -> Iterator[tarfile.TarFile]:
    tar = _open(archive)
    try:
        yield tar
    except (OSError, tarfile.TarError, EOFError, ValueError) as exc:
        raise BackupError(f"{archive} is damaged ({type(exc).__name__}: {exc})") from exc
    finally:
        tar.close()


def _check_archive(archive: Path) -> dict[str, Any]:
    """The manifest, once every member is checked against it; writes nothing."""
    with _reading(archive) as tar:
        first = tar.next()
        if first is None or first.name != MANIFEST or not first.isfile() \
                or first.size > MAX_MANIFEST:
            raise BackupError(f"{archive} is not a urne backup (it does not open with "
                              f"{MANIFEST})")
        fh = tar.extractfile(first)
        assert fh is not None
        manifest = _parse_manifest(fh.read(), archive)
        expected = {f["path"]: f for f in manifest["files"]}
        seen: set[str] = set()
        for member in tar:  # from the first one again
            if member is first:
                continue
            name = _safe_name(member, expected)
            if name in seen:
                raise BackupError(f"{name} is twice in the archive")
            seen.add(name)
            _copy_checked(tar, member, expected[name], None)
        if missing := sorted(set(expected) - seen):
            raise BackupError(f"the archive lacks {', '.join(missing)} (truncated?)")
        assert tar.fileobj is not None
        while tar.fileobj.read(CHUNK):  # to its end, where gzip checks its CRC and length
            pass
    return manifest


def _parse_manifest(text: bytes, archive: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise BackupError(f"{archive}: {MANIFEST} is not JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a urne backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{archive} is in backup format {manifest.get('format_version')!r};"
                          f" this urne ({urne.__version__}) reads format {FORMAT_VERSION}")
    try:
        files, databases = manifest["files"], manifest["databases"]
        paths = [f["path"] for f in files]
        ok = (all(isinstance(f["sha256"], str) and isinstance(f["size"], int)
                  for f in files) and len(set(paths)) == len(paths)
              and isinstance(manifest["created_at"], str)
              and isinstance(manifest["urne_version"], str)
              and all(isinstance(d["migrations"], list) and d["path"] in paths
                      for d in databases.values()))
    except (KeyError, TypeError) as exc:
        raise BackupError(f"{archive}: {MANIFEST} is incomplete ({exc!r})") from exc
    if not ok:
        raise BackupError(f"{archive}: {MANIFEST} is malformed")
    for path in paths:
        _check_path(path)
    if set(databases) != set(SERVICES):
        raise BackupError(f"the archive's databases ({', '.join(sorted(databases))}) are not "
                          f"this urne's services ({', '.join(SERVICES)})")
    for name, db in databases.items():
        if db["path"] != f"{name}.db":
            raise BackupError(f"{name}'s database is named {db['path']!r}")
        known = {p.stem for p in migration_files(SERVICES[name].migrations.sqlite)}
        if unknown := [m for m in db["migrations"] if m not in known]:
            raise BackupError(f"{name}.db has migrations this urne ({urne.__version__}) does "
                              f"not know: {', '.join(unknown)} (made by urne "
                              f"{manifest['urne_version']}: restore with that version)")
    return manifest


def _check_path(name: str) -> None:
    path = PurePosixPath(name)
    if (not name or name.startswith("/") or "\\" in name or "\x00" in name
            or path.is_absolute() or any(p in ("", ".", "..") for p in name.split("/"))
            or name == MANIFEST):
        raise BackupError(f"refused: unsafe path {name!r} in the archive")


def _safe_name(member: tarfile.TarInfo, expected: dict[str, Any]) -> str:
    _check_path(member.name)
    if not member.isfile():
        raise BackupError(f"refused: {member.name!r} is not a regular file (links and "
                          "devices are never restored)")
    if member.name not in expected:
        raise BackupError(f"refused: {member.name!r} is not in the manifest")
    return member.name


def _copy_checked(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: dict[str, Any],
                  out: IO[bytes] | None) -> None:
    if member.size != entry["size"]:
        raise BackupError(f"{member.name}: {member.size} bytes, the manifest says "
                          f"{entry['size']}")
    fh = tar.extractfile(member)
    assert fh is not None
    h = hashlib.sha256()
    while chunk := fh.read(CHUNK):
        h.update(chunk)
        if out is not None:
            out.write(chunk)
    if h.hexdigest() != entry["sha256"]:
        raise BackupError(f"{member.name}: checksum mismatch (the archive is damaged or "
                          "was changed)")


def _extract(archive: Path, manifest: dict[str, Any], staging: Path) -> None:
    """Every member into ``staging``, checked again as it is written (the archive could
    have changed since it was checked)."""
    expected = {f["path"]: f for f in manifest["files"]}
    seen: set[str] = set()
    with _reading(archive) as tar:
        for member in tar:
            if member.name == MANIFEST and not seen:
                seen.add(MANIFEST)
                continue
            name = _safe_name(member, expected)
            if name in seen:
                raise BackupError(f"{name} is twice in the archive")
            seen.add(name)
            path = staging.joinpath(*name.split("/"))
            for folder in reversed(path.relative_to(staging).parents[:-1]):
                (staging / folder).mkdir(mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                _copy_checked(tar, member, expected[name], out)
                out.flush()
                os.fsync(out.fileno())
    if missing := sorted(set(expected) - seen):
        raise BackupError(f"the archive lacks {', '.join(missing)} (it changed while read)")


def _refuse_if_open(data_dir: Path) -> None:
    """Refuse a folder whose databases a process holds open (``urne up``): SQLite's locks,
    asked for an exclusive one without waiting."""
    for name in SERVICES:
        path = data_dir / f"{name}.db"
        if not path.is_file():
            continue
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None,
                               timeout=0)
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            raise BackupError(f"{path} is in use ({exc}): stop urne on {data_dir} first"
                              ) from exc
        finally:
            conn.close()
