"""The ``timebank`` command: serve, migrate, audit, export and import, load a demo, benchmark."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from timebank.bench.commands import bench
from timebank.db import migrations
from timebank.db.engine import create_engine, resolve_database_url
from timebank.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from timebank.ledger.audit import AuditReport

T = TypeVar("T")


def _database(settings: Settings, *, migrate_embedded: bool) -> str:
    """The database URL for a command; an embedded server is started (and, where the command
    asks, migrated) when no TIMEBANK_DATABASE_URL is set."""
    try:
        url, embedded = resolve_database_url(settings)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    if embedded and migrate_embedded:
        _upgrade(url)
    return url


def _upgrade(url: str) -> None:
    try:
        migrations.upgrade(url)
    except migrations.SchemaRefused as error:
        raise click.ClickException(str(error)) from error


@asynccontextmanager
async def _engine(url: str, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine for one command, disposed of once the command is done with it."""
    engine = create_engine(url, settings)
    try:
        yield engine
    finally:
        await engine.dispose()


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's work; a refusal from the service ends the command with its message."""
    from timebank.errors import TimebankError

    try:
        return asyncio.run(work)
    except TimebankError as error:
        raise click.ClickException(error.detail) from error


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """Timebank: a reciprocity ledger service for timebanks."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)


@main.command()
@click.option("--host", default=None, help="Address to bind (default: TIMEBANK_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (default: TIMEBANK_PORT).")
@click.option(
    "--workers", default=None, type=int, help="Worker processes (default: TIMEBANK_WORKERS)."
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the service (migrating the embedded database first)."""
    import uvicorn

    from timebank.app import create_app
    from timebank.ops.logs import logging_config
    from timebank.ops.workers import can_share_port, run_workers

    settings = get_settings()
    url = _database(settings, migrate_embedded=True)
    bind_host, bind_port = host or settings.host, port or settings.port
    worker_count = workers or settings.workers
    options: dict[str, Any] = {
        "host": bind_host,
        "port": bind_port,
        "log_config": logging_config(settings.log_level),
        "access_log": False,  # the service logs each request itself, with its request id
        "timeout_graceful_shutdown": settings.graceful_shutdown_seconds,
        **proxy_options(settings),
    }
    # uvicorn lets requests in flight finish on SIGTERM, then raises the signal again: make that
    # a normal exit, so that exit hooks run (they stop an embedded PostgreSQL started here).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    click.echo(
        f"Timebank serving on http://{bind_host}:{bind_port} with {worker_count} worker(s) "
        "(API docs at /schema)"
    )
    if worker_count == 1:
        uvicorn.run(create_app(settings, database_url=url), **options)
        return
    # Worker processes build the app themselves, from the environment: hand them the database
    # this process resolved (an embedded server it started, perhaps) and a directory where
    # they pool their metrics.
    os.environ["TIMEBANK_DATABASE_URL"] = url
    with tempfile.TemporaryDirectory(prefix="timebank-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        if can_share_port(bind_host, bind_port):
            # Each worker on a socket of its own, so that connections spread over them all.
            run_workers(
                uvicorn.Config(
                    "timebank.app:create_app", factory=True, workers=worker_count, **options
                )
            )
        else:
            uvicorn.run("timebank.app:create_app", factory=True, workers=worker_count, **options)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's handling of X-Forwarded-For/-Proto: believed only from TIMEBANK_TRUSTED_PROXIES
    (uvicorn's own default believes any loopback peer, so a proxy on the same host that passes
    the header along unchecked would let every caller choose their address)."""
    trusted = settings.trusted_proxy_list
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": []}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def _exit_on_signal(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command()
def upgrade() -> None:
    """Migrate the database to the newest schema."""
    url = _database(get_settings(), migrate_embedded=False)
    _upgrade(url)
    click.echo(f"database at revision {migrations.head_revision()}")


async def audit_ledger_and_reports(conn: AsyncConnection, slug: str | None) -> AuditReport:
    """What ``timebank verify`` checks, in one snapshot: every ledger invariant, every exchange
    against what the ledger holds for it, then the report aggregates against a recount of the
    exchanges that count (a pass over all of them)."""
    from timebank.exchanges.audit import exchange_findings
    from timebank.ledger.audit import audit
    from timebank.reports.audit import aggregate_findings

    report = await audit(conn, slug)
    report.findings += await exchange_findings(conn, slug)
    report.findings += await aggregate_findings(conn, slug)
    return report


@main.command()
@click.option("--timebank", "slug", default=None, help="Audit only this timebank.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(slug: str | None, as_json: bool) -> None:
    """Audit every ledger invariant; exit 1 naming whatever does not add up."""
    settings = get_settings()
    url = _database(settings, migrate_embedded=False)

    async def run() -> AuditReport:
        async with _engine(url, settings) as engine, engine.connect() as conn:
            return await audit_ledger_and_reports(conn, slug)

    report = _run(run())
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(
            f"checked {report.timebanks} timebank(s), {report.accounts} accounts, "
            f"{report.transfers} transfers, {report.postings} postings"
        )
        for finding in report.findings:
            click.echo(f"BROKEN {finding}")
        click.echo("ledger OK" if report.ok else f"{len(report.findings)} problem(s) found")
    sys.exit(0 if report.ok else 1)


@main.command("export")
@click.option("--timebank", "slug", required=True, help="Slug of the timebank to export.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export(slug: str, out: Path) -> None:
    """Write one zip archive of a whole timebank: CSV files and a manifest of their hashes."""
    from timebank.archive.commands import export_command

    settings = get_settings()
    url = _database(settings, migrate_embedded=True)
    click.echo(_run(export_command(url, settings, slug, out)))


@main.group("import")
def import_() -> None:
    """Bring a timebank in: `import people|history FILE` adds to one from CSV, `import archive
    FILE.zip` restores a whole one."""


@import_.command("archive")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_archive(file: Path) -> None:
    """Restore an archive made by `timebank export` into an empty instance."""
    from timebank.archive.commands import import_archive_command

    settings = get_settings()
    url = _database(settings, migrate_embedded=True)
    click.echo(_run(import_archive_command(url, settings, file)))


@main.group()
def admin() -> None:
    """Site administration."""


@admin.command("create")
@click.option("--email", required=True, help="Email of the new (or existing) user.")
def admin_create(email: str) -> None:
    """Create a site admin (password from a prompt, or from TIMEBANK_ADMIN_PASSWORD)."""
    from timebank.auth.service import AuthService

    settings = get_settings()
    if settings.admin_password is not None:
        password = settings.admin_password.get_secret_value()
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    url = _database(settings, migrate_embedded=True)

    async def run() -> int:
        async with _engine(url, settings) as engine:
            return await AuthService(engine, settings).create_admin(email, password)

    user_id = _run(run())
    click.echo(f"{email} is a site admin (user {user_id})")


@admin.command("reset-password")
@click.option("--email", required=True, help="Email of the user who lost their password.")
def admin_reset_password(email: str) -> None:
    """Print a one-time link that lets the user choose a new password (valid for
    TIMEBANK_PASSWORD_RESET_HOURS). Give it to the person only: it opens their account. Using
    it ends every session and API token of theirs."""
    from timebank.auth.service import AuthService

    settings = get_settings()
    url = _database(settings, migrate_embedded=True)

    async def run() -> str:
        async with _engine(url, settings) as engine:
            auth = AuthService(engine, settings)
            try:
                return await auth.issue_password_reset(email)
            finally:
                auth.passwords.close()

    secret = _run(run())
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    click.echo(f"{base.rstrip('/')}/reset-password?token={secret}")
    click.echo(f'or: POST /api/v1/auth/password-reset {{"token": "{secret}", "password": …}}')


@main.command()
@click.option("--slug", default="riverside", show_default=True, help="Slug of the demo timebank.")
@click.option("--seed", default=2026, show_default=True, help="Random seed (same seed, same demo).")
def demo(slug: str, seed: int) -> None:
    """Load a realistic demo timebank so there is something real to look at."""
    from timebank.demo import load_demo

    settings = get_settings()
    url = _database(settings, migrate_embedded=True)
    click.echo(_run(load_demo(url, settings, slug=slug, seed=seed)))


@import_.command("people")
@click.argument("file", type=click.File("rb"))
@click.option("--timebank", "slug", required=True, help="The timebank's slug.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
@click.option("--good-rows-only", is_flag=True, help="Import the good rows, skipping bad ones.")
def import_people(file: Any, slug: str, dry_run: bool, good_rows_only: bool) -> None:
    """Import people from a CSV file (ours or TimeOverflow's): checked whole, then all or
    nothing."""
    _import_csv("people", file, slug, dry_run, good_rows_only)


@import_.command("history")
@click.argument("file", type=click.File("rb"))
@click.option("--timebank", "slug", required=True, help="The timebank's slug.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
@click.option("--good-rows-only", is_flag=True, help="Import the good rows, skipping bad ones.")
def import_history(file: Any, slug: str, dry_run: bool, good_rows_only: bool) -> None:
    """Import past exchanges from a CSV file (ours or TimeOverflow's): checked whole, then all
    or nothing."""
    _import_csv("history", file, slug, dry_run, good_rows_only)


def _import_csv(kind: str, file: Any, slug: str, dry_run: bool, good_rows_only: bool) -> None:
    from timebank.imports.command import run_import

    settings = get_settings()
    url = _database(settings, migrate_embedded=True)
    _run(run_import(url, settings, kind, file.read(), slug, dry=dry_run, good=good_rows_only))


main.add_command(bench)

if __name__ == "__main__":
    main()
