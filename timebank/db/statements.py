"""One statement on either connection a service holds, its parameters written ``$1``, ``$2``…
in the SQL (asyncpg's own style, sent as written): a SQLAlchemy ``AsyncConnection`` inside a
caller's transaction, or the plain asyncpg connection under it on the hot paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

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


async def execute(conn: Connection, sql: str, *args: Any) -> None:
    """Run ``sql``, which returns no rows, for what it does."""
    if isinstance(conn, AsyncConnection):
        await conn.exec_driver_sql(sql, args)
    else:
        await conn.execute(sql, *args)
