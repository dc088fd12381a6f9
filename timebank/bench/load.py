"""Load: the whole service over HTTP, beside the raw-SQL floor of the ledger measured in the
same run, on a fresh embedded PostgreSQL.

The service runs as it does in production: ``timebank serve`` in processes of its own
(uvicorn, ``--workers``), on the same machine as this load generator and the database. Two
timebanks are built straight into the database: one that approves every exchange
automatically, with many members, and one where the other party confirms and a coordinator
approves. Then, for a fixed time each, many concurrent simulated clients (an asyncio task
each, with a keep-alive HTTP connection of its own, see ``timebank.bench.http_client``):

- auto-approve: members log exchanges they gave to another member (each is posted at once),
  and now and then read their balance (one step in ten) or their own line of the reciprocity
  report (one in fifty);
- auto-approve at 0.2x the floor (paced): the same clients and mix, each stepping at the
  arrivals of a Poisson process of its own, so that logs are offered at 0.2 times the floor's
  transfers/s in all (reads on top at their share; ``--paced-at`` offers another share);
- coordinator approval: a member logs, the other party confirms, a coordinator approves, and
  now and then (one round in fifty) a coordinator reads the timebank's contribution report.

The output counts the requests of each kind, so the share of reads is there to see.

Before anything is measured, both timebanks are given a history: their clients run for a few
seconds, unmeasured, and then the database is vacuumed and analyzed (as it is again before
each phase). A timebank in use has one, and without it the service's connections would plan
their statements on empty exchange tables. PostgreSQL then caches plans that read those
tables whole (the foreign key checks on exchanges, for one), and each of those reads grows
with every exchange logged until autovacuum's next ANALYZE replans them, up to a minute
later: longer than a phase. ANALYZE makes every connection plan its statements again.

Why the paced phase: the others are closed loops without think time, so every client always
has a request queued and latency is just clients / throughput, whatever the service does.
The target (posted/s >= 0.2x the floor with p99 <= 150 ms at 64 clients) asks how fast the
service answers at that rate, so that phase offers exactly it; a lower share shows the latency
at a rate the service sustains. Its latency counts
from when each request was due, not when it was sent: a client behind schedule sends at once
and the wait counts, so a slow answer cannot hide the requests it held back (no coordinated
omission).

Every request carries an idempotency key where the API takes one. A "posted exchange" is one
whose minutes moved: a logged exchange answered ``approved`` (auto-approve), or an approval
(coordinator approval). Latency is that of every request of the phase, as the client saw it
(in the paced phase, from when the request was due).
The floor is phase a of ``timebank bench ledger``: plain asyncpg connections writing one
transfer per transaction with the fewest statements the schema allows; the C floor is phase
a0, the same statements from pgbench (``timebank.bench.pgbench``). Every figure is shown
against both.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
from pathlib import Path
from typing import Any

from timebank.bench.floor import Timing, create_ledger, phase_raw, seed_history
from timebank.bench.harness import (
    process_tree_clock,
    server_cpu_clock,
    server_facts,
    settle,
    start_server,
    warmup_for,
)
from timebank.bench.load_clients import (
    AUTO_APPROVE,
    COORDINATOR_APPROVAL,
    LOG_SHARE,
    auto_approve_client,
    build_bank,
    coordinator_approval_client,
)
from timebank.bench.load_phase import Client, Clocks, PhaseResult, run_phase, serving
from timebank.bench.load_report import TARGET_SHARE_OF_FLOOR, LoadRun, report
from timebank.bench.pgbench import c_floor
from timebank.db import migrations
from timebank.db.engine import asyncpg_dsn, create_engine
from timebank.ledger.audit import audit
from timebank.participants.service import Participants
from timebank.settings import Settings

FLOOR_CLIENTS = 16
# Seconds each timebank's clients log before anything is measured (at most a phase's length).
HISTORY_SECONDS = 3.0


async def run_load_benchmark(
    *,
    clients: int,
    seconds: float,
    members: int,
    workers: int,
    pool_size: int,
    access_log: bool = True,
    paced: bool = True,
    paced_share: float = TARGET_SHARE_OF_FLOOR,
) -> dict[str, Any]:
    """Measure both floors, then drive the service with both kinds of timebank; print a table
    and return the figures."""
    if clients < 1 or seconds <= 0 or members < 2 or workers < 1 or pool_size < 1:
        raise ValueError("need clients >= 1, seconds > 0, members >= 2, workers and pool >= 1")
    warmup = warmup_for(seconds)
    run = f"({warmup:g} s warm-up, {seconds:g} s)"
    work_dir = Path(tempfile.mkdtemp(prefix="timebank-load-"))

    print("starting a fresh embedded PostgreSQL and migrating it ...", flush=True)
    url = await asyncio.to_thread(start_server)
    await migrations.upgrade_async(url)
    dsn = asyncpg_dsn(url)
    version, postmaster_pid = await server_facts(dsn)
    database_clock = server_cpu_clock(postmaster_pid) or (lambda: 0.0)

    engine = create_engine(url, Settings(database_url=url, db_pool_size=8, db_max_overflow=8))
    try:
        floor_accounts = max(2 * FLOOR_CLIENTS, members)
        print(f"phase a:  raw SQL transfers, the floor, {FLOOR_CLIENTS} connections {run} ...")
        target = await create_ledger(Participants(engine), dsn, floor_accounts)
        await seed_history(target, 4 * floor_accounts)
        await settle(dsn)
        floor_timing = Timing(warmup, seconds, None)
        floor = await phase_raw(
            "floor: raw SQL transfers",
            target,
            function=False,
            clients=FLOOR_CLIENTS,
            timing=floor_timing,
            seed=1000,
        )
        print(f"phase a0: pgbench, the same SQL from C, {FLOOR_CLIENTS} connections {run} ...")
        await settle(dsn)
        c = await c_floor(target, clients=FLOOR_CLIENTS, timing=floor_timing)
        offered_logs_per_s = paced_share * floor.per_second
        approval_members = max(2, members // 5)
        coordinators = max(1, clients // 16)
        print(
            f"building an auto-approving timebank of {members} members and one with "
            f"coordinator approval ({approval_members} members, {coordinators} coordinators) ..."
        )
        auto = await build_bank(engine, "load-auto", AUTO_APPROVE, members, 0)
        approval = await build_bank(
            engine, "load-approval", COORDINATOR_APPROVAL, approval_members, coordinators
        )
        await settle(dsn)

        # The load generator's own full garbage collections would stop every simulated client
        # at once and count as the service's latency: what it has built so far (the
        # timebanks' members and their headers) is frozen out of them.
        gc.collect()
        gc.freeze()
        log_path = work_dir / "service.log"
        print(f"starting the service: {workers} worker(s), pool {pool_size} each; log {log_path}")
        async with serving(
            url, workers=workers, pool_size=pool_size, access_log=access_log, log_path=log_path
        ) as (base_url, service_pid):
            clocks = Clocks(process_tree_clock(service_pid), database_clock)
            history_seconds = min(HISTORY_SECONDS, seconds)
            print(
                f"history:  both timebanks log exchanges for {history_seconds:g} s each "
                "(not measured), then the database is vacuumed and analyzed ...",
                flush=True,
            )
            history = [
                await run_phase(
                    "history",
                    base_url,
                    make_client(bank),
                    clients=clients,
                    warmup=0,
                    seconds=history_seconds,
                    clocks=clocks,
                )
                for make_client, bank in (
                    (auto_approve_client, auto),
                    (coordinator_approval_client, approval),
                )
            ]

            async def measure(
                name: str, step: Client, steps_per_s_per_client: float | None = None
            ) -> PhaseResult:
                """One measured phase, from a vacuumed and analyzed database."""
                await settle(dsn)
                return await run_phase(
                    name,
                    base_url,
                    step,
                    clients=clients,
                    warmup=warmup,
                    seconds=seconds,
                    clocks=clocks,
                    steps_per_s_per_client=steps_per_s_per_client,
                )

            print(f"phase b:  auto-approve, {clients} clients {run} ...", flush=True)
            auto_result = await measure(
                "auto-approve (log; balance, report reads)", auto_approve_client(auto)
            )
            paced_result = None
            if paced and floor.per_second > 0:
                print(
                    f"phase b2: auto-approve paced at {offered_logs_per_s:.0f} logs/s "
                    f"({paced_share:g}x the floor), {clients} clients {run} ...",
                    flush=True,
                )
                paced_result = await measure(
                    f"auto-approve at {paced_share:g}x the floor (paced)",
                    auto_approve_client(auto),
                    offered_logs_per_s / LOG_SHARE / clients,
                )
            print(f"phase c:  coordinator approval, {clients} clients {run} ...", flush=True)
            approval_result = await measure(
                "coordinator approval (log, confirm, approve)",
                coordinator_approval_client(approval),
            )
        async with engine.connect() as conn:
            audited = await audit(conn)
    finally:
        gc.unfreeze()
        await engine.dispose()

    return report(
        LoadRun(
            version=version,
            clients=clients,
            seconds=seconds,
            warmup=warmup,
            workers=workers,
            pool_size=pool_size,
            members=members,
            approval_members=approval_members,
            coordinators=coordinators,
            access_log=access_log,
            paced_share=paced_share,
            floor_clients=FLOOR_CLIENTS,
            floor=floor,
            c_floor=c,
            history=history,
            history_seconds=history_seconds,
            auto=auto_result,
            paced=paced_result,
            approval=approval_result,
            audit=audited,
        )
    )
