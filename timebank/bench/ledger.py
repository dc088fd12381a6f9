"""Ledger throughput: the ledger service against a raw-SQL floor, both measured in the same run
on a fresh embedded PostgreSQL.

Phase a, the floor: each client is a plain asyncpg connection that records one transfer per
transaction the minimal way: the two account UPDATEs (ascending id order, each RETURNING the
new balance and version), the transfer INSERT and one INSERT of both postings, as prepared
statements. The schema's triggers and deferred checks apply to this path exactly as they do to
the service's, so the floor is what PostgreSQL itself needs for a transfer under those rules.

Phase b, the service: the same load through ``Ledger.post_transfer`` on the engine the service
itself uses (``timebank.db.engine.create_engine``), with a pool of at least ``clients``.

Phase c, batching: ``Ledger.post_batch`` with ``batch_size`` transfers per call, if the ledger
has one; otherwise reported as not implemented.

Every phase draws distinct account pairs uniformly at random and 1 to 120 minutes, runs a
short warm-up that is not counted, then counts transfers completed within ``seconds``. At the
end the ledger audit checks every invariant over all the rows written.
"""

from __future__ import annotations

import asyncio
import atexit
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.db import embedded, migrations
from timebank.db.engine import asyncpg_dsn, create_engine
from timebank.ledger import Ledger
from timebank.ledger.audit import audit
from timebank.participants.schemas import TimebankPolicy
from timebank.participants.service import Participants
from timebank.settings import Settings

FLOOR_MINUTES = -10_000_000
CEILING_MINUTES = 10_000_000
MAX_EXCHANGE_MINUTES = 24 * 60
MAX_TRANSFER_MINUTES = 120
RAW_MAX_RETRIES = 8
MAX_ERRORS_PER_PHASE = 100
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

Op = Callable[[], Awaitable[int]]


