"""Turning settings into a database URL and an async SQLAlchemy engine, and telling a database
that is away from one that refused a request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from timebank.db import embedded
from timebank.db.pool import FairPool
from timebank.settings import Settings

# PostgreSQL's own words for "not now": connection exceptions (class 08), the server shutting
# down, starting up or out of connection slots, a statement cancelled by a timeout.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "57014"})


def sqlalchemy_url(url: str) -> str:
    """The same server, spelled for SQLAlchemy's asyncpg dialect."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("TIMEBANK_DATABASE_URL must be a postgresql:// or postgresql+asyncpg:// URL")


def asyncpg_dsn(url: str) -> str:
    """The same server, spelled for asyncpg itself."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+asyncpg://") :]


def resolve_database_url(settings: Settings) -> tuple[str, bool]:
    """Return ``(url, embedded)``: the configured server, or a started embedded one."""
    if settings.database_url:
        return sqlalchemy_url(settings.database_url), False
    return embedded.start(settings.data_dir), True


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    """The engine of one process. Every wait on the database is bounded, so that a database
    that is away turns a request into a prompt 503 rather than a hang: opening a connection,
    waiting for one from the pool, and each statement."""
    engine = create_async_engine(
        sqlalchemy_url(url),
        poolclass=FairPool,  # waiting checkouts served in order (see timebank.db.pool)
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # No pre-ping round trip per checkout: a connection the server closed is noticed for
        # free on checkout (below), and one that breaks mid-request is retried or answered 503.
        pool_pre_ping=False,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "command_timeout": settings.db_command_timeout,
        },
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    if settings.db_connection_max_uses:
        event.listen(engine.sync_engine, "checkin", _retire_after(settings.db_connection_max_uses))
    return engine


def _retire_after(uses: int) -> Callable[[Any, ConnectionPoolEntry], None]:
    """A pooled connection is replaced after ``uses`` checkouts: long-kept connections were
    measured to cost PostgreSQL more CPU per exchange (docs/performance.md)."""

    def count(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        served = record.info.get("uses", 0) + 1
        if served >= uses:
            served = 0
            record.invalidate(soft=True)  # closed and replaced at its next checkout
        record.info["uses"] = served

    return count


def _refuse_closed_connection(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any
) -> None:
    """A pooled connection whose server went away (restart, failover) is already marked closed
    by asyncpg; hand out a fresh one instead, and drop every connection older than now, which
    shared its fate."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise sa_exc.InvalidatePoolError("the database closed this pooled connection")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (SQLAlchemy's ``orig``, ``__cause__``, ``__context__``), and the
    members of an exception group (a task group's failures), each once."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for inner in (current.__cause__, getattr(current, "orig", None), current.__context__):
            if isinstance(inner, BaseException):
                pending.append(inner)


def is_disconnect(exc: BaseException) -> bool:
    """The connection to the database broke or could not be made (as opposed to the database
    refusing what was asked)."""
    for seen in _chain(exc):
        if isinstance(
            seen,
            asyncpg.PostgresConnectionError
            | asyncpg.InterfaceError
            # The protocol lost its footing (a server going away mid-statement, say): the
            # connection cannot be used again.
            | asyncpg.InternalClientError
            | asyncpg.CannotConnectNowError
            | asyncpg.AdminShutdownError
            | ConnectionError
            | OSError,
        ):
            return True
        if getattr(seen, "connection_invalidated", False):
            return True
    return False


def is_unavailable(exc: BaseException) -> bool:
    """The database is away or too busy to answer in time: worth a 503 and a retry later,
    never a 500."""
    if is_disconnect(exc):
        return True
    for seen in _chain(exc):
        if isinstance(seen, asyncio.TimeoutError | TimeoutError | sa_exc.TimeoutError):
            return True  # connect, pool checkout or statement timeout
        if isinstance(seen, sa_exc.InvalidatePoolError | sa_exc.DisconnectionError):
            return True
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and (state.startswith("08") or state in UNAVAILABLE_SQLSTATES):
            return True
    return False
