"""Transactions for every package: each runs whole or not at all, is retried invisibly on
deadlock or serialization failure, and turns a database refusal into a typed error (a business
conflict is never a 500); a database that is away becomes a 503 with Retry-After."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import asyncpg
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import greenlet_spawn

from timebank.db.engine import is_disconnect, is_unavailable
from timebank.errors import (
    Conflict,
    IdempotencyMismatch,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    ServiceUnavailable,
    TimebankError,
    ValidationFailed,
    database_unavailable,
)

T = TypeVar("T")
P = ParamSpec("P")

# Counted where it happens (exported with the rest by /metrics): the database layer imports
# nothing above it.
TRANSACTION_RETRIES = Counter(
    "timebank_transaction_retries",
    "Transactions (of any package) run again after a deadlock or serialization failure",
    ["reason"],
)
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
_RETRY_REASONS = {"40001": "serialization", "40P01": "deadlock"}

_ERRORS_BY_SQLSTATE: dict[str, type[TimebankError]] = {
    "TBNF0": NotFound,
    "TBST0": InvalidTransition,
    "TBVA0": ValidationFailed,
    "TBID0": IdempotencyMismatch,
}

_ERRORS_BY_CONSTRAINT: dict[str, tuple[type[TimebankError], str]] = {
    "accounts_within_floor": (
        LimitExceeded,
        "this would take an account below its floor (pending exchanges count)",
    ),
    "accounts_within_ceiling": (
        LimitExceeded,
        "this would take an account above its ceiling (pending exchanges count)",
    ),
    "accounts_closed_empty": (
        InvalidTransition,
        "this account is closed: its participant has left, and nothing moves on it again",
    ),
    "transfers_reverses_transfer_id_key": (InvalidTransition, "this transfer is already reversed"),
    "transfers_pending_transfer_id_key": (InvalidTransition, "this reservation is already posted"),
}

# Unique indexes whose refusal names the field another participant already holds.
_TAKEN_BY_CONSTRAINT = {
    "participants_timebank_email_key": "email",
    "participants_timebank_external_id_key": "external_id",
}


def _postgres_error(exc: BaseException) -> asyncpg.PostgresError | None:
    """The PostgreSQL error itself, under SQLAlchemy's wrapper if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.PostgresError):
            return seen
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None


def sqlstate_of(exc: BaseException) -> str | None:
    pg = _postgres_error(exc)
    if pg is not None:
        return pg.sqlstate
    seen: BaseException | None = exc
    while seen is not None:  # errors raised by the driver itself carry a sqlstate too
        state = getattr(seen, "sqlstate", None)
        if state:
            return state
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None


def translate(exc: BaseException) -> TimebankError | None:
    """A typed error for a refusal by the database, or None if it is not a business error."""
    pg = _postgres_error(exc)
    if pg is None:
        if (sqlstate_of(exc) or "").startswith("22"):  # refused by the driver before sending
            return ValidationFailed(f"a value in the request is out of range: {exc}")
        return None
    state = pg.sqlstate
    message = getattr(pg, "message", None) or str(pg)
    if state in _ERRORS_BY_SQLSTATE:
        return _ERRORS_BY_SQLSTATE[state](message)
    constraint = getattr(pg, "constraint_name", None)
    if constraint in _ERRORS_BY_CONSTRAINT:
        error_type, detail = _ERRORS_BY_CONSTRAINT[constraint]
        return error_type(detail)
    if constraint in _TAKEN_BY_CONSTRAINT:
        field = _TAKEN_BY_CONSTRAINT[constraint]
        return Conflict(f"another participant of this timebank has this {field}", field=field)
    if state == "23503":  # foreign key: an account or row of another timebank, or none at all
        return NotFound("an account named in the request does not exist in this timebank")
    if state == "23505":
        return Conflict(message)
    if state.startswith("22") or state in {"23514", "23502"}:  # data exceptions, checks
        return ValidationFailed(message)
    return None


