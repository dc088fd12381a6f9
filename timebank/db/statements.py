"""One statement on either connection a service holds: a SQLAlchemy ``AsyncConnection`` inside
a caller's transaction, or the plain asyncpg connection under it on the hot paths. Parameters
are written ``$1``, ``$2``… in the SQL (asyncpg's own style, sent as written), the service's one
style: statements composed with SQLAlchemy Core are compiled to it too (``compose.compiled``).
Rows come back as mappings by column name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeAlias, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

Connection: TypeAlias = AsyncConnection | asyncpg.Connection


async def fetch(conn: Connection, sql: str, *args: Any) -> Sequence[Mapping[str, Any]]:
    """Every row of ``sql`` with ``args`` as ``$1``, ``$2``…"""
    if isinstance(conn, AsyncConnection):
        result = await conn.exec_driver_sql(sql, args)
        return [dict(row) for row in result.mappings()]
    return await conn.fetch(sql, *args)


async def fetch_one(conn: Connection, sql: str, *args: Any) -> Mapping[str, Any] | None:
    """The one row of ``sql`` (None when there is none; more than one is a bug)."""
    rows = await fetch(conn, sql, *args)
    if len(rows) > 1:
        raise AssertionError("at most one row expected")
    return rows[0] if rows else None


async def fetch_value(conn: Connection, sql: str, *args: Any) -> Any:
    """The first column of the one row of ``sql`` (None when there is no row)."""
    row = await fetch_one(conn, sql, *args)
    return None if row is None else next(iter(row.values()))


async def execute(conn: Connection, sql: str, *args: Any) -> None:
    """Run ``sql`` for what it does (any rows it returns are dropped)."""
    if isinstance(conn, AsyncConnection):
        await conn.exec_driver_sql(sql, args)
    else:
        await conn.execute(sql, *args)


async def stream(
    conn: Connection, sql: str, *args: Any, batch: int = 1000
) -> AsyncIterator[Mapping[str, Any]]:
    """The rows of ``sql`` from a server-side cursor, ``batch`` at a time, inside the
    connection's transaction (which must have begun)."""
    if isinstance(conn, AsyncConnection):
        conn = cast(asyncpg.Connection, (await conn.get_raw_connection()).driver_connection)
    async for row in conn.cursor(sql, *args, prefetch=batch):
        yield row
