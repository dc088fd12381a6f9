"""Ledger throughput: the ledger service against a raw-SQL floor, both measured in the same run
on a fresh embedded PostgreSQL.

Phase a, the floor: each client is a plain asyncpg connection that records one transfer per
transaction the minimal way: the two account UPDATEs (ascending id order, each RETURNING the
new balance and version), the transfer INSERT and one INSERT of both postings, as prepared
statements. The schema's triggers and deferred checks apply to this path exactly as they do to
the service's, so the floor is what PostgreSQL needs for a transfer under those rules.

Phase a0, the C floor: the same statements from pgbench, PostgreSQL's C client, with as many
connections (``timebank.bench.pgbench``): how far asyncpg and every phase after it are from
what the server itself allows.

Phase a2, for reference: plain asyncpg connections calling the service's own SQL function
(``ledger_post_transfer``), one round trip between BEGIN and COMMIT: the database work of the
service without any of its Python.

Phase b, the service: the same load through ``Ledger.post_transfer`` on the engine the service
itself uses (``timebank.db.engine.create_engine``), with a pool of at least ``clients``.

Phase c, batching: ``Ledger.post_batch`` with ``batch_size`` transfers per call (one
transaction each, every account locked and updated once per batch).

Phase d, group sessions: ``Exchanges.log_group`` with a coordinator's access, one session of
``group_legs`` legs per call, in a timebank whose policy approves exchanges at once, so every
leg is an exchange posted as a transfer in the transaction that logs the session
(``timebank.bench.groups``). It counts legs: legs/s over the floor's transfers/s is the
comparable ratio (each leg also writes an exchange row and its two decisions, which a transfer
of phase a does not).

Before anything is measured the ledger is given a history of transfers, so that no phase runs
on empty tables. Every phase draws distinct account pairs uniformly at random and 1 to 120
minutes, runs a short warm-up that is not counted, then counts the transfers completed within
``seconds``. Client CPU is this process's; server CPU is that of the PostgreSQL processes
(they share the machine, so on a small one either can be the bottleneck). At the end the ledger
audit checks every invariant over all the rows written.
"""

from __future__ import annotations

import asyncio
import functools

from timebank.bench.floor import (
    MIN_SEED_TRANSFERS,
    Accounts,
    Op,
    Pairs,
    PhaseResult,
    Timing,
    create_ledger,
    phase_raw,
    run_phase,
    seed_history,
)
from timebank.bench.groups import APPROVES_AT_ONCE, group_ledger, phase_groups
from timebank.bench.harness import (
    audit_line,
    cell,
    rounded,
    server_cpu_clock,
    server_facts,
    settle,
    share,
    start_server,
    warmup_for,
)
from timebank.bench.pgbench import CFloor, c_floor
from timebank.db import migrations
from timebank.db.engine import asyncpg_dsn, create_engine
from timebank.exchanges.service import Exchanges
from timebank.ledger import Ledger, TransferRequest
from timebank.ledger.audit import audit
from timebank.participants.service import Participants
from timebank.settings import Settings


async def _phase_service(
    ledger: Ledger, accounts: Accounts, *, clients: int, timing: Timing
) -> PhaseResult:
    """``Ledger.post_transfer``: one transfer per call."""

    def worker(pairs: Pairs) -> Op:
        async def post_one() -> int:
            debit, credit, minutes = pairs.next()
            await ledger.post_transfer(accounts.timebank_id, debit, credit, minutes)
            return 1

        return post_one

    return await run_phase(
        "b  service: Ledger.post_transfer",
        [worker(Pairs(accounts.account_ids, 3000 + i)) for i in range(clients)],
        timing,
    )


async def _phase_batch(
    ledger: Ledger, accounts: Accounts, *, clients: int, batch_size: int, timing: Timing
) -> PhaseResult:
    """``Ledger.post_batch(timebank_id, transfers)``: ``batch_size`` transfers per call."""
    post_batch = ledger.post_batch

    def worker(pairs: Pairs) -> Op:
        async def post_many() -> int:
            transfers = []
            for _ in range(batch_size):
                debit, credit, minutes = pairs.next()
                transfers.append(TransferRequest(debit, credit, minutes))
            await post_batch(accounts.timebank_id, transfers)
            return batch_size

        return post_many

    return await run_phase(
        f"c  service: Ledger.post_batch x{batch_size}",
        [worker(Pairs(accounts.account_ids, 4000 + i)) for i in range(clients)],
        timing,
    )


