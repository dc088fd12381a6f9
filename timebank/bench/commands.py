"""``timebank bench …``: the benchmark programs' commands (each imports its program only when
run, so the service never loads them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from timebank.settings import Settings


@click.group()
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


@bench.command("import")
@click.option("--people", default=10_000, show_default=True, help="People in the file.")
@click.option(
    "--exchanges", default=1_000_000, show_default=True, help="Past exchanges in the file."
)
@click.option("--years", default=3, show_default=True, help="Years of service dates.")
def bench_import(people: int, exchanges: int, years: int) -> None:
    """Seconds to import a timebank's people and history, beside PostgreSQL's COPY of the same
    rows into plain tables, on a fresh embedded PostgreSQL; then checks every balance."""
    from timebank.bench.imports import run_import_benchmark

    try:
        figures = asyncio.run(run_import_benchmark(people=people, exchanges=exchanges, years=years))
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    if not all(figures["checks"].values()) or not figures["audit_ok"]:  # type: ignore[attr-defined]
        raise SystemExit(1)
