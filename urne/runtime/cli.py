"""The ``urne`` command line: every entry point of urne (see ``urne/__main__.py``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from urne.runtime.registry import SERVICES

if TYPE_CHECKING:
    from urne.audit.verify import Check

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="urne: citizen votes and consultations, verifiable end to end.")
keys_app = typer.Typer(no_args_is_help=True, help="Signing keys.")
app.add_typer(keys_app, name="keys")
dlq_app = typer.Typer(no_args_is_help=True, help=(
    "The dead-letter queue (distributed profile): what no handler could process, parked "
    "with its reason. Reads URNE_AMQP_URL."))
app.add_typer(dlq_app, name="dlq")


audit_app = typer.Typer(no_args_is_help=True, help="Check published results.")
app.add_typer(audit_app, name="audit")
broker_app = typer.Typer(no_args_is_help=True, help="RabbitMQ: a user per process role.")
app.add_typer(broker_app, name="broker")


@broker_app.command("users")
def broker_users(
    management_url: Annotated[str, typer.Argument(
        help="The management API with an administrator's credentials, e.g. "
             "http://admin:secret@rabbitmq:15672")],
    vhost: Annotated[str, typer.Option(help="The virtual host urne runs in.")] = "/",
    prefix: Annotated[str, typer.Option(help="User names: <prefix><role>.")] = "urne-",
) -> None:
    """Create (or update) one user per process role (gateway, identity, proposal, vote,
    tally, vote-worker, tally-worker) with that role's permissions only
    (urne/messaging/permissions.py). Each password comes from
    URNE_BROKER_PASSWORD_<ROLE> (e.g. URNE_BROKER_PASSWORD_VOTE_WORKER), or is generated
    and printed in the URNE_AMQP_URL line of its role. Run it again to change them."""
    import os
    import secrets
    from urllib.parse import quote, urlsplit

    from urne.messaging.permissions import ROLES, grant

    parts = urlsplit(management_url)
    if not parts.username or not parts.password:
        raise typer.BadParameter("give the administrator's credentials in the URL")
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    for role in ROLES:
        variable = "URNE_BROKER_PASSWORD_" + role.upper().replace("-", "_")
        password = os.environ.get(variable) or secrets.token_urlsafe(24)
        user = f"{prefix}{role}"
        grant(base, vhost, role, user, password, (parts.username, parts.password))
        shown = "${" + variable + "}" if variable in os.environ else quote(password, safe="")
        typer.echo(f"{role}: URNE_AMQP_URL=amqp://{user}:{shown}@{parts.hostname}:5672/"
                   f"{quote(vhost, safe='')}")


store_app = typer.Typer(no_args_is_help=True, help="Cassandra: a role per service.")
app.add_typer(store_app, name="store")


@store_app.command("roles")
def store_roles() -> None:
    """Create (or update) each service's keyspace and its role, which may use that
    keyspace only (urne/storage/roles.py). Logs in with URNE_CASSANDRA_USERNAME and
    URNE_CASSANDRA_PASSWORD (an administrator's, for this command); each role is named
    <URNE_CASSANDRA_KEYSPACE_PREFIX><service> and its password comes from
    URNE_CASSANDRA_PASSWORD_<SERVICE>, or is generated and printed. Run it again to
    change them."""
    import os

    from urne.platform.settings import StoreSettings
    from urne.storage.cassandra import connect
    from urne.storage.roles import grant_all

    def variable(service: str) -> str:
        return f"URNE_CASSANDRA_PASSWORD_{service.upper()}"

    settings = StoreSettings()
    session = connect(settings)
    try:
        logins = grant_all(session, settings, SERVICES, lambda s: os.environ.get(variable(s)))
    finally:
        session.cluster.shutdown()
    for service, (role, password) in logins.items():
        shown = "${" + variable(service) + "}" if variable(service) in os.environ else password
        typer.echo(f"{service}: URNE_CASSANDRA_USERNAME={role} URNE_CASSANDRA_PASSWORD={shown}")


@app.command()
def demo(
    url: Annotated[str, typer.Option(help="The urne to run it on, e.g. http://127.0.0.1:8000")]
    = "http://127.0.0.1:8000",
    participants: Annotated[int, typer.Option(min=1, max=10_000, help="Voters.")] = 20,
    outbox: Annotated[Path, typer.Option(
        help="The development outbox file, where the sign-in codes go.")]
    = Path("urne-data/outbox/email.jsonl"),
    organiser_email: Annotated[str, typer.Option(
        help="Signs in as this organiser (URNE_ORGANISER_EMAILS).")] = "organiser@urne.example",
    organiser_token: Annotated[str | None, typer.Option(
        help="An organiser's access token, instead of signing in.")] = None,
    bulk: Annotated[bool, typer.Option(
        help="Voting tokens from the development-only bulk route, not by signing in.")]
    = False,
    seed: Annotated[int | None, typer.Option(help="Seed of the random ballots.")] = None,
    paper: Annotated[int, typer.Option(min=0, max=500, help=(
        "Paper ballots per poll, entered by an admin as a desk would."))] = 0,
    admin_email: Annotated[str, typer.Option(
        help="Signs in as this admin to enter paper ballots (URNE_ADMIN_EMAILS).")]
    = "admin@urne.example",
    admin_token: Annotated[str | None, typer.Option(
        help="An admin's or agent's access token, instead of signing in.")] = None,
) -> None:
    """Run a consultation with one poll per voting method on a running urne: sign in,
    vote (one in ten votes again), enter paper ballots if asked, close, and print JSON
    naming each poll, to check with `urne audit verify --url URL --poll POLL_ID`."""
    import json
    import random

    import httpx

    from urne.runtime.demo import Demo, DemoError

    with httpx.Client(base_url=url, timeout=30) as http:
        run = Demo(http, participants, outbox, organiser_email, organiser_token, bulk,
                   random.Random(seed), paper, admin_email, admin_token)
        try:
            report = run(lambda line: typer.echo(line, err=True))
        except (DemoError, httpx.HTTPError) as exc:
            typer.echo(f"demo stopped: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(json.dumps(report))


@audit_app.command("fetch")
def audit_fetch(
    url: Annotated[str, typer.Option(help="The urne API, e.g. https://vote.example.org")],
    poll: Annotated[str, typer.Option(help="The poll whose documents to save.")],
    out: Annotated[Path, typer.Option(help="The bundle's folder (made if need be).")],
    receipt: Annotated[list[str] | None, typer.Option(
        help="Also save the inclusion proof of this tracker (repeat for more).")] = None,
) -> None:
    """Save a poll's public documents as a bundle, to verify offline (`verify --bundle`)
    or archive: the keys, the rules, the signed result and the whole record."""
    import httpx

    from urne.audit.fetch import FetchError, fetch

    started = time.perf_counter()
    try:
        with _progress("downloading the record", None) as advance:
            fetch(url, poll, out, tuple(receipt or ()), advance)
    except (FetchError, httpx.HTTPError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"saved in {out} ({time.perf_counter() - started:.1f} s)")


@audit_app.command("verify")
def audit_verify(
    url: Annotated[str | None, typer.Option(
        help="The urne API, e.g. https://vote.example.org (with --poll).")] = None,
    poll: Annotated[str | None, typer.Option(help="The poll whose result to check.")] = None,
    bundle: Annotated[Path | None, typer.Option(
        help="A bundle saved by `urne audit fetch`: checked offline.")] = None,
    receipt: Annotated[str | None, typer.Option(
        "--receipt", "--tracker",
        help="Also check that the ballot with this tracker (a receipt's) is counted.")] = None,
    kid: Annotated[str | None, typer.Option(
        help="The id of the tally-result key, as obtained elsewhere than from this server "
             "(without it, the served key is used: the documents then only agree with "
             "each other).")] = None,
    head: Annotated[list[Path] | None, typer.Option(
        help="A signed tree head saved during the vote (one of /heads): the published "
             "record must extend it. May be given more than once.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
    = False,
) -> None:
    """Re-check a published result from its public documents: its signature, its rules
    hash, the record's Merkle root, the tally recounted from the record, and the tree
    heads signed during the vote (and those saved with --head). From the
    server (--url and --poll: downloaded first, the time reported apart) or from a
    bundle (--bundle). Exit status 0 only if every check holds, 1 if one fails, 2 if
    the documents cannot be had."""
    import json
    import tempfile

    import httpx

    from urne.audit.bundle import RECORD, BundleError, load
    from urne.audit.fetch import FetchError, fetch
    from urne.audit.verify import verify

    if (bundle is None) == (url is None or poll is None):
        typer.echo("give either --url and --poll, or --bundle", err=True)
        raise typer.Exit(2)
    timings: dict[str, float] = {}
    show = not as_json
    with tempfile.TemporaryDirectory(prefix="urne-audit-") as scratch:
        folder = bundle or Path(scratch)
        try:
            if bundle is None:
                started = time.perf_counter()
                with _progress("downloading the record", None, show) as advance:
                    fetch(str(url), str(poll), folder, (receipt,) if receipt else (), advance)
                timings["download_s"] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            size = (folder / RECORD).stat().st_size if (folder / RECORD).exists() else 0
            with _progress("reading the record", size, show) as advance:
                docs = load(folder, receipt, advance, tuple(head or ()))
            checks = verify(docs, pinned_kid=kid)
            timings["verify_s"] = round(time.perf_counter() - started, 3)
        except (BundleError, FetchError, httpx.HTTPError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    holds = all(c.ok for c in checks)
    poll_id = docs.signed.get("result", {}).get("poll_id", poll)
    if as_json:
        typer.echo(json.dumps({"poll_id": poll_id, "ok": holds, "checks": _as_json(checks),
                               "ballots": len(docs.record.get("entries", [])),
                               "timings": timings}))
    else:
        _print_checks(checks)
        spent = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in timings.items())
        typer.echo(f"the result {'holds' if holds else 'does NOT hold'} ({spent})")
    raise typer.Exit(0 if holds else 1)


@audit_app.command("head")
def audit_head(
    url: Annotated[str, typer.Option(help="The urne API, e.g. https://vote.example.org.")],
    poll: Annotated[str, typer.Option(help="The poll whose log to follow.")],
    head: Annotated[Path, typer.Option(
        help="A signed tree head saved earlier (one of /heads, or one --save wrote).")],
    kid: Annotated[str | None, typer.Option(
        help="The id of the tally-result key, as obtained elsewhere than from this "
             "server.")] = None,
    save: Annotated[Path | None, typer.Option(
        help="Write the latest signed head here once it is checked: the head to give "
             "next time.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
    = False,
) -> None:
    """Check, without downloading the record, that the poll's log still begins with what
    a tree head saved earlier signed: the latest signed head and a consistency proof from
    the saved one (RFC 9162). During the vote and after; a light client's check, to run
    as often as you like. Exit status 0 if it holds, 1 if not, 2 if the documents cannot
    be had."""
    import json

    import httpx

    from urne.audit import heads
    from urne.audit.fetch import FetchError, latest_head

    try:
        saved = json.loads(head.read_bytes())
        keys, latest, proof = latest_head(url, poll, int(saved["head"]["size"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        typer.echo(f"{head}: not a signed tree head ({exc})", err=True)
        raise typer.Exit(2) from exc
    except (FetchError, httpx.HTTPError) as exc:
        typer.echo(f"{url}: {exc}", err=True)
        raise typer.Exit(2) from exc
    checks = heads.check(keys, saved, latest, proof, pinned_kid=kid)
    holds = all(c.ok for c in checks)
    if holds and save is not None:
        save.write_text(json.dumps(latest) + "\n")
    if as_json:
        typer.echo(json.dumps({"poll_id": poll, "ok": holds, "checks": _as_json(checks),
                               "latest": latest}))
    else:
        _print_checks(checks)
        typer.echo("the log extends the saved head" if holds else
                   "the log does NOT extend the saved head")
    raise typer.Exit(0 if holds else 1)


def _as_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]


def _print_checks(checks: list[Check]) -> None:
    for c in checks:
        typer.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")


@contextmanager
def _progress(label: str, length: int | None, show: bool = True
              ) -> Iterator[Callable[[int], None]]:
    """A progress bar on the terminal (stderr), told how many bytes went by; nothing
    when stderr is not a terminal, the report is JSON or the length is not known."""
    if not (show and length and sys.stderr.isatty()):
        yield lambda n: None
        return
    bar: Any
    with typer.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


@dlq_app.command("list")
def dlq_list(limit: Annotated[int, typer.Option(help="Records to show at most.")] = 1000
             ) -> None:
    """Print the parked records, one JSON object per line, and leave them in the queue."""
    import json

    from urne.messaging.dead_letters import list_parked
    from urne.platform.settings import BrokerSettings

    for parked in list_parked(BrokerSettings().amqp_url, limit):
        typer.echo(json.dumps(parked.summary()))


@dlq_app.command("replay")
def dlq_replay(
    event_id: Annotated[str | None, typer.Option(
        "--id", help="Replay only the event with this envelope id.")] = None,
    limit: Annotated[int, typer.Option(help="Records to look at at most.")] = 1000,
) -> None:
    """Publish parked events again, unchanged, to where they first went (after the cause
    is fixed: a consumer takes a repeat as a no-op); ballots stay parked."""
    from urne.messaging.dead_letters import replay
    from urne.platform.settings import BrokerSettings

    replayed, left = replay(BrokerSettings().amqp_url,
                            lambda p: event_id is None or p.event_id == event_id, limit)
    for parked in replayed:
        typer.echo(f"replayed {parked.summary()['type']} {parked.event_id}")
    typer.echo(f"{len(replayed)} replayed, {len(left)} left in the queue")


@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="HTTP port (default URNE_PORT or 8000).")]
    = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default URNE_HOST).")]
    = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="SQLite files, keys and outbox (default URNE_DATA_DIR or ./urne-data).")] = None,
) -> None:
    """Run urne in one process (embedded profile): no server needed."""
    import uvicorn

    from urne.platform import heap
    from urne.platform.logging import configure_logging
    from urne.platform.metrics import serve_metrics
    from urne.platform.settings import EmbeddedSettings
    from urne.runtime.embedded import build_app

    # Options given on the command line win over URNE_* variables.
    given: dict[str, Any] = {"port": port, "host": host, "data_dir": data_dir}
    settings = EmbeddedSettings(**{k: v for k, v in given.items() if v is not None})
    configure_logging("urne-up", settings.log_level)
    try:
        fastapi_app = build_app(settings)
    except ValueError as exc:  # a secret the data folder holds may not serve this host
        typer.echo(f"urne up: {exc}", err=True)
        raise typer.Exit(2) from exc
    serve_metrics(settings.metrics_port, settings.metrics_host)
    data = settings.data_dir.resolve()
    typer.echo(f"urne (embedded) — data in {data}")
    typer.echo(f"API docs: http://{settings.host}:{settings.port}/docs")
    typer.echo(f"Sign-in codes (development): {data / 'outbox' / 'email.jsonl'}")
    heap.settle()
    uvicorn.run(fastapi_app, host=settings.host, port=settings.port, loop="uvloop",
                http="httptools", log_config=None, access_log=False,
                proxy_headers=True, forwarded_allow_ips=settings.trusted_proxies)


@app.command()
def service(name: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")]) -> None:
    """Run one service (distributed profile: nameko over RabbitMQ, Cassandra storage)."""
    if name not in SERVICES:
        raise typer.BadParameter(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
    from urne.runtime.distributed import run_service

    run_service(name)


@app.command("vote-worker")
def vote_worker() -> None:
    """Take ballots from their shard queues, in batches (distributed profile): run as
    many as you like; each actively consumes its share of the shards."""
    from urne.runtime.distributed import run_vote_worker

    run_vote_worker()


@app.command("tally-worker")
def tally_worker() -> None:
    """Count the recorded ballots from their counting streams, shard by shard, with a
    checkpoint per shard (distributed profile): run as many as you like, up to
    URNE_COUNTING_SHARDS; each counts the shards it owns."""
    from urne.runtime.distributed import run_tally_worker

    run_tally_worker()


@app.command()
def gateway(
    port: Annotated[int | None, typer.Option(help="HTTP port (default URNE_PORT or 8000).")]
    = None,
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
) -> None:
    """Run the HTTP gateway against RabbitMQ (distributed profile)."""
    from urne.runtime.distributed import run_gateway

    run_gateway(host=host, port=port)


@app.command()
def migrate(
    profile: Annotated[str, typer.Option(help="embedded (SQLite) or distributed (Cassandra).")]
    = "distributed",
    data_dir: Annotated[Path, typer.Option(help="Embedded data folder.")] = Path("urne-data"),
) -> None:
    """Apply every service's pending schema migrations (services also do it at start)."""
    if profile == "embedded":
        from urne.storage.sqlite import SqliteDb

        for name, spec in SERVICES.items():
            applied = SqliteDb(data_dir / f"{name}.db").migrate(spec.migrations.sqlite)
            typer.echo(f"{name}: {', '.join(applied) or 'up to date'}")
        return
    from urne.platform.settings import StoreSettings
    from urne.storage.cassandra import connect, ensure_schema

    settings = StoreSettings()
    session = connect(settings)
    try:
        for name, spec in SERVICES.items():
            keyspace = ensure_schema(session, settings, name, spec.migrations.cassandra)
            typer.echo(f"{name}: keyspace {keyspace} up to date")
    finally:
        session.cluster.shutdown()


@app.command()
def backup(
    archive: Annotated[Path, typer.Argument(
        help="The file to write (a .tar.gz, made 0600); never overwritten.")],
    data_dir: Annotated[Path | None, typer.Option(
        help="The embedded data folder (default URNE_DATA_DIR or ./urne-data).")] = None,
) -> None:
    """Back up the embedded data folder into one file, while `urne up` runs or not: every
    SQLite database (taken at one instant), the keys (URNE_KEYS_DIR if set) and the
    folder's secrets, with a manifest of checksums. THE ARCHIVE HOLDS SECRETS: with it
    anyone can sign results and tokens as this urne and link voter keys to persons.
    Keep it as you keep the keys. Restore it with `urne restore`."""
    import sqlite3

    from urne.runtime.backup import BackupError
    from urne.runtime.backup import backup as write_backup

    try:
        made = write_backup(_data_dir(data_dir), archive)
    except (BackupError, OSError, sqlite3.Error) as exc:
        typer.echo(f"urne backup: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{made.archive}: {made.files} files, {made.size} bytes, in "
               f"{made.seconds:.2f} s; the databases at one instant")
    typer.echo("it holds the signing keys and the secrets: keep it as you keep them",
               err=True)
    for variable in made.secrets_elsewhere:
        typer.echo(f"{variable} is set in the environment, not in the archive: keep it "
                   "apart, a restore needs it", err=True)


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="A file `urne backup` wrote.")],
    data_dir: Annotated[Path | None, typer.Option(
        help="The folder to restore into, missing or empty (default URNE_DATA_DIR or "
             "./urne-data).")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Restore into a non-empty folder: its contents are moved beside "
                          "it (<folder>.before-restore-<time>). Refused while urne runs on "
                          "it.")] = False,
) -> None:
    """Restore a backup into the embedded data folder: every checksum checked before
    anything is written, then each database's integrity; all of it, or nothing. Then
    start `urne up --data-dir` on it: it delivers the events in flight at the backup."""
    import sqlite3

    from urne.runtime.backup import BackupError
    from urne.runtime.backup import restore as restore_backup

    try:
        done = restore_backup(archive, _data_dir(data_dir), replace=replace)
    except (BackupError, OSError, sqlite3.Error) as exc:
        typer.echo(f"urne restore: {exc}; nothing was changed", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{done.data_dir}: {done.files} files restored from the backup of "
               f"{done.created_at} (urne {done.urne_version})")
    if done.moved_aside:
        typer.echo(f"what the folder held is now in {done.moved_aside}")
    for note in done.notes:
        typer.echo(note, err=True)


