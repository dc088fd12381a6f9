"""Ledger throughput: the ledger service against a raw-SQL floor, both measured in the same run
on a fresh embedded PostgreSQL.

Phase a, the floor: each client is a plain asyncpg connection that records one transfer per
transaction the minimal way: the two account UPDATEs (ascending id order, each RETURNING the
new balance and version), the transfer INSERT and one INSERT of both postings, as prepared
statements. The schema's triggers and deferred checks apply to this path exactly as they do to
the service's, so the floor is what PostgreSQL needs for a transfer under those rules.

Phase a2, for reference: plain asyncpg connections calling the service's own SQL function
(``ledger_post_transfer``), one round trip between BEGIN and COMMIT: the database work of the
service without any of its Python.

Phase b, the service: the same load through ``Ledger.post_transfer`` on the engine the service
itself uses (``timebank.db.engine.create_engine``), with a pool of at least ``clients``.

Phase c, batching: ``Ledger.post_batch`` with ``batch_size`` transfers per call (one
transaction each, every account locked and updated once per batch).

Before anything is measured the ledger is given a history of transfers, so that no phase runs
on empty tables. Every phase draws distinct account pairs uniformly at random and 1 to 120
minutes, runs a short warm-up that is not counted, then counts the transfers completed within
``seconds``. Client CPU is this process's; server CPU is that of the PostgreSQL processes
(they share the machine, so on a small one either can be the bottleneck). At the end the ledger
audit checks every invariant over all the rows written.
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

from timebank.db import embedded, migrations
from timebank.db.engine import asyncpg_dsn, create_engine
from timebank.ledger import Ledger, TransferRequest
from timebank.ledger.audit import audit
from timebank.participants.schemas import TimebankPolicy
from timebank.participants.service import Participants
from timebank.settings import Settings

FLOOR_MINUTES = -10_000_000
CEILING_MINUTES = 10_000_000
MAX_EXCHANGE_MINUTES = 24 * 60
MAX_TRANSFER_MINUTES = 120
MIN_SEED_TRANSFERS = 20_000
RAW_MAX_RETRIES = 8
MAX_ERRORS_PER_PHASE = 100
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

Op = Callable[[], Awaitable[int]]
CpuClock = Callable[[], float]


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
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def per_second(self) -> float:
        return self.transfers / self.elapsed if self.elapsed > 0 else 0.0

    def latency_ms(self, quantile: float) -> float | None:
        """Latency of one call (one transfer, or one batch) at ``quantile``."""
        if len(self.latencies) < 2:
            return None
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return 1000 * cuts[round(quantile * 100) - 1]

    def cpu_ms(self, seconds: float) -> float | None:
        """CPU milliseconds per transfer."""
        return 1000 * seconds / self.transfers if self.transfers and seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "transfers": self.transfers,
            "calls": self.calls,
            "elapsed_s": round(self.elapsed, 3),
            "transfers_per_s": round(self.per_second, 1),
            "p50_ms": _round(self.latency_ms(0.50)),
            "p99_ms": _round(self.latency_ms(0.99)),
            "client_cpu_ms_per_transfer": _round(self.cpu_ms(self.client_cpu), 3),
            "server_cpu_ms_per_transfer": _round(self.cpu_ms(self.server_cpu), 3),
            "retries": self.retries,
            "errors": self.errors,
            "first_error": self.first_error,
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
# The server and the ledger under test
# ------------------------------------------------------------------------------------------


def _start_server() -> str:
    """A fresh embedded server in a temporary directory; both are gone when the process exits
    (the server's own exit hook stops it and deletes its data, then ours removes the rest)."""
    data_dir = Path(tempfile.mkdtemp(prefix="timebank-bench-"))
    # Registered before the server's hook, so it runs after it (exit hooks run last-in first-out).
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    return embedded.start(data_dir, delete_on_exit=True)


def _server_cpu_clock(postmaster_pid: int | None) -> CpuClock | None:
    """CPU seconds used so far by the postmaster and its children: those it has now, and
    those that have exited (the postmaster reaps them, so their time is in its children's
    times), or None where psutil cannot see them."""
    try:
        import psutil

        postmaster = psutil.Process(postmaster_pid)
    except Exception:
        return None

    def seconds() -> float:
        total = 0.0
        for process in [postmaster, *postmaster.children()]:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
            if process is postmaster:
                total += times.children_user + times.children_system
        return total

    return seconds


async def _server_facts(dsn: str) -> tuple[str, int | None]:
    """The server's version and its postmaster's process id."""
    conn = await asyncpg.connect(dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        data_directory = await conn.fetchval("SHOW data_directory")
    finally:
        await conn.close()
    try:
        pid_file = Path(data_directory) / "postmaster.pid"
        return version, int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return version, None


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


async def _create_ledger(
    participants: Participants, dsn: str, accounts: int
) -> tuple[int, list[int]]:
    """One timebank (through the service) and ``accounts`` participant accounts (bulk SQL)."""
    timebank = await participants.create_timebank(
        "bench",
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
    finally:
        await conn.close()
    return timebank.id, sorted(row["id"] for row in rows)


_SEED_HISTORY = """
    SELECT count(ledger_post_transfer(
               $1, ids[i + 1], ids[CASE WHEN j >= i THEN j + 2 ELSE j + 1 END],
               1 + floor(random() * $3)::bigint, 'exchange', 'seed', NULL, NULL, NULL))
      FROM (SELECT floor(random() * n)::int AS i, floor(random() * (n - 1))::int AS j,
                   $2::bigint[] AS ids
              FROM (SELECT cardinality($2::bigint[]) AS n) AS sizes,
                   generate_series(1, $4) AS g) AS pairs
"""


async def _seed_history(dsn: str, timebank_id: int, account_ids: list[int], transfers: int) -> None:
    """Give the ledger a history before anything is measured. On empty tables the planner picks
    sequential scans for the trigger and foreign-key queries, and a connection keeps those plans
    while the tables grow: without a history, whichever phase ran first would pay for that."""
    conn = await asyncpg.connect(dsn)
    try:
        left = transfers
        while left > 0:
            chunk = min(left, 5_000)
            async with conn.transaction():
                await conn.fetchval(
                    _SEED_HISTORY, timebank_id, account_ids, MAX_TRANSFER_MINUTES, chunk
                )
            left -= chunk
    finally:
        await conn.close()


async def _settle(dsn: str) -> None:
    """Start every phase from the same footing: fresh statistics, dead rows cleared, and a
    checkpoint behind it rather than in the middle of it. The whole database is vacuumed, not
    only the ledger's tables: enrolling a thousand members a moment earlier leaves a thousand
    dead versions of their timebank's row (its member count), which every request then steps
    over until autovacuum's next round, up to a minute later."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE)")
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


@dataclass(frozen=True)
class _Timing:
    warmup: float
    seconds: float
    server_cpu: CpuClock | None


async def _run_phase(name: str, ops: list[Op], timing: _Timing) -> PhaseResult:
    """Warm up (not counted), then run every op in a loop for ``seconds``; elapsed runs until
    the last call in flight at the deadline has finished."""
    if timing.warmup > 0:
        warm = PhaseResult(f"{name} (warm-up)")
        deadline = time.perf_counter() + timing.warmup
        await asyncio.gather(*(_loop(op, deadline, warm) for op in ops))
    server_clock = timing.server_cpu or (lambda: 0.0)
    result = PhaseResult(name)
    client_cpu, server_cpu = time.process_time(), server_clock()
    started = time.perf_counter()
    deadline = started + timing.seconds
    await asyncio.gather(*(_loop(op, deadline, result) for op in ops))
    result.elapsed = time.perf_counter() - started
    result.client_cpu = time.process_time() - client_cpu
    result.server_cpu = server_clock() - server_cpu
    return result


# ------------------------------------------------------------------------------------------
# Phases a and a2: plain asyncpg
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
_CALL_POST_TRANSFER = (
    "SELECT (transfer).id FROM ledger_post_transfer"
    "($1, $2, $3, $4, 'exchange', NULL, NULL, NULL, NULL)"
)


class _RawClient:
    """One asyncpg connection posting transfers with plain prepared statements (or, with
    ``function=True``, with one call of the service's SQL function)."""

    def __init__(
        self, conn: asyncpg.Connection, timebank_id: int, pairs: _Pairs, *, function: bool
    ) -> None:
        self._conn = conn
        self._timebank_id = timebank_id
        self._pairs = pairs
        self._function = function
        self.retries = 0

    async def prepare(self) -> None:
        if self._function:
            self._call = await self._conn.prepare(_CALL_POST_TRANSFER)
        else:
            self._move = await self._conn.prepare(_MOVE_ACCOUNT)
            self._transfer = await self._conn.prepare(_INSERT_TRANSFER)
            self._postings = await self._conn.prepare(_INSERT_POSTINGS)

    async def post_one(self) -> int:
        debit, credit, minutes = self._pairs.next()
        post = self._post_by_function if self._function else self._post_by_statements
        attempt = 0
        while True:
            try:
                async with self._conn.transaction():
                    await post(debit, credit, minutes)
                return 1
            except asyncpg.PostgresError as exc:
                if exc.sqlstate in RETRYABLE_SQLSTATES and attempt < RAW_MAX_RETRIES:
                    attempt += 1
                    self.retries += 1
                    continue
                raise

    async def _post_by_statements(self, debit: int, credit: int, minutes: int) -> None:
        tb = self._timebank_id
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

    async def _post_by_function(self, debit: int, credit: int, minutes: int) -> None:
        await self._call.fetchval(self._timebank_id, debit, credit, minutes)


async def _phase_raw(
    name: str,
    dsn: str,
    timebank_id: int,
    account_ids: list[int],
    *,
    function: bool,
    clients: int,
    timing: _Timing,
    seed: int,
) -> PhaseResult:
    conns = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(clients)))
    try:
        raw = [
            _RawClient(conn, timebank_id, _Pairs(account_ids, seed + i), function=function)
            for i, conn in enumerate(conns)
        ]
        await asyncio.gather(*(client.prepare() for client in raw))
        result = await _run_phase(name, [client.post_one for client in raw], timing)
        result.retries = sum(client.retries for client in raw)  # warm-up included
        return result
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))