_HEADER = (
    f"  {'phase':<36}{'transfers':>10}{'secs':>7}{'transfers/s':>13}{'p50 ms':>8}{'p99 ms':>8}"
    f"{'client CPU':>12}{'server CPU':>12}{'vs a':>7}{'vs C':>7}"
)


def _row(result: PhaseResult, floor: PhaseResult | None, c_floor: CFloor) -> str:
    ratios = [
        share(result.per_second, floor.per_second) if floor else None,
        share(result.per_second, c_floor.per_second) if result is not c_floor.result else None,
    ]
    while ratios and ratios[-1] is None:  # no empty cells at the end of a row
        ratios.pop()
    return (
        f"  {result.name:<36}{result.transfers:>10}{result.elapsed:>7.2f}"
        f"{result.per_second:>13.1f}"
        f"{cell(result.latency_ms(0.50), 8)}{cell(result.latency_ms(0.99), 8)}"
        f"{cell(result.cpu_ms(result.client_cpu), 12, 3)}"
        f"{cell(result.cpu_ms(result.server_cpu), 12, 3)}"
        + "".join(cell(ratio, 7) for ratio in ratios)
    )


async def run_ledger_benchmark(
    *,
    clients: int,
    accounts: int,
    seconds: float,
    batch_size: int,
    history: int = MIN_SEED_TRANSFERS,
    group_legs: int = 20,
) -> dict:
    """Measure transfers/s of the raw-SQL floor (a), the same from pgbench (a0), the service
    (b), the batching path (c) and legs/s of group sessions (d) on a fresh embedded
    PostgreSQL; print a table and return the figures."""
    if clients < 1 or accounts < 2 or seconds <= 0 or batch_size < 1 or group_legs < 1:
        raise ValueError(
            "need clients >= 1, accounts >= 2, seconds > 0, batch_size >= 1 and group_legs >= 1"
        )
    warmup = warmup_for(seconds)
    seed_transfers = max(history, 2 * accounts)

    print("starting a fresh embedded PostgreSQL and migrating it ...", flush=True)
    url = await asyncio.to_thread(start_server)
    await migrations.upgrade_async(url)
    dsn = asyncpg_dsn(url)
    version, postmaster_pid = await server_facts(dsn)
    timing = Timing(warmup, seconds, server_cpu_clock(postmaster_pid))

    settings = Settings(database_url=url, db_pool_size=clients, db_max_overflow=0)
    engine = create_engine(url, settings)
    try:
        print(
            f"creating one timebank with {accounts} accounts and {seed_transfers} transfers "
            "of history ...",
            flush=True,
        )
        target = await create_ledger(Participants(engine), dsn, accounts, APPROVES_AT_ONCE)
        await seed_history(target, seed_transfers)
        ledger = Ledger(engine, max_retries=settings.ledger_max_retries)
        run = f"({warmup:g} s warm-up, {seconds:g} s)"

        raw = functools.partial(phase_raw, ledger=target, clients=clients, timing=timing)

        async def next_phase(label: str) -> None:
            """Say which phase comes, and give it the same footing as the others."""
            print(f"phase {label} {run} ...", flush=True)
            await settle(dsn)

        await next_phase("a:  raw SQL statements, the floor")
        floor = await raw("a  floor: raw SQL statements", function=False, seed=1000)
        await next_phase("a2: asyncpg calling ledger_post_transfer")
        function_result = await raw("a2 asyncpg: ledger_post_transfer", function=True, seed=2000)
        await next_phase("a0: pgbench, the same SQL from C")
        c = await c_floor(target, clients=clients, timing=timing)
        await next_phase("b:  the service")
        service = await _phase_service(ledger, target, clients=clients, timing=timing)
        await next_phase(f"c:  batches of {batch_size}")
        batch = await _phase_batch(
            ledger, target, clients=clients, batch_size=batch_size, timing=timing
        )
        groups_target = await group_ledger(engine, target)
        await next_phase(f"d:  group sessions of {group_legs} legs")
        exchanges = Exchanges(engine, max_retries=settings.ledger_max_retries)
        groups = await phase_groups(
            exchanges, groups_target, clients=clients, legs=group_legs, timing=timing
        )
        async with engine.connect() as audit_conn:
            report = await audit(audit_conn)
    finally:
        await engine.dispose()

    ratio = share(service.per_second, floor.per_second) or 0.0
    function_ratio = share(function_result.per_second, floor.per_second)
    batch_ratio = share(batch.per_second, floor.per_second) or 0.0
    group_ratio = share(groups.per_second, floor.per_second) or 0.0
    c_ratios = {
        name: share(result.per_second, c.per_second)
        for name, result in (
            ("floor", floor),
            ("function", function_result),
            ("service", service),
            ("batch", batch),
            ("groups", groups),
        )
    }

    print()
    print("Ledger benchmark: transfers/s on a fresh embedded PostgreSQL")
    print(
        f"  PostgreSQL {version}; clients {clients}; accounts {accounts}; "
        f"{seed_transfers} transfers of history; {seconds:g} s per phase after a "
        f"{warmup:g} s warm-up; batch size {batch_size}; group sessions of {group_legs} legs"
    )
    print(
        "  (latency per call; CPU in ms per transfer: client = this process, or pgbench for a0,"
        " server = postgres; for d a transfer is a leg, each posted as it is logged)"
    )
    print()
    print(_HEADER)
    print(_row(floor, None, c))
    if c.result is not None:
        print(_row(c.result, floor, c))
    print(_row(function_result, floor, c))
    print(_row(service, floor, c))
    print(_row(batch, floor, c))
    print(_row(groups, floor, c))
    print()
    print(f"  service / floor (b/a): {ratio:.2f}")
    print(f"  batch / floor (c/a):   {batch_ratio:.2f}")
    print(f"  group legs / floor (d/a): {group_ratio:.2f}")
    if c.result is not None:
        print(
            f"  C floor (pgbench, {clients} clients, same SQL): {c.result.per_second:.1f} "
            f"transfers/s ({c.note})"
        )
        print(f"  floor / C floor (a/a0):   {c_ratios['floor']:.2f}")
        print(f"  service / C floor (b/a0): {c_ratios['service']:.2f}")
        print(f"  batch / C floor (c/a0):   {c_ratios['batch']:.2f}")
        print(f"  group legs / C floor (d/a0): {c_ratios['groups']:.2f}")
    else:
        print(f"  C floor (pgbench): none: {c.note}")
    measured = (floor, *([c.result] if c.result else []), function_result, service, batch, groups)
    for result in measured:
        if result.errors or result.retries:
            print(
                f"  {result.name}: {result.retries} retries, {result.errors} errors"
                + (f" (first: {result.first_error})" if result.first_error else "")
            )
    print(audit_line(report))
    for finding in report.findings[:20]:
        print(f"    BROKEN {finding}")
    if len(report.findings) > 20:
        print(f"    ... and {len(report.findings) - 20} more")

    return {
        "config": {
            "clients": clients,
            "accounts": accounts,
            "seconds": seconds,
            "warmup_seconds": warmup,
            "seed_transfers": seed_transfers,
            "batch_size": batch_size,
            "group_legs": group_legs,
            "postgresql_version": version,
        },
        "floor_transfers_per_s": round(floor.per_second, 1),
        "c_floor_transfers_per_s": rounded(c.per_second, 1),
        "function_transfers_per_s": round(function_result.per_second, 1),
        "service_transfers_per_s": round(service.per_second, 1),
        "service_ratio": round(ratio, 3),
        "function_ratio": rounded(function_ratio, 3),
        "batch_transfers_per_s": round(batch.per_second, 1),
        "batch_ratio": round(batch_ratio, 3),
        "group_legs_per_s": round(groups.per_second, 1),
        "group_ratio": round(group_ratio, 3),
        "c_floor_ratios": {name: rounded(value, 3) for name, value in c_ratios.items()},
        "phases": {
            "floor": floor.as_dict(),
            "c_floor": c.result.as_dict() if c.result else None,
            "function": function_result.as_dict(),
            "service": service.as_dict(),
            "batch": batch.as_dict(),
            "groups": groups.as_dict(),
        },
        "audit": report.as_dict(),
        "ledger_ok": report.ok,
    }
