"""``urne backup`` and ``urne restore`` (embedded profile): a backup taken while the app
serves and a voter keeps voting restores into a folder where the same data is served and
the same keys sign; bad archives and targets are refused, changing nothing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import random
import re
import sqlite3
import stat
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.e2e.scenario import OpenPoll, bearer, open_poll, vote, voting_token, wait_for
from urne.platform.settings import EmbeddedSettings
from urne.record.canonical import canonical_json
from urne.runtime import backup as backups
from urne.runtime.backup import BackupError, backup, restore
from urne.runtime.cli import app
from urne.runtime.embedded import build_app
from urne.runtime.registry import SERVICES
from urne.storage.sqlite import SqliteDb

pytestmark = pytest.mark.integration

YES = {"method": "yes_no_abstain", "answer": "yes"}
NO = {"method": "yes_no_abstain", "answer": "no"}


def settings_for(data_dir: Path) -> EmbeddedSettings:
    # Many revotes by one voter: the writer that runs during the backup. Without a linger
    # a lone voter's ballot is committed at once, so many commit while a backup runs.
    return EmbeddedSettings(data_dir=data_dir, environment="test", max_ballots_per_voter=1000,
                            ballot_linger_seconds=0)


def outbox_of(data_dir: Path) -> Path:
    return data_dir / "outbox" / "email.jsonl"


def close_and_wait(http: TestClient, state: OpenPoll) -> dict[str, Any]:
    r = http.post(f"/v1/polls/{state.poll_id}/close", headers=state.organiser)
    assert r.status_code == 200, r.text
    r = wait_for(lambda: http.get(f"/v1/polls/{state.poll_id}/results"), 200)
    assert r.status_code == 200, r.text
    return dict(r.json())


def verifies(signed: dict[str, Any], keys: dict[str, Any]) -> bool:
    """Whether a signed result is the tally-result key's signature, that key taken from
    ``keys`` (a /v1/audit/keys document)."""
    [key] = [k for k in keys["keys"] if k["name"] == "tally-result" and k["status"] == "current"]
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=="))
    public.verify(base64.urlsafe_b64decode(signed["signature"] + "=="),
                  canonical_json(signed["result"]))  # raises if it does not
    return bool(signed["key_id"] == key["kid"])


def served(http: TestClient, pid: str) -> dict[str, Any]:
    """What anyone is served of a published poll."""
    return {path: http.get(path.format(pid)).json() for path in (
        "/v1/polls/{}", "/v1/polls/{}/results", "/v1/audit/polls/{}/result",
        "/v1/audit/polls/{}/record", "/v1/audit/polls/{}/rules", "/v1/audit/polls/{}/heads",
        "/v1/audit/keys")}


def test_a_backup_taken_while_voting_restores_the_same_data_and_keys(tmp_path: Path) -> None:
    data, restored = tmp_path / "data", tmp_path / "restored"
    with TestClient(build_app(settings_for(data))) as http:
        outbox = outbox_of(data)
        published = open_poll(http, outbox)
        for email, answer in (("alice@example.org", "yes"), ("bob@example.org", "no"),
                              ("carol@example.org", "yes"), ("alice@example.org", "no")):
            vote(http, outbox, published, email, answer)
        summary = close_and_wait(http, published)
        assert summary["tally"]["counts"] == {"yes": 1, "no": 2, "abstain": 0}
        before = served(http, published.poll_id)
        assert verifies(before["/v1/audit/polls/{}/result"], before["/v1/audit/keys"])

        live = open_poll(http, outbox)
        vote(http, outbox, live, "dave@example.org", "yes")
        token = voting_token(http, outbox, live, "erin@example.org")
        # A voter who keeps voting again (a ballot in vote.db, counted into tally.db
        # through the bus) while the backup runs.
        stop, receipts, failures = threading.Event(), [], []

        def keep_voting() -> None:
            while not stop.is_set():
                r = http.post(f"/v1/polls/{live.poll_id}/ballots", headers=bearer(token),
                              json={"choice": NO if len(receipts) % 2 else YES})
                if r.status_code != 201:
                    failures.append(r.text)
                    return
                receipts.append((time.monotonic(), r.json()["sequence"]))

        writer = threading.Thread(target=keep_voting)
        writer.start()
        try:
            assert wait_for_count(receipts, 5)
            # A backup lasts tens of milliseconds: taken again (at most five times) until
            # a ballot was accepted (committed) while the databases were being copied.
            for attempt in range(5):
                archive = tmp_path / f"urne-{attempt}.tar.gz"  # a backup never overwrites
                started = time.monotonic()
                made = backup(data, archive)
                ended = time.monotonic()
                assert wait_for_count(receipts, len(receipts) + 2)  # and after it
                during = [s for t, s in receipts if started <= t <= ended]
                if during:
                    break
        finally:
            stop.set()
            writer.join()
        assert not failures, failures
        assert during, (started, ended, receipts)
        committed_before = max(s for t, s in receipts if t < started)
        last = max(s for _, s in receipts)
    assert made.attempts >= 1 and made.files == len(json.loads(manifest_of(archive))["files"])
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    print(f"\nbackup: {made.size} bytes, {made.files} files, {made.seconds * 1000:.0f} ms, "
          f"{made.attempts} tries; {len(receipts)} ballots cast around it")

    done = restore(archive, restored)
    assert done.moved_aside is None and done.notes == []
    assert sorted(p.name for p in restored.iterdir()) == sorted(
        [*(f"{n}.db" for n in SERVICES), "keys", "pseudonym-secret", "code-secret"])
    assert (restored / "pseudonym-secret").read_bytes() == (data / "pseudonym-secret"
                                                            ).read_bytes()
    assert {p.name: p.read_bytes() for p in (restored / "keys").iterdir()} == {
        p.name: p.read_bytes() for p in (data / "keys").iterdir()}

    with TestClient(build_app(settings_for(restored))) as http:
        assert served(http, published.poll_id) == before  # and the same keys
        assert http.get(f"/v1/polls/{live.poll_id}").json()["status"] == "open"
        # A token signed before the backup verifies: the same identity-token key.
        r = http.post(f"/v1/polls/{live.poll_id}/ballots", headers=bearer(token),
                      json={"choice": YES})
        assert r.status_code == 201, r.text
        # Every ballot acknowledged before the backup began is in it (and those after
        # it may be); the voter's next ballot follows them.
        assert committed_before < r.json()["sequence"] <= last + 1
        assert r.json()["replaces_previous"]
        # A new sign-in gives the same voter key: the same pseudonym secret.
        live.tokens.clear()
        again = http.post(f"/v1/polls/{live.poll_id}/ballots",
                          headers=bearer(voting_token(http, outbox_of(restored), live,
                                                      "erin@example.org")),
                          json={"choice": NO})
        assert again.status_code == 201, again.text
        assert again.json()["sequence"] == r.json()["sequence"] + 1
        # The tally signs only if its counts, the recount and the vote service's seal
        # agree: the restored vote.db and tally.db agree. It signs with the old key.
        result = close_and_wait(http, live)
        assert result["tally"]["counts"] == {"yes": 1, "no": 1, "abstain": 0}
        signed = http.get(f"/v1/audit/polls/{live.poll_id}/result").json()
        assert signed["result"]["ballots_received"] == again.json()["sequence"] + 1
        assert verifies(signed, before["/v1/audit/keys"])


def wait_for_count(items: list[Any], n: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while len(items) < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class SlowSnapshots:
    """A connection that waits 2 ms once it has opened its snapshot: the files' snapshots
    are then taken far enough apart for the writer to commit in between."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = self._conn.execute(sql, *args)
        if "sqlite_master" in sql:
            time.sleep(0.002)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def slow_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backup's connections (it opens them by URI) wait 2 ms after each snapshot."""
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: SlowSnapshots(
        connect(*a, **kw)) if kw.get("uri") else connect(*a, **kw))