# ------------------------------------------------------------------------------------------
# Phases b and c: the service
# ------------------------------------------------------------------------------------------


async def _phase_service(
    ledger: Ledger, timebank_id: int, account_ids: list[int], *, clients: int, timing: _Timing
) -> PhaseResult:
    def worker(pairs: _Pairs) -> Op:
        async def post_one() -> int:
            debit, credit, minutes = pairs.next()
            await ledger.post_transfer(timebank_id, debit, credit, minutes)
            return 1

        return post_one

    return await _run_phase(
        "b  service: Ledger.post_transfer",
        [worker(_Pairs(account_ids, 3000 + i)) for i in range(clients)],
        timing,
    )


async def _phase_batch(
    ledger: Ledger,
    timebank_id: int,
    account_ids: list[int],
    *,
    clients: int,
    batch_size: int,
    timing: _Timing,
) -> PhaseResult:
    """``Ledger.post_batch(timebank_id, transfers)``: ``batch_size`` transfers per call."""
    post_batch = ledger.post_batch

    def worker(pairs: _Pairs) -> Op:
        async def post_many() -> int:
            transfers = []
            for _ in range(batch_size):
                debit, credit, minutes = pairs.next()
                transfers.append(TransferRequest(debit, credit, minutes))
            await post_batch(timebank_id, transfers)
            return batch_size

        return post_many

    return await _run_phase(
        f"c  service: Ledger.post_batch x{batch_size}",
        [worker(_Pairs(account_ids, 4000 + i)) for i in range(clients)],
        timing,
    )


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------