def _data_dir(given: Path | None) -> Path:
    """The embedded data folder: as given, else URNE_DATA_DIR, else ./urne-data (as
    EmbeddedSettings, without the settings a backup does not need)."""
    import os

    return given or Path(os.environ.get("URNE_DATA_DIR") or "urne-data")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                "help_option_names": []})
def loadtest(ctx: typer.Context) -> None:
    """Open-loop ballot load against either profile; prints JSON (see --help)."""
    import sys

    import urne

    # The benchmark lives in the checkout's loadtests/, beside urne/; not in a wheel.
    checkout = Path(urne.__file__).resolve().parents[1]
    if (checkout / "loadtests" / "run.py").exists() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        from loadtests.run import main as run_loadtest
    except ImportError as exc:
        raise typer.BadParameter("urne loadtest runs from a checkout of urne (loadtests/ is "
                                 "not installed with the package)") from exc
    raise typer.Exit(run_loadtest(ctx.args))


@keys_app.command("generate")
def keys_generate(
    keys_dir: Annotated[Path, typer.Argument(help="Folder for the PEM files.")] = Path(
        "urne-data/keys"),
    per_service: Annotated[bool, typer.Option(
        "--per-service", help="One folder per role (identity, proposal, vote, tally, "
                              "gateway), each with its own private keys and every public "
                              "key: give each process its own folder only.")] = False,
) -> None:
    """Create the Ed25519 key pairs that are missing (never overwrites)."""
    from urne.crypto.keys import generate_keys, generate_per_service

    if per_service:
        generate_per_service(keys_dir)
    else:
        generate_keys(keys_dir)
    for p in sorted(keys_dir.rglob("*.pem")):
        typer.echo(p)