async def _with_retries(attempt_once: Callable[[], Awaitable[T]], *, max_retries: int) -> T:
    """Retry on deadlock or serialization failure (with jittered backoff); database refusals
    come out as typed errors, a database that is away as ServiceUnavailable (503, Retry-After).

    A broken connection is not retried: it may have broken after the server received COMMIT,
    and a blind retry could then record a write twice. The caller is told to retry instead,
    which its idempotency key makes safe. (Pooled connections the server closed never get
    this far: the engine swaps them for fresh ones on checkout.)"""
    attempt = 0
    while True:
        try:
            return await attempt_once()
        except TimebankError:
            raise
        except Exception as exc:
            state = sqlstate_of(exc)
            if state in RETRYABLE_SQLSTATES:
                if attempt < max_retries:
                    attempt += 1
                    TRANSACTION_RETRIES.labels(reason=_RETRY_REASONS[state]).inc()
                    await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))  # noqa: S311
                    continue
                raise ServiceUnavailable("the ledger is busy; please retry", retry_after=1) from exc
            if is_unavailable(exc):
                raise database_unavailable() from exc
            typed = translate(exc)
            if typed is not None:
                raise typed from exc
            raise


async def run_in_transaction(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    max_retries: int = 8,
) -> T:
    """Run ``work`` in its own READ COMMITTED transaction, retried as a whole on deadlock or
    serialization failure; refusals come out as typed errors, a database that is away as
    ServiceUnavailable."""

    async def attempt_once() -> T:
        async with engine.begin() as conn:
            return await work(conn)

    return await _with_retries(attempt_once, max_retries=max_retries)


async def in_transaction(
    engine: AsyncEngine,
    step: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``step(conn, *args, **kwargs)`` as the whole of a ``run_in_transaction``: for a
    transaction that is one repository call."""

    async def work(conn: AsyncConnection) -> T:
        return await step(conn, *args, **kwargs)

    return await run_in_transaction(engine, work)


class HasEngine(Protocol):
    """A service that runs its transactions on one engine."""

    @property
    def engine(self) -> AsyncEngine: ...


S = TypeVar("S", bound=HasEngine)


def transaction(
    method: Callable[Concatenate[S, AsyncConnection, P], Awaitable[T]],
) -> Callable[Concatenate[S, P], Awaitable[T]]:
    """A service method whose body is one transaction: called without its connection, it runs
    through ``run_in_transaction`` on the service's engine (retried as a whole, refusals as
    typed errors), so the body is a typed method rather than a closure."""

    @functools.wraps(method)
    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        async def work(conn: AsyncConnection) -> T:
            return await method(self, conn, *args, **kwargs)

        return await run_in_transaction(self.engine, work)

    return run


@asynccontextmanager
async def raw_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection as plain asyncpg, outside any transaction: each statement on it is
    its own transaction, one round trip with no BEGIN or ROLLBACK around it. Taken from the
    engine's pool itself (its timeout, its checkout check), without the engine-level
    connection objects, whose work per request is not needed here."""
    pooled = await greenlet_spawn(engine.sync_engine.pool.connect)
    try:
        yield pooled.driver_connection
    except Exception as exc:
        if is_disconnect(exc):
            # Errors on the plain asyncpg connection bypass SQLAlchemy, which would
            # otherwise renew the whole pool: its other connections most likely broke
            # together with this one.
            await greenlet_spawn(pooled.invalidate)
            await engine.dispose(close=False)
        raise
    finally:
        await greenlet_spawn(pooled.close)


async def run_in_raw_transaction(
    engine: AsyncEngine,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    max_retries: int = 8,
) -> T:
    """``run_in_transaction`` on the plain asyncpg connection: the same transaction, retries
    and typed errors, without SQLAlchemy's work on every statement."""

    async def attempt_once() -> T:
        async with raw_connection(engine) as conn, conn.transaction():
            return await work(conn)

    return await _with_retries(attempt_once, max_retries=max_retries)


async def run_in_raw_statements(
    engine: AsyncEngine,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    max_retries: int = 8,
) -> T:
    """``work`` on the plain asyncpg connection outside any transaction, each statement its
    own: for work that writes in one statement. Retried as a whole, with the typed errors of
    ``run_in_transaction``."""

    async def attempt_once() -> T:
        async with raw_connection(engine) as conn:
            return await work(conn)

    return await _with_retries(attempt_once, max_retries=max_retries)