_HEADER = (
    f"  {'phase':<36}{'transfers':>10}{'secs':>7}{'transfers/s':>13}{'p50 ms':>8}{'p99 ms':>8}"
    f"{'client CPU':>12}{'server CPU':>12}{'vs a':>7}"
)


def _cell(value: float | None, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _row(result: PhaseResult, floor: PhaseResult | None) -> str:
    ratio = result.per_second / floor.per_second if floor and floor.per_second else None
    return (
        f"  {result.name:<36}{result.transfers:>10}{result.elapsed:>7.2f}"
        f"{result.per_second:>13.1f}"
        f"{_cell(result.latency_ms(0.50), 8)}{_cell(result.latency_ms(0.99), 8)}"
        f"{_cell(result.cpu_ms(result.client_cpu), 12, 3)}"
        f"{_cell(result.cpu_ms(result.server_cpu), 12, 3)}"
        f"{'' if ratio is None else f'{ratio:>7.2f}'}"
    )


async def run_ledger_benchmark(
    *,
    clients: int,
    accounts: int,
    seconds: float,
    batch_size: int,
    history: int = MIN_SEED_TRANSFERS,
) -> dict:
    """Measure transfers/s of the raw-SQL floor (a), the service (b) and the batching path (c)
    on a fresh embedded PostgreSQL; print a table and return the figures."""
    if clients < 1 or accounts < 2 or seconds <= 0 or batch_size < 1:
        raise ValueError("need clients >= 1, accounts >= 2, seconds > 0 and batch_size >= 1")
    warmup = min(2.0, max(0.5, seconds / 5))
    seed_transfers = max(history, 2 * accounts)

    print("starting a fresh embedded PostgreSQL and migrating it ...", flush=True)
    url = await asyncio.to_thread(_start_server)
    await migrations.upgrade_async(url)
    dsn = asyncpg_dsn(url)
    version, postmaster_pid = await _server_facts(dsn)
    timing = _Timing(warmup, seconds, _server_cpu_clock(postmaster_pid))

    settings = Settings(database_url=url, db_pool_size=clients, db_max_overflow=0)
    engine = create_engine(url, settings)
    try:
        print(
            f"creating one timebank with {accounts} accounts and {seed_transfers} transfers "
            "of history ...",
            flush=True,
        )
        timebank_id, account_ids = await _create_ledger(Participants(engine), dsn, accounts)
        await _seed_history(dsn, timebank_id, account_ids, seed_transfers)
        ledger = Ledger(engine, max_retries=settings.ledger_max_retries)
        run = f"({warmup:g} s warm-up, {seconds:g} s)"

        print(f"phase a:  raw SQL statements, the floor {run} ...", flush=True)
        await _settle(dsn)
        floor = await _phase_raw(
            "a  floor: raw SQL statements",
            dsn,
            timebank_id,
            account_ids,
            function=False,
            clients=clients,
            timing=timing,
            seed=1000,
        )
        print(f"phase a2: asyncpg calling ledger_post_transfer {run} ...", flush=True)
        await _settle(dsn)
        function = await _phase_raw(
            "a2 asyncpg: ledger_post_transfer()",
            dsn,
            timebank_id,
            account_ids,
            function=True,
            clients=clients,
            timing=timing,
            seed=2000,
        )
        print(f"phase b:  the service {run} ...", flush=True)
        await _settle(dsn)
        service = await _phase_service(
            ledger, timebank_id, account_ids, clients=clients, timing=timing
        )

        print(f"phase c:  batches of {batch_size} {run} ...", flush=True)
        await _settle(dsn)
        batch = await _phase_batch(
            ledger,
            timebank_id,
            account_ids,
            clients=clients,
            batch_size=batch_size,
            timing=timing,
        )

        async with engine.connect() as audit_conn:
            report = await audit(audit_conn)
    finally:
        await engine.dispose()

    def ratio_to_floor(result: PhaseResult | None) -> float | None:
        if result is None or not floor.per_second:
            return None
        return result.per_second / floor.per_second

    ratio = ratio_to_floor(service) or 0.0
    function_ratio = ratio_to_floor(function)
    batch_ratio = ratio_to_floor(batch) or 0.0

    print()
    print("Ledger benchmark: transfers/s on a fresh embedded PostgreSQL")
    print(
        f"  PostgreSQL {version}; clients {clients}; accounts {accounts}; "
        f"{seed_transfers} transfers of history; {seconds:g} s per phase after a "
        f"{warmup:g} s warm-up; batch size {batch_size}"
    )
    print("  (latency per call; CPU in ms per transfer: client = this process, server = postgres)")
    print()
    print(_HEADER)
    print(_row(floor, None))
    print(_row(function, floor))
    print(_row(service, floor))
    print(_row(batch, floor))
    print()
    print(f"  service / floor (b/a): {ratio:.2f}")
    print(f"  batch / floor (c/a):   {batch_ratio:.2f}")
    for result in (floor, function, service, batch):
        if result.errors or result.retries:
            print(
                f"  {result.name}: {result.retries} retries, {result.errors} errors"
                + (f" (first: {result.first_error})" if result.first_error else "")
            )
    print(
        f"  audit: {report.timebanks} timebank(s), {report.accounts} accounts, "
        f"{report.transfers} transfers, {report.postings} postings: "
        + ("ledger verified clean" if report.ok else f"{len(report.findings)} problem(s) found")
    )
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
            "postgresql_version": version,
        },
        "floor_transfers_per_s": round(floor.per_second, 1),
        "function_transfers_per_s": round(function.per_second, 1),
        "service_transfers_per_s": round(service.per_second, 1),
        "service_ratio": round(ratio, 3),
        "function_ratio": _round(function_ratio, 3),
        "batch_transfers_per_s": round(batch.per_second, 1),
        "batch_ratio": _round(batch_ratio, 3),
        "phases": {
            "floor": floor.as_dict(),
            "function": function.as_dict(),
            "service": service.as_dict(),
            "batch": batch.as_dict(),
        },
        "audit": report.as_dict(),
        "ledger_ok": report.ok,
    }