@dataclass
class PhaseResult:
    """What one phase measured: transfers completed in the measured window, and how long."""

    name: str
    transfers: int = 0
    calls: int = 0
    elapsed: float = 0.0
    retries: int = 0
    errors: int = 0
    first_error: str | None = None
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def per_second(self) -> float:
        return self.transfers / self.elapsed if self.elapsed > 0 else 0.0

    def latency_ms(self, quantile: float) -> float | None:
        if len(self.latencies) < 2:
            return None
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return 1000 * cuts[round(quantile * 100) - 1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "transfers": self.transfers,
            "calls": self.calls,
            "elapsed_s": round(self.elapsed, 3),
            "transfers_per_s": round(self.per_second, 1),
            "p50_ms": _round(self.latency_ms(0.50)),
            "p99_ms": _round(self.latency_ms(0.99)),
            "retries": self.retries,
            "errors": self.errors,
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


class _Pairs:
    """Distinct (debit, credit) account pairs drawn uniformly, and 1..120 minutes."""

    def __init__(self, account_ids: list[int], seed: int) -> None:
        self._ids = account_ids
        self._rng = random.Random(seed)  # noqa: S311 - load generation, not security

    def next(self) -> tuple[int, int, int]:
        n = len(self._ids)
        i = self._rng.randrange(n)
        j = self._rng.randrange(n - 1)
        if j >= i:
            j += 1
        return self._ids[i], self._ids[j], self._rng.randint(1, MAX_TRANSFER_MINUTES)


# ------------------------------------------------------------------------------------------
# Setup
# ------------------------------------------------------------------------------------------


def _start_server() -> str:
    """A fresh embedded server in a temporary directory; both are gone when the process exits
    (the server's own exit hook stops it and deletes its data, then ours removes the rest)."""
    data_dir = Path(tempfile.mkdtemp(prefix="timebank-bench-"))
    # Registered before the server's hook, so it runs after it (exit hooks run last-in first-out).
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    return embedded.start(data_dir, delete_on_exit=True)


_CREATE_ACCOUNTS = """
    WITH new_participants AS (
        INSERT INTO participants (timebank_id, kind, display_name)
        SELECT $1, 'member', 'Bench member ' || g FROM generate_series(1, $2) AS g
        RETURNING id
    )
    INSERT INTO accounts (timebank_id, participant_id, floor, ceiling)
    SELECT $1, id, $3, $4 FROM new_participants ORDER BY id
    RETURNING id
"""


async def _create_ledger(engine: AsyncEngine, dsn: str, accounts: int) -> tuple[int, list[int]]:
    """One timebank (through the service) and ``accounts`` participant accounts (bulk SQL)."""
    timebank = await Participants(engine).create_timebank(
        f"bench-{int(time.time())}",
        "Ledger benchmark",
        TimebankPolicy(
            default_floor_minutes=FLOOR_MINUTES,
            default_ceiling_minutes=CEILING_MINUTES,
            max_exchange_minutes=MAX_EXCHANGE_MINUTES,
            welcome_grant_minutes=0,
        ),
    )
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            rows = await conn.fetch(
                _CREATE_ACCOUNTS, timebank.id, accounts, FLOOR_MINUTES, CEILING_MINUTES
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return timebank.id, sorted(row["id"] for row in rows)


async def _settle(dsn: str) -> None:
    """Start every phase from the same footing: fresh statistics, dead rows cleared, a
    checkpoint behind it rather than in the middle of it."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE) accounts, transfers, postings")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------
# Driving a phase
# ------------------------------------------------------------------------------------------


async def _loop(op: Op, deadline: float, result: PhaseResult) -> None:
    clock = time.perf_counter
    while clock() < deadline:
        started = clock()
        try:
            done = await op()
        except Exception as exc:
            result.errors += 1
            if result.first_error is None:
                result.first_error = f"{type(exc).__name__}: {exc}"
            if result.errors >= MAX_ERRORS_PER_PHASE:
                raise RuntimeError(
                    f"phase {result.name!r} failed {result.errors} times; first: "
                    f"{result.first_error}"
                ) from exc
            continue
        result.latencies.append(clock() - started)
        result.transfers += done
        result.calls += 1


async def _run_phase(name: str, ops: list[Op], *, warmup: float, seconds: float) -> PhaseResult:
    """Warm up (not counted), then run every op in a loop for ``seconds``; elapsed runs until
    the last call in flight at the deadline has finished."""
    if warmup > 0:
        warm = PhaseResult(f"{name} (warm-up)")
        deadline = time.perf_counter() + warmup
        await asyncio.gather(*(_loop(op, deadline, warm) for op in ops))
    result = PhaseResult(name)
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_loop(op, deadline, result) for op in ops))
    result.elapsed = time.perf_counter() - started
    return result


# ------------------------------------------------------------------------------------------
# Phase a: the raw-SQL floor
# ------------------------------------------------------------------------------------------

_MOVE_ACCOUNT = (
    "UPDATE accounts SET balance = balance + $2, version = version + 1"
    " WHERE id = $1 AND timebank_id = $3 RETURNING balance, version"
)
_INSERT_TRANSFER = (
    "INSERT INTO transfers (timebank_id, debit_account_id, credit_account_id, minutes, kind)"
    " VALUES ($1, $2, $3, $4, 'exchange') RETURNING id"
)
_INSERT_POSTINGS = (
    "INSERT INTO postings"
    " (timebank_id, transfer_id, account_id, minutes, balance_after, account_version)"
    " VALUES ($1, $2, $3, $4, $5, $6), ($1, $2, $7, $8, $9, $10)"
)


class _RawClient:
    """One asyncpg connection posting transfers with plain prepared statements."""

    def __init__(self, conn: asyncpg.Connection, timebank_id: int, pairs: _Pairs) -> None:
        self._conn = conn
        self._timebank_id = timebank_id
        self._pairs = pairs
        self.retries = 0

    async def prepare(self) -> None:
        self._move = await self._conn.prepare(_MOVE_ACCOUNT)
        self._transfer = await self._conn.prepare(_INSERT_TRANSFER)
        self._postings = await self._conn.prepare(_INSERT_POSTINGS)

    async def post_one(self) -> int:
        debit, credit, minutes = self._pairs.next()
        attempt = 0
        while True:
            try:
                await self._post(debit, credit, minutes)
                return 1
            except asyncpg.PostgresError as exc:
                if exc.sqlstate in RETRYABLE_SQLSTATES and attempt < RAW_MAX_RETRIES:
                    attempt += 1
                    self.retries += 1
                    continue
                raise

    async def _post(self, debit: int, credit: int, minutes: int) -> None:
        tb = self._timebank_id
        async with self._conn.transaction():
            if debit < credit:  # lock the two accounts in ascending id order
                d_balance, d_version = await self._move.fetchrow(debit, -minutes, tb)
                c_balance, c_version = await self._move.fetchrow(credit, minutes, tb)
            else:
                c_balance, c_version = await self._move.fetchrow(credit, minutes, tb)
                d_balance, d_version = await self._move.fetchrow(debit, -minutes, tb)
            transfer_id = await self._transfer.fetchval(tb, debit, credit, minutes)
            await self._postings.fetch(
                tb,
                transfer_id,
                debit,
                -minutes,
                d_balance,
                d_version,
                credit,
                minutes,
                c_balance,
                c_version,
            )


async def _phase_floor(
    dsn: str, timebank_id: int, account_ids: list[int], *, clients: int, warmup: float, seconds: float
) -> PhaseResult:
    conns = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(clients)))
    try:
        raw = [_RawClient(c, timebank_id, _Pairs(account_ids, 1000 + i)) for i, c in enumerate(conns)]
        await asyncio.gather(*(client.prepare() for client in raw))
        result = await _run_phase(
            "a  raw SQL floor (asyncpg)",
            [client.post_one for client in raw],
            warmup=warmup,
            seconds=seconds,
        )
        result.retries = sum(client.retries for client in raw)  # warm-up included
        return result
    finally:
        await asyncio.gather(*(c.close() for c in conns))


# ------------------------------------------------------------------------------------------
# Phases b and c: the service
# ------------------------------------------------------------------------------------------


async def _phase_service(
    ledger: Ledger,
    timebank_id: int,
    account_ids: list[int],
    *,
    clients: int,
    warmup: float,
    seconds: float,
) -> PhaseResult:
    def worker(pairs: _Pairs) -> Op:
        async def post_one() -> int:
            debit, credit, minutes = pairs.next()
            await ledger.post_transfer(timebank_id, debit, credit, minutes)
            return 1

        return post_one

    return await _run_phase(
        "b  service Ledger.post_transfer",
        [worker(_Pairs(account_ids, 2000 + i)) for i in range(clients)],
        warmup=warmup,
        seconds=seconds,
    )


async def _phase_batch(
    ledger: Ledger,
    timebank_id: int,
    account_ids: list[int],
    *,
    clients: int,
    batch_size: int,
    warmup: float,
    seconds: float,
) -> PhaseResult:
    """``Ledger.post_batch(timebank_id, transfers)``, each transfer given as the keyword
    arguments of ``post_transfer`` (debit_account_id, credit_account_id, minutes)."""
    post_batch = ledger.post_batch  # type: ignore[attr-defined]

    def worker(pairs: _Pairs) -> Op:
        async def post_many() -> int:
            transfers = []
            for _ in range(batch_size):
                debit, credit, minutes = pairs.next()
                transfers.append(
                    {"debit_account_id": debit, "credit_account_id": credit, "minutes": minutes}
                )
            await post_batch(timebank_id, transfers)
            return batch_size

        return post_many

    return await _run_phase(
        f"c  batch Ledger.post_batch x{batch_size}",
        [worker(_Pairs(account_ids, 3000 + i)) for i in range(clients)],
        warmup=warmup,
        seconds=seconds,
    )


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def _row(result: PhaseResult, floor: PhaseResult | None) -> str:
    p50, p99 = result.latency_ms(0.50), result.latency_ms(0.99)
    ratio = f"{result.per_second / floor.per_second:8.2f}" if floor and floor.per_second else ""
    return (
        f"  {result.name:<34}{result.transfers:>10}{result.elapsed:>9.2f}"
        f"{result.per_second:>13.1f}"
        f"{'' if p50 is None else f'{p50:>9.2f}'}{'' if p99 is None else f'{p99:>9.2f}'}"
        f"{ratio:>10}"
    )


async def run_ledger_benchmark(
    *, clients: int, accounts: int, seconds: float, batch_size: int
) -> dict:
    """Measure transfers/s of the raw-SQL floor (a), the service (b) and, if it exists, the
    batching path (c) on a fresh embedded PostgreSQL; print a table and return the figures."""
    if clients < 1 or accounts < 2 or seconds <= 0 or batch_size < 1:
        raise ValueError("need clients >= 1, accounts >= 2, seconds > 0 and batch_size >= 1")
    warmup = min(2.0, max(0.5, seconds / 5))

    print("starting a fresh embedded PostgreSQL and migrating it ...", flush=True)
    url = await asyncio.to_thread(_start_server)
    await migrations.upgrade_async(url)
    dsn = asyncpg_dsn(url)

    settings = Settings(database_url=url, db_pool_size=max(clients, 1), db_max_overflow=0)
    engine = create_engine(url, settings)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            version = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()

        print(f"creating one timebank with {accounts} accounts ...", flush=True)
        timebank_id, account_ids = await _create_ledger(engine, dsn, accounts)
        ledger = Ledger(engine, max_retries=settings.ledger_max_retries)

        print(f"phase a: raw SQL floor ({warmup:g} s warm-up, {seconds:g} s) ...", flush=True)
        await _settle(dsn)
        floor = await _phase_floor(
            dsn, timebank_id, account_ids, clients=clients, warmup=warmup, seconds=seconds
        )
        print(f"phase b: service ({warmup:g} s warm-up, {seconds:g} s) ...", flush=True)
        await _settle(dsn)
        service = await _phase_service(
            ledger, timebank_id, account_ids, clients=clients, warmup=warmup, seconds=seconds
        )

        batch: PhaseResult | None = None
        batch_note = "not implemented (Ledger has no post_batch)"
        if hasattr(Ledger, "post_batch"):
            print(f"phase c: batch of {batch_size} ({warmup:g} s warm-up, {seconds:g} s) ...")
            await _settle(dsn)
            try:
                batch = await _phase_batch(
                    ledger,
                    timebank_id,
                    account_ids,
                    clients=clients,
                    batch_size=batch_size,
                    warmup=warmup,
                    seconds=seconds,
                )
                batch_note = ""
            except Exception as exc:
                batch_note = f"Ledger.post_batch failed: {type(exc).__name__}: {exc}"

        async with engine.connect() as audit_conn:
            report = await audit(audit_conn)
    finally:
        await engine.dispose()

    ratio = service.per_second / floor.per_second if floor.per_second else 0.0
    batch_ratio = (
        batch.per_second / floor.per_second if batch is not None and floor.per_second else None
    )

    print()
    print("Ledger benchmark: transfers/s on a fresh embedded PostgreSQL")
    print(
        f"  PostgreSQL {version}; clients {clients}; accounts {accounts}; "
        f"{seconds:g} s per phase after a {warmup:g} s warm-up; batch size {batch_size}"
    )
    print()
    print(
        f"  {'phase':<34}{'transfers':>10}{'secs':>9}{'transfers/s':>13}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'vs a':>10}"
    )
    print(_row(floor, None))
    print(_row(service, floor))
    if batch is not None:
        print(_row(batch, floor))
    else:
        print(f"  {'c  batch':<34}{batch_note}")
    print()
    print(f"  service / floor (b/a): {ratio:.2f}")
    if batch_ratio is not None:
        print(f"  batch / floor (c/a):   {batch_ratio:.2f}")
    else:
        print(f"  batch: {batch_note}")
    for result in (floor, service, batch):
        if result is not None and (result.errors or result.retries):
            print(
                f"  {result.name.strip()}: {result.retries} retries, {result.errors} errors"
                + (f" (first: {result.first_error})" if result.first_error else "")
            )
    print(
        f"  audit: {report.timebanks} timebank(s), {report.accounts} accounts, "
        f"{report.transfers} transfers, {report.postings} postings: "
        + ("ledger verified clean" if report.ok else f"{len(report.findings)} problem(s) found")
    )
    for finding in report.findings[:20]:
        print(f"    BROKEN {finding}")

    return {
        "config": {
            "clients": clients,
            "accounts": accounts,
            "seconds": seconds,
            "warmup_seconds": warmup,
            "batch_size": batch_size,
            "postgresql_version": version,
        },
        "floor_transfers_per_s": round(floor.per_second, 1),
        "service_transfers_per_s": round(service.per_second, 1),
        "service_ratio": round(ratio, 3),
        "batch_transfers_per_s": None if batch is None else round(batch.per_second, 1),
        "batch_ratio": None if batch_ratio is None else round(batch_ratio, 3),
        "batch_note": batch_note or None,
        "phases": {
            "floor": floor.as_dict(),
            "service": service.as_dict(),
            "batch": None if batch is None else batch.as_dict(),
        },
        "audit": report.as_dict(),
    }