@contextlib.contextmanager
def two_files_written(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Two databases, ``first`` and ``second``, and a writer that commits n to the
    first, then n to the second, again and again while the block runs: at any instant
    the second holds n-1 or n when the first holds n."""
    paths = {name: tmp_path / f"{name}.db" for name in ("first", "second")}
    dbs = {name: SqliteDb(path) for name, path in paths.items()}
    for db in dbs.values():
        with db.tx() as tx:
            tx.execute("CREATE TABLE n (n INTEGER PRIMARY KEY, pad BLOB)")
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            for db in dbs.values():
                with db.tx() as tx:
                    tx.execute("INSERT INTO n VALUES (?, randomblob(2000))", (n,))
            time.sleep(random.uniform(0, 0.004))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        yield paths
    finally:
        stop.set()
        writer.join()
        for db in dbs.values():
            db.close()


def copied_counts(paths: dict[str, Path], staging: Path) -> tuple[int, int, int]:
    """The last n of each file's copy, and the tries the copy took."""
    staging.mkdir()
    copies, attempts = backups._copy_databases(paths, staging)
    first, second = (sqlite3.connect(copies[n]).execute(
        "SELECT count(*), coalesce(max(n), 0) FROM n").fetchone() for n in ("first", "second"))
    assert first[0] == first[1] and second[0] == second[1]  # every commit whole
    return first[1], second[1], attempts


@pytest.mark.parametrize("slow", [False, True])
def test_the_databases_are_taken_at_one_instant(tmp_path: Path, slow: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every copy of the two files written in turn holds, as the files did at any one
    instant, the second at n-1 or n when the first is at n, though the files are copied
    one after the other (slow: their snapshots opened 2 ms apart)."""
    if slow:
        slow_snapshots(monkeypatch)
    tries = copies = first = 0
    deadline = time.monotonic() + 60
    with two_files_written(tmp_path) as paths:
        # At least 30 copies, and on until the writer has committed 30 times (on a busy
        # machine the copies can outpace it).
        while (copies < 30 or first <= 30) and time.monotonic() < deadline:
            first, second, attempts = copied_counts(paths, tmp_path / f"copy-{copies}")
            assert first - second in (0, 1), (first, second)
            tries += attempts
            copies += 1
    assert first > 30  # the writer did write all along
    assert tries >= copies >= 30


def test_without_the_write_locks_the_copies_would_disagree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above can fail: its snapshots opened 2 ms apart without the write locks
    (each source's snapshot alone) soon give a copy where the second file ran ahead."""
    locked = backups._snapshots_at_one_instant

    def snapshots_alone(lockers: list[sqlite3.Connection],
                        sources: list[sqlite3.Connection]) -> bool:
        return locked([], sources)

    monkeypatch.setattr(backups, "_snapshots_at_one_instant", snapshots_alone)
    slow_snapshots(monkeypatch)
    gaps = set()
    with two_files_written(tmp_path) as paths:
        for i in range(200):
            first, second, _ = copied_counts(paths, tmp_path / f"copy-{i}")
            gaps.add(first - second)
            if gaps - {0, 1}:
                break
    assert gaps - {0, 1}, gaps


# --- refusals ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of a data folder where someone signed in."""
    root = tmp_path_factory.mktemp("made")
    with TestClient(build_app(settings_for(root / "data"))) as http:
        assert http.post("/v1/auth/codes", json={"email": "ada@example.org"}).status_code == 202
    backup(root / "data", root / "urne.tar.gz")
    return root / "urne.tar.gz"


def manifest_of(archive: Path) -> bytes:
    with tarfile.open(archive) as tar:
        fh = tar.extractfile(backups.MANIFEST)
        assert fh is not None
        return fh.read()


def rewrite(archive: Path, out: Path,
            change: Callable[[dict[str, Any], list[tuple[tarfile.TarInfo, bytes]]], None]
            ) -> Path:
    """``archive`` read whole, changed by ``change(manifest, members)`` and written again
    as ``out``."""
    with tarfile.open(archive) as tar:
        members = []
        for m in tar.getmembers():
            fh = tar.extractfile(m)
            members.append((m, fh.read() if fh else b""))
    manifest = json.loads(members.pop(0)[1])
    change(manifest, members)
    with tarfile.open(out, "w:gz") as tar:
        text = json.dumps(manifest).encode()
        info = tarfile.TarInfo(backups.MANIFEST)
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
        for m, content in members:
            tar.addfile(m, io.BytesIO(content) if m.isfile() else None)
    return out


def add_file(name: str, content: bytes = b"owned\n"
             ) -> Callable[[dict[str, Any], list[tuple[tarfile.TarInfo, bytes]]], None]:
    def change(manifest: dict[str, Any], members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        members.append((info, content))
        manifest["files"].append({"path": name, "size": len(content),
                                  "sha256": hashlib.sha256(content).hexdigest()})
    return change


def add_link(kind: bytes, target: str
             ) -> Callable[[dict[str, Any], list[tuple[tarfile.TarInfo, bytes]]], None]:
    def change(manifest: dict[str, Any], members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        info = tarfile.TarInfo("keys/extra.pem")
        info.type, info.linkname = kind, target
        members.insert(0, (info, b""))
    return change


def flip_a_byte(manifest: dict[str, Any], members: list[tuple[tarfile.TarInfo, bytes]]
                ) -> None:
    i = next(i for i, (m, _) in enumerate(members) if m.name == "vote.db")
    m, content = members[i]
    members[i] = (m, content[:5000] + bytes([content[5000] ^ 1]) + content[5001:])


def set_format(manifest: dict[str, Any], members: list[tuple[tarfile.TarInfo, bytes]]
               ) -> None:
    manifest["format_version"] = 2


def drop_keys(manifest: dict[str, Any], members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    members[:] = [(m, c) for m, c in members if not m.name.startswith("keys/")]


def future_migration(manifest: dict[str, Any], members: list[tuple[tarfile.TarInfo, bytes]]
                     ) -> None:
    manifest["databases"]["tally"]["migrations"].append("999_from_the_future")


BAD = {
    "checksum": (flip_a_byte, "vote.db: checksum mismatch"),
    "parent": (add_file("../evil"), "unsafe path '../evil'"),
    "nested-parent": (add_file("keys/../../evil"), "unsafe path"),
    "absolute": (add_file("/tmp/urne-evil"), "unsafe path '/tmp/urne-evil'"),
    "symlink": (add_link(tarfile.SYMTYPE, "/etc/passwd"), "not a regular file"),
    "hard-link": (add_link(tarfile.LNKTYPE, "vote.db"), "not a regular file"),
    "not-in-manifest": (lambda m, members: members.append(
        (tarfile.TarInfo("stray"), b"")), "'stray' is not in the manifest"),
    "missing-members": (drop_keys, "the archive lacks keys/"),
    "newer-format": (set_format, "backup format 2"),
    "unknown-migration": (future_migration, "999_from_the_future"),
}


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case", BAD)
def test_a_bad_archive_is_refused_and_nothing_is_written(made: Path, tmp_path: Path,
                                                         case: str) -> None:
    change, message = BAD[case]
    bad = rewrite(made, tmp_path / "bad.tar.gz", change)
    before = listing(tmp_path)
    with pytest.raises(BackupError, match=re.escape(message)):
        restore(bad, tmp_path / "target")
    assert listing(tmp_path) == before  # no target, no temporary folder, no evil file
    assert not Path("/tmp/urne-evil").exists()


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_a_truncated_or_foreign_file_is_refused(made: Path, tmp_path: Path, cut: float
                                                ) -> None:
    content = made.read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(content[:int(len(content) * cut)])
    with pytest.raises(BackupError, match=r"damaged|lacks|not a urne backup"):
        restore(bad, tmp_path / "target")
    bad.write_bytes(b"not an archive at all\n")
    with pytest.raises(BackupError, match="not a urne backup"):
        restore(bad, tmp_path / "target")
    assert listing(tmp_path) == ["bad.tar.gz"]


def test_a_non_empty_target_is_refused_unless_replaced_and_never_while_in_use(
        made: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    with pytest.raises(BackupError, match="is not empty"):
        restore(made, target)
    assert listing(tmp_path) == ["target", "target/notes.txt"]

    done = restore(made, target, replace=True)
    assert done.moved_aside is not None
    assert (done.moved_aside / "notes.txt").read_text() == "mine\n"  # kept, not deleted
    assert (target / "vote.db").is_file() and not (target / "notes.txt").exists()

    db = SqliteDb(target / "identity.db", SERVICES["identity"].migrations.sqlite)  # as `urne up`
    try:
        with pytest.raises(BackupError, match="in use"):
            restore(made, target, replace=True)
    finally:
        db.close()
    assert (target / "vote.db").is_file()
    restore(made, target, replace=True)  # nobody holds it any more

    empty = tmp_path / "empty"
    empty.mkdir()
    assert restore(made, empty).moved_aside is None


def test_an_existing_archive_is_never_overwritten(made: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    restore(made, data)
    archive = tmp_path / "urne.tar.gz"
    archive.write_bytes(b"an older backup\n")
    with pytest.raises(BackupError, match="exists"):
        backup(data, archive)
    assert archive.read_bytes() == b"an older backup\n"
    assert listing(tmp_path) == ["data", *(f"data/{p}" for p in listing(data)), "urne.tar.gz"]
    with pytest.raises(BackupError, match="not an embedded data folder"):
        backup(tmp_path / "nowhere", tmp_path / "other.tar.gz")


def test_the_commands(made: Path, tmp_path: Path) -> None:
    runner, data = CliRunner(), tmp_path / "data"
    r = runner.invoke(app, ["restore", str(made), "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    assert "files restored from the backup of" in r.stdout

    archive = tmp_path / "again.tar.gz"
    r = runner.invoke(app, ["backup", str(archive), "--data-dir", str(data)],
                      env={"URNE_PSEUDONYM_SECRET": "from-the-vault"})
    assert r.exit_code == 0, r.output
    assert "the databases at one instant" in r.stdout
    assert "holds the signing keys and the secrets" in r.stderr
    assert "URNE_PSEUDONYM_SECRET is set in the environment" in r.stderr
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    manifest = json.loads(manifest_of(archive))
    assert (manifest["format"], manifest["format_version"]) == ("urne-backup", 1)
    assert set(manifest["databases"]) == set(SERVICES)
    assert all(m["migrations"] for m in manifest["databases"].values())
    assert {f["path"] for f in manifest["files"]} >= {"keys/tally-result.pem",
                                                      "pseudonym-secret", "vote.db"}

    r = runner.invoke(app, ["backup", str(archive), "--data-dir", str(data)])
    assert r.exit_code == 1 and "exists" in r.stderr, r.output
    r = runner.invoke(app, ["restore", str(archive), "--data-dir", str(data)])
    assert r.exit_code == 1 and "is not empty" in r.stderr, r.output
    assert "nothing was changed" in r.stderr
    bad = rewrite(archive, tmp_path / "bad.tar.gz", flip_a_byte)
    r = runner.invoke(app, ["restore", str(bad), "--data-dir", str(tmp_path / "new")])
    assert r.exit_code == 1 and "checksum mismatch" in r.stderr, r.output
    assert not (tmp_path / "new").exists()
    r = runner.invoke(app, ["restore", str(archive), "--data-dir", str(tmp_path / "new")],
                      env={"URNE_KEYS_DIR": str(tmp_path / "elsewhere")})
    assert r.exit_code == 0 and "URNE_KEYS_DIR" in r.stderr, r.output
    r = runner.invoke(app, ["backup", "--help"])
    assert "THE ARCHIVE HOLDS SECRETS" in " ".join(r.stdout.split())


def test_the_backup_looks_for_the_keys_where_urne_up_keeps_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # backup.py reads URNE_KEYS_DIR itself (a backup needs no other setting, and must not
    # fail on them): it must agree with EmbeddedSettings, with the variable and without.
    data = tmp_path / "data"
    monkeypatch.delenv("URNE_KEYS_DIR", raising=False)
    assert backups.embedded_keys_dir(data, {}) == EmbeddedSettings(data_dir=data).keys_dir
    monkeypatch.setenv("URNE_KEYS_DIR", str(tmp_path / "elsewhere"))
    assert backups.embedded_keys_dir(data, {"URNE_KEYS_DIR": str(tmp_path / "elsewhere")}) \
        == EmbeddedSettings(data_dir=data).keys_dir
