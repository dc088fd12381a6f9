"""Bringing the report aggregates up to date (``report_apply_queued``): approvals and reversals
queue their change in the statement that makes it; ``apply_queued`` moves the aggregates for a
whole batch at once, and every service process runs ``keep_applying`` in the background.

Nothing waits for it: reports read the queue's exchanges as corrections in the same snapshot
as the aggregates, so they are exact whether the queue is empty or not. The applier only keeps
that correction small."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.db.statements import execute
from timebank.db.transactions import raw_connection

# How long the background applier waits between batches when the queue has run dry. A batch
# costs nearly as much for a hundred changes as for a thousand (it rewrites each day's and
# month's rows once, however many changes they get): under the load test, applying every
# second cost PostgreSQL 0.28 ms per logged exchange, every five seconds 0.07 ms. Reports are
# exact either way; they only read a few seconds' worth of queue.
APPLY_INTERVAL_SECONDS = 5.0
# At most this many queued changes in one transaction.
BATCH = 5000

_log = logging.getLogger(__name__)


async def apply_queued(conn: asyncpg.Connection, *, batch: int = BATCH) -> int:
    """Apply what is queued, batch after batch (each its own transaction on a connection
    outside one), until the queue is empty or another applier is at work; return how many
    changes this call applied."""
    total = 0
    while True:
        applied = await conn.fetchval("SELECT report_apply_queued($1)", batch)
        if applied <= 0:
            return total
        total += applied
        if applied < batch:
            return total


async def catch_up(engine: AsyncEngine) -> int:
    """``apply_queued`` on a pooled connection of ``engine``."""
    async with raw_connection(engine) as conn:
        return await apply_queued(conn)


async def keep_applying(engine: AsyncEngine, *, interval: float = APPLY_INTERVAL_SECONDS) -> None:
    """Apply the queue about every ``interval`` seconds until cancelled. A database that is
    away is waited out: the queue keeps, and reports stay exact meanwhile."""
    failing = False
    while True:
        try:
            await catch_up(engine)
            if failing:
                _log.info("report aggregates are being brought up to date again")
            failing = False
        except Exception as exc:  # the database away, a statement timed out: try again later
            if not failing:
                _log.warning("report aggregates not brought up to date: %s", exc)
            failing = True
        await asyncio.sleep(interval)


# Every approval and reversal of a timebank's exchanges, in the order they happened (all the
# approvals first: an approval is always queued before its reversal).
_QUEUE_TIMEBANK = """
INSERT INTO report_queue (exchange_id, counting)
SELECT id, counting
  FROM (SELECT id, true AS counting, approved_at AS happened
          FROM exchanges WHERE timebank_id = $1 AND approved_at IS NOT NULL
        UNION ALL
        SELECT id, false, reversed_at
          FROM exchanges WHERE timebank_id = $1 AND reversed_at IS NOT NULL) AS changes
 ORDER BY NOT counting, happened, id
"""


async def queue_whole_timebank(conn: AsyncConnection, timebank_id: int) -> None:
    """Queue every exchange of a timebank that ever counted, as its approval and reversal would
    have: for a timebank whose exchanges were written without their triggers (a restore). Its
    aggregates are then built by the applier like anyone's; reports are exact meanwhile."""
    await execute(conn, _QUEUE_TIMEBANK, timebank_id)
