"""The ledger every benchmark writes to, and its floor: plain asyncpg connections recording
transfers the minimal way, driven phase by phase.

The floor's client records one transfer per transaction: the two account UPDATEs (ascending id
order, each RETURNING the new balance and version), the transfer INSERT and one INSERT of both
postings, as prepared statements. The schema's triggers and deferred checks apply to this path
exactly as they do to the service's, so the floor is what PostgreSQL needs for a transfer under
those rules. With ``function=True`` the client calls the service's own SQL function
(``ledger_post_transfer``) instead, one round trip between BEGIN and COMMIT.

A phase draws distinct account pairs uniformly at random and 1 to 120 minutes, runs a short
warm-up that is not counted, then counts the transfers completed within its seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from timebank.bench.harness import CpuClock, Measured, rounded
from timebank.ledger import repository as ledger_repository
from timebank.participants.schemas import TimebankPolicy
from timebank.participants.service import Participants

FLOOR_MINUTES = -10_000_000
CEILING_MINUTES = 10_000_000
# Every benchmark timebank: limits no benchmark reaches, exchanges up to a day, no welcome grant.
WIDE_LIMITS = TimebankPolicy(
    default_floor_minutes=FLOOR_MINUTES,
    default_ceiling_minutes=CEILING_MINUTES,
    max_exchange_minutes=24 * 60,
    welcome_grant_minutes=0,
)
MAX_TRANSFER_MINUTES = 120
MIN_SEED_TRANSFERS = 20_000
RAW_MAX_RETRIES = 8
MAX_ERRORS_PER_PHASE = 100
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

Op = Callable[[], Awaitable[int]]


@dataclass
class PhaseResult(Measured):
    """What one phase measured: transfers completed in the measured window, and how long (a
    call is one transfer, or one batch)."""

    transfers: int = 0
    calls: int = 0
    retries: int = 0
    first_error: str | None = None
    server_cpu: float = 0.0

    @property
    def per_second(self) -> float:
        return self.rate(self.transfers)

    def cpu_ms(self, seconds: float) -> float | None:
        """CPU milliseconds per transfer."""
        return 1000 * seconds / self.transfers if self.transfers and seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "transfers": self.transfers,
            "calls": self.calls,
            "elapsed_s": round(self.elapsed, 3),
            "transfers_per_s": round(self.per_second, 1),
            "p50_ms": rounded(self.latency_ms(0.50)),
            "p99_ms": rounded(self.latency_ms(0.99)),
            "client_cpu_ms_per_transfer": rounded(self.cpu_ms(self.client_cpu), 3),
            "server_cpu_ms_per_transfer": rounded(self.cpu_ms(self.server_cpu), 3),
            "retries": self.retries,
            "errors": self.errors,
            "first_error": self.first_error,
        }


class Pairs:
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


@dataclass(frozen=True)
class Accounts:
    """A timebank's accounts to post transfers between, and the database they are in."""

    dsn: str
    timebank_id: int
    account_ids: list[int]


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


async def create_ledger(
    participants: Participants, dsn: str, accounts: int, policy: TimebankPolicy = WIDE_LIMITS
) -> Accounts:
    """One timebank (through the service) and ``accounts`` participant accounts (bulk SQL)."""
    timebank = await participants.create_timebank("bench", "Ledger benchmark", policy)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            rows = await conn.fetch(
                _CREATE_ACCOUNTS, timebank.id, accounts, FLOOR_MINUTES, CEILING_MINUTES
            )
    finally:
        await conn.close()
    return Accounts(dsn, timebank.id, sorted(row["id"] for row in rows))


async def seed_history(ledger: Accounts, transfers: int) -> None:
    """Give the ledger a history before anything is measured. On empty tables the planner picks
    sequential scans for the trigger and foreign-key queries, and a connection keeps those plans
    while the tables grow: without a history, whichever phase ran first would pay for that."""
    conn = await asyncpg.connect(ledger.dsn)
    try:
        left = transfers
        while left > 0:
            chunk = min(left, 5_000)
            async with conn.transaction():
                await ledger_repository.post_random(
                    conn, ledger.timebank_id, ledger.account_ids, MAX_TRANSFER_MINUTES, chunk
                )
            left -= chunk
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
class Timing:
    warmup: float
    seconds: float
    server_cpu: CpuClock | None


async def run_phase(name: str, ops: list[Op], timing: Timing) -> PhaseResult:
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
# The floor's client
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


class RawClient:
    """One asyncpg connection posting transfers with plain prepared statements (or, with
    ``function=True``, with one call of the service's SQL function)."""

    def __init__(
        self, conn: asyncpg.Connection, timebank_id: int, pairs: Pairs, *, function: bool
    ) -> None:
        self._conn = conn
        self._timebank_id = timebank_id
        self._pairs = pairs
        self._function = function
        self.retries = 0

    async def prepare(self) -> None:
        if self._function:
            self._call = await self._conn.prepare(ledger_repository.POST_TRANSFER)
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
        await self._call.fetchrow(
            self._timebank_id, debit, credit, minutes, "exchange", None, None, None, None
        )


async def phase_raw(
    name: str, ledger: Accounts, *, function: bool, clients: int, timing: Timing, seed: int
) -> PhaseResult:
    """``clients`` plain asyncpg connections posting transfers (see ``RawClient``)."""
    conns = await asyncio.gather(*(asyncpg.connect(ledger.dsn) for _ in range(clients)))
    try:
        raw = [
            RawClient(
                conn, ledger.timebank_id, Pairs(ledger.account_ids, seed + i), function=function
            )
            for i, conn in enumerate(conns)
        ]
        await asyncio.gather(*(client.prepare() for client in raw))
        result = await run_phase(name, [client.post_one for client in raw], timing)
        result.retries = sum(client.retries for client in raw)  # warm-up included
        return result
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))