@keys_app.command("rotate")
def keys_rotate(
    keys_dir: Annotated[Path, typer.Argument(help="The keys folder (or per-service root).")],
    name: Annotated[str, typer.Argument(help="The key to rotate, e.g. tally-result.")],
) -> None:
    """Retire the current key pair of NAME and make a new one: what the old key signed
    still verifies (results, tokens until they expire, messages in flight); its private
    half is deleted. Restart the processes that use it to load the new keys."""
    from urne.crypto.keys import KEY_NAMES, OWNED, owner_folder, rotate_key, share_public_keys

    if name not in KEY_NAMES:
        raise typer.BadParameter(f"unknown key {name!r}; one of {', '.join(KEY_NAMES)}")
    old, new = rotate_key(owner_folder(keys_dir, name), name)
    if any((keys_dir / role).is_dir() for role in OWNED):
        share_public_keys(keys_dir)
    typer.echo(f"{name}: {old} retired, {new} current")


@keys_app.command("revoke")
def keys_revoke(
    keys_dir: Annotated[Path, typer.Argument(help="The keys folder (or per-service root).")],
    name: Annotated[str, typer.Argument(help="The key's name, e.g. envelope-vote.")],
    kid: Annotated[str, typer.Argument(help="The id of a retired key of that name.")],
) -> None:
    """Withdraw a retired key: nothing it signed is trusted any more, and /v1/audit/keys
    lists it as revoked. To withdraw the current key, rotate it first."""
    from urne.crypto.keys import OWNED, owner_folder, revoke_key, share_public_keys

    try:
        revoke_key(owner_folder(keys_dir, name), name, kid)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if any((keys_dir / role).is_dir() for role in OWNED):
        share_public_keys(keys_dir)
    typer.echo(f"{name}: {kid} revoked")
