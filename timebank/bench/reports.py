"""Report speed: the service's reciprocity and contribution reports against the plainest correct
SQL over the raw exchanges, both measured in the same run on a fresh embedded PostgreSQL.


What is measured
    For the twelve most recent full calendar months, and as of one moment T taken after the
    build (passed to every call, so every run counts the same exchanges):
    (a) ``Reports.contribution``, monthly, full view; (b) the funder view of the last calendar
    year (its publication protected once, at the warm-up, then remembered);
    (c) ``Reports.reciprocity`` for one participant (the busiest member of the year);
    (d) ``Reports.reciprocity`` for everyone; and the plainest correct SQL a newcomer would
    write from the definitions in ``timebank/reports/__init__.py``, straight over the
    exchanges, participants and categories tables with nothing precomputed: (e) for (a), (f)
    for (c); (d) is checked instead to add up to (a)'s totals and to hold (c)'s row. Every job
    runs once to warm up, then ``runs`` rounds run every job in turn (interleaved, so that
    whatever else the machine does falls on all alike); the table gives the median and the
    range in milliseconds of wall time as the caller sees it (the service's own Python
    included). The plain SQL is planned afresh for its parameters
    each time (``plan_cache_mode = force_custom_plan``, as psql would run it): a cached generic
    plan can be far worse, and the baseline should not lose by accident. The service runs on
    its own engine exactly as deployed. The plain queries' figures are checked against the
    service's. Every SQL statement the service sends is timed too (SQLAlchemy's cursor events)
    and named after the constant of ``timebank.reports.repository`` it comes from, so the
    output says where each report's time goes; ``explain=True`` (``--explain``) adds
    EXPLAIN (ANALYZE, BUFFERS) of each, as a custom and as a generic plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

from timebank.auth.schemas import Principal, TimebankAccess
from timebank.bench.harness import server_facts, start_server
from timebank.bench.reports_build import SLUG, Progress, build_timebank, built_before
from timebank.bench.reports_measure import Job, StatementClock, explain_plans, measure
from timebank.bench.reports_plain import (
    BUSIEST_MEMBER,
    PLAIN_RECIPROCITY_ONE,
    check_contribution,
    check_everyone,
    check_reciprocity,
    plain_contribution,
)
from timebank.db import embedded, migrations
from timebank.db.engine import asyncpg_dsn, create_engine
from timebank.participants.service import Participants
from timebank.reports.release import Release
from timebank.reports.schemas import ContributionReport, ReciprocityReport, View
from timebank.reports.service import Reports
from timebank.settings import Settings

TARGET_CONTRIBUTION_MS = 150.0
TARGET_CONTRIBUTION_RATIO = 10.0
TARGET_RECIPROCITY_MS = 20.0


def _last_full_months(today: date, months: int = 12) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    month = end.month - months  # zero-based month index of the first month
    return date(end.year + month // 12, month % 12 + 1, 1), end


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _summary(found: list[str]) -> str:
    if not found:
        return "OK"
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return "MISMATCH: " + "; ".join(found[:3]) + more


async def run_reports_benchmark(
    *,
    participants: int = 10_000,
    exchanges: int = 1_000_000,
    years: int = 3,
    runs: int = 7,
    explain: bool = False,
    keep: Path | None = None,
) -> dict:
    """Build a timebank of ``participants`` and ``exchanges`` over ``years`` on a fresh
    embedded PostgreSQL, time each report against the plainest correct SQL (median of
    ``runs`` after a warm-up), print a table and return the figures. With ``keep``, the
    embedded PostgreSQL lives in that directory and stays there; a timebank built by an
    earlier run in it is measured again (after migrating it) instead of being rebuilt."""
    if participants < 4 or exchanges < 1 or years < 1 or runs < 1:
        raise ValueError("need participants >= 4, exchanges >= 1, years >= 1 and runs >= 1")
    progress = Progress()
    if keep is None:
        print("starting a fresh embedded PostgreSQL and migrating it ...", flush=True)
        url = await asyncio.to_thread(start_server)
    else:
        print(f"starting the embedded PostgreSQL kept in {keep} and migrating it ...", flush=True)
        url = await asyncio.to_thread(embedded.start, keep)
    await migrations.upgrade_async(url)
    dsn = asyncpg_dsn(url)
    version, _ = await server_facts(dsn)
    progress.say(f"PostgreSQL {version} ready")

    settings = Settings(database_url=url, db_pool_size=2, db_max_overflow=0)
    engine = create_engine(url, settings)
    try:
        earlier = await built_before(dsn) if keep is not None else None
        if earlier is not None:
            built = earlier
            participants = len(built.participant_ids)
            progress.say(
                f"measuring the timebank built earlier in {keep}: {participants:,} participants,"
                f" {built.exchanges:,} approved exchanges"
            )
        else:
            print(
                f"building a timebank of {participants:,} participants and {exchanges:,} "
                f"approved exchanges over {years} years ...",
                flush=True,
            )
            built = await build_timebank(
                dsn,
                Participants(engine),
                participants=participants,
                exchanges=exchanges,
                years=years,
                progress=progress,
            )
            progress.say(f"built in {built.seconds:.1f} s")

        conn = await asyncpg.connect(dsn)
        # The plain SQL is planned for its own parameters every time, as psql would run it:
        # a prepared statement's generic plan can be far worse (minutes rather than seconds,
        # for the reciprocity of everyone), and the baseline should not lose by accident.
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        try:
            # One moment for every run; reports never count later than settle seconds ago, so
            # wait until T is that far behind.
            as_of: datetime = await conn.fetchval("SELECT clock_timestamp()")
            settle = settings.report_settle_seconds
            behind = await conn.fetchval("SELECT clock_timestamp()") - as_of
            wait = settle + 0.2 - behind.total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            start, end = _last_full_months(date.today())
            tb = built.timebank_id
            busiest = await conn.fetchrow(BUSIEST_MEMBER, tb, start, end, as_of)
            one = busiest["participant_id"] if busiest else built.participant_ids[0]
            one_exchanges = busiest["exchanges"] if busiest else 0

            reports = Reports(engine, settings)
            access = TimebankAccess(
                principal=Principal(
                    user_id=0, email="bench@example.org", is_admin=True, token_id=0
                ),
                timebank_id=tb,
                timebank_slug=SLUG,
                roles=frozenset({"coordinator"}),
            )
            print(
                f"measuring {start} .. {end} as of {as_of.astimezone(UTC):%Y-%m-%d %H:%M:%S} "
                f"UTC: one warm-up, then {runs} rounds of every report in turn ...",
                flush=True,
            )

            def contribution(view: View) -> Callable[[], Awaitable[ContributionReport]]:
                if view == "funder":  # published for a whole closed year, as of its release
                    year = date(end.year - 1, 1, 1), date(end.year - 1, 12, 31)
                    release = Release(as_of=as_of, through=year[1])
                    return lambda: reports.funder_contribution(
                        access, start=year[0], end=year[1], release=release
                    )
                return lambda: reports.contribution(
                    access, start=start, end=end, as_of=as_of, interval="month", view=view
                )

            def reciprocity(pid: int | None) -> Callable[[], Awaitable[ReciprocityReport]]:
                return lambda: reports.reciprocity(
                    access, start=start, end=end, as_of=as_of, participant_id=pid
                )

            jobs: list[Job] = [
                ("a", "Reports.contribution, month, full view", contribution("full")),
                ("b", "Reports.contribution, month, funder view", contribution("funder")),
                ("c", "Reports.reciprocity, one participant", reciprocity(one)),
                ("d", "Reports.reciprocity, everyone", reciprocity(None)),
                (
                    "e",
                    "plain SQL for a (3 queries)",
                    lambda: plain_contribution(conn, tb, start, end, as_of),
                ),
                (
                    "f",
                    "plain SQL for c",
                    lambda: conn.fetch(PLAIN_RECIPROCITY_ONE, tb, start, end, as_of, one),
                ),
            ]
            clock = StatementClock(engine)
            timings, results = await measure(jobs, runs, clock)
            a, b, c, d, e, f = (timings[key] for key in "abcdef")
            breakdown = {key: clock.breakdown(key) for key in "acd"}
            plans = await explain_plans(conn, breakdown) if explain else []
            full, plain = results["a"], results["e"]
            mine_one, plain_one = results["c"], results["f"]
            mine_all = results["d"]
        finally:
            await conn.close()
    finally:
        await engine.dispose()

    in_totals, everywhere = check_contribution(full, plain)
    one_found = check_reciprocity(mine_one, plain_one)
    all_found = check_everyone(mine_all, mine_one, full)
    ratios = {
        "a": e.median / a.median,
        "b": e.median / b.median,
        "c": f.median / c.median,
    }
    targets = {
        "contribution_ms": a.median <= TARGET_CONTRIBUTION_MS,
        "contribution_funder_ms": b.median <= TARGET_CONTRIBUTION_MS,
        "contribution_ratio": ratios["a"] >= TARGET_CONTRIBUTION_RATIO,
        "reciprocity_one_ms": c.median <= TARGET_RECIPROCITY_MS,
    }
    plain_of = {"a": "e", "b": "e", "c": "f"}

    print()
    print("Reports benchmark: milliseconds per report on a fresh embedded PostgreSQL")
    print(
        f"  PostgreSQL {version}; {participants:,} participants; {built.exchanges:,} approved "
        f"exchanges over {years} years ({built.reversed:,} of them reversed); "
        + (f"built in {built.seconds:.1f} s" if built.phases else f"built earlier in {keep}")
    )
    print(
        f"  period {start} .. {end} (monthly series; {full.totals.exchanges:,} exchanges count "
        f"in it), as of "
        f"{as_of.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC; one participant = the busiest member "
        f"(#{one}, {one_exchanges:,} exchanges in the period)"
    )
    print(
        f"  median of {runs} interleaved rounds after one warm-up; wall time as the caller sees "
        "it; plain SQL planned afresh each time (force_custom_plan)"
    )
    print()
    print(f"  {'report':<46}{'median ms':>11}{'min ms':>10}{'max ms':>10}{'plain/report':>14}")
    for timing in (a, b, c, d, e, f):
        ratio = ratios.get(timing.key)
        shown = f"{ratio:>9.1f} ({plain_of[timing.key]}/{timing.key})" if ratio else ""
        print(
            f"  {timing.key}  {timing.name:<43}{timing.median:>11.1f}"
            f"{min(timing.samples):>10.1f}{max(timing.samples):>10.1f}{shown:>14}"
        )
    print()
    print(f"  check e vs a, totals (minutes, exchanges, active): {_summary(in_totals)}")
    print(f"  check e vs a, every figure of every month, category and flow: {_summary(everywhere)}")
    print(f"  check f vs c: {_summary(one_found)}")
    print(
        "  check d against a and c (given minutes and exchanges add up to a's totals; "
        f"c's row is in it): {_summary(all_found)}"
    )
    print()
    print("  targets (issue 4, item 7):")
    print(
        f"    contribution for a year <= {TARGET_CONTRIBUTION_MS:g} ms (a): {a.median:.1f} ms: "
        f"{_verdict(targets['contribution_ms'])}"
    )
    print(
        f"    the same in the funder view (b): {b.median:.1f} ms: "
        f"{_verdict(targets['contribution_funder_ms'])}"
    )
    print(
        f"    contribution >= {TARGET_CONTRIBUTION_RATIO:g}x faster than the plain SQL (e/a): "
        f"{ratios['a']:.1f}x: {_verdict(targets['contribution_ratio'])}"
    )
    print(
        f"    reciprocity for one person <= {TARGET_RECIPROCITY_MS:g} ms (c): {c.median:.1f} ms: "
        f"{_verdict(targets['reciprocity_one_ms'])}"
    )

    print()
    print("  where the service's time goes (median ms of each SQL statement it sent, in order):")
    for key, timing in (("a", a), ("c", c), ("d", d)):
        statements = breakdown[key]
        if not statements:
            continue
        in_sql = sum(ms for _, ms, _, _ in statements)
        print(
            f"    {key}: {timing.median:.1f} ms, of which {in_sql:.1f} ms in "
            f"{len(statements)} statement(s): "
            + ", ".join(f"{name} {ms:.1f}" for name, ms, _, _ in statements)
        )
    for line in plans:
        print(line)

    return {
        "config": {
            "participants": participants,
            "exchanges": exchanges,
            "years": years,
            "runs": runs,
            "postgresql_version": version,
            "period": [start.isoformat(), end.isoformat()],
            "as_of": as_of.isoformat(),
            "participant_id": one,
        },
        "build": {
            "seconds": round(built.seconds, 1),
            "phases_s": {name: round(s, 1) for name, s in built.phases.items()},
            "exchanges": built.exchanges,
            "reversed": built.reversed,
        },
        "timings": {t.key: t.as_dict() for t in (a, b, c, d, e, f)},
        "ratios": {key: round(value, 2) for key, value in ratios.items()},
        "checks": {
            "totals_ok": not in_totals,
            "every_figure_ok": not everywhere,
            "reciprocity_one_ok": not one_found,
            "reciprocity_everyone_ok": not all_found,
            "differences": (in_totals + everywhere + one_found + all_found)[:50],
        },
        "targets_met": targets,
        "statements_ms": {
            key: [[name, round(ms, 2)] for name, ms, _, _ in statements]
            for key, statements in breakdown.items()
        },
    }
