"""Bringing the report aggregates up to date (schema/sql/0009): approvals and reversals queue
their change in the statement that makes it; ``apply_queued`` moves the aggregates for a whole
batch at once, and every service process runs ``keep_applying`` in the background.

Nothing waits for it: reports read the queue's exchanges as corrections in the same snapshot
as the aggregates, so they are exact whether the queue is empty or not. The applier only keeps
that correction small."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.ledger.service import raw_connection

# How long the background applier waits between batches when the queue has run dry.
APPLY_INTERVAL_SECONDS = 1.0
# At most this many queued changes in one transaction.
BATCH = 5000

_log = logging.getLogger(__name__)


async def apply_queued(conn: AsyncConnection | asyncpg.Connection, *, batch: int = BATCH) -> int:
    """Apply what is queued, batch after batch, until the queue is empty or another applier
    is at work; return how many changes this call applied. On an asyncpg connection outside
    a transaction each batch commits on its own; on SQLAlchemy's, in the caller's transaction."""
    total = 0
    while True:
        if isinstance(conn, AsyncConnection):
            applied = (
                await conn.execute(text("SELECT report_apply_queued(:batch)"), {"batch": batch})
            ).scalar_one()
        else:
            applied = await conn.fetchval("SELECT report_apply_queued($1)", batch)
        if applied <= 0:
            return total
        total += applied
        if applied < batch:
            return total


async def keep_applying(engine: AsyncEngine, *, interval: float = APPLY_INTERVAL_SECONDS) -> None:
    """Apply the queue about every ``interval`` seconds until cancelled. A database that is
    away is waited out: the queue keeps, and reports stay exact meanwhile."""
    failing = False
    while True:
        try:
            async with raw_connection(engine) as conn:
                await apply_queued(conn)
            if failing:
                _log.info("report aggregates are being brought up to date again")
            failing = False
        except Exception as exc:  # the database away, a statement timed out: try again later
            if not failing:
                _log.warning("report aggregates not brought up to date: %s", exc)
            failing = True
        await asyncio.sleep(interval)
