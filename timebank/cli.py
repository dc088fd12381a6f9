"""The ``timebank`` command: serve, migrate, audit, load a demo, benchmark."""

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
    """What ``timebank verify`` checks, in one snapshot: every ledger invariant, then the report
    aggregates against a recount of the exchanges that count (a pass over all of them)."""
    from timebank.ledger.audit import audit
    from timebank.reports.audit import aggregate_findings

    report = await audit(conn, slug)
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


@main.command("import")
@click.argument("kind", type=click.Choice(["people", "history"]))
@click.argument("file", type=click.File("rb"))
@click.option("--timebank", "slug", required=True, help="The timebank's slug.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
@click.option("--good-rows-only", is_flag=True, help="Import the good rows, skipping bad ones.")
def import_file(kind: str, file: Any, slug: str, dry_run: bool, good_rows_only: bool) -> None:
    """Import people or history from a CSV file: checked whole, then all or nothing."""
    from timebank.imports.command import run_import

    settings = get_settings()
    url = _database(settings, migrate_embedded=True)
    _run(run_import(url, settings, kind, file.read(), slug, dry=dry_run, good=good_rows_only))


@main.group()
def bench() -> None:
    """Benchmarks: programs that print figures measured against a baseline in the same run."""


@bench.command("ledger")
@click.option("--clients", default=16, show_default=True, help="Concurrent clients.")
@click.option("--accounts", default=10_000, show_default=True, help="Accounts in the ledger.")
@click.option("--seconds", default=10.0, show_default=True, help="Duration of each phase.")
@click.option("--batch-size", default=50, show_default=True, help="Transfers per batch.")
@click.option(
    "--history", default=20_000, show_default=True, help="Transfers written before measuring."
)
@click.option(
    "--group-legs", default=20, show_default=True, help="Legs per group session (phase d)."
)
def bench_ledger(
    clients: int, accounts: int, seconds: float, batch_size: int, history: int, group_legs: int
) -> None:
    """Transfers/s of the ledger service against the raw-SQL floor (from asyncpg, and from
    pgbench in C), and legs/s of group sessions, on a fresh embedded PostgreSQL."""
    from timebank.bench.ledger import run_ledger_benchmark

    asyncio.run(
        run_ledger_benchmark(
            clients=clients,
            accounts=accounts,
            seconds=seconds,
            batch_size=batch_size,
            history=history,
            group_legs=group_legs,
        )
    )


@bench.command("load")
@click.option("--clients", default=64, show_default=True, help="Concurrent simulated clients.")
@click.option("--seconds", default=10.0, show_default=True, help="Duration of each phase.")
@click.option(
    "--members", default=1000, show_default=True, help="Members of the auto-approving timebank."
)
@click.option("--workers", default=2, show_default=True, help="Service worker processes.")
@click.option(
    "--pool-size",
    default=None,
    type=int,
    help="Connections per worker (default: the service's own default, "
    "TIMEBANK_DB_POOL_SIZE's). More connections than the cores can keep busy only add cold "
    "PostgreSQL backends and contention; the clients queue for a connection instead.",
)
@click.option(
    "--access-log/--no-access-log", default=True, show_default=True, help="Service access log."
)
@click.option(
    "--paced/--no-paced",
    default=True,
    show_default=True,
    help="After the closed-loop auto-approve phase, one with the clients paced at 0.2x the "
    "floor (Poisson arrivals), where latency is the service's rather than the queue's.",
)
@click.option(
    "--paced-at",
    "paced_share",
    default=0.2,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="What the paced phase offers, as a share of the floor's transfers/s in logs/s (the "
    "issue's target is at 0.2; a lower share shows latency at a rate the service sustains).",
)
def bench_load(
    clients: int,
    seconds: float,
    members: int,
    workers: int,
    pool_size: int | None,
    access_log: bool,
    paced: bool,
    paced_share: float,
) -> None:
    """Posted exchanges/s and latency of the service over HTTP, against the raw-SQL floor of
    the ledger (from asyncpg, and from pgbench in C) measured in the same run, on a fresh
    embedded PostgreSQL."""
    from timebank.bench.load import run_load_benchmark

    try:
        asyncio.run(
            run_load_benchmark(
                clients=clients,
                seconds=seconds,
                members=members,
                workers=workers,
                pool_size=pool_size or Settings.model_fields["db_pool_size"].default,
                access_log=access_log,
                paced=paced,
                paced_share=paced_share,
            )
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from error


@bench.command("reports")
@click.option("--participants", default=10_000, show_default=True, help="Participants.")
@click.option(
    "--exchanges", default=1_000_000, show_default=True, help="Approved exchanges to build."
)
@click.option("--years", default=3, show_default=True, help="Years of service dates.")
@click.option("--runs", default=7, show_default=True, help="Timed runs of each report.")
@click.option(
    "--explain",
    is_flag=True,
    help="Also print EXPLAIN (ANALYZE, BUFFERS) of every statement the service sent.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the embedded PostgreSQL in this directory; a later run with the same directory "
    "migrates it and measures the timebank already built there instead of building again.",
)
def bench_reports(
    participants: int, exchanges: int, years: int, runs: int, explain: bool, keep: Path | None
) -> None:
    """Milliseconds per report against the plainest correct SQL, on a fresh embedded
    PostgreSQL holding a timebank built for the purpose."""
    from timebank.bench.reports import run_reports_benchmark

    try:
        asyncio.run(
            run_reports_benchmark(
                participants=participants,
                exchanges=exchanges,
                years=years,
                runs=runs,
                explain=explain,
                keep=keep,
            )
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    main()
