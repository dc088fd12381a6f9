"""The report aggregates (schema/sql/0004-0006) recounted from the exchanges, for ``timebank
verify``: each check names an aggregate table and returns its rows that differ from the
recount (those the table has and the recount has not, and the other way round).

The aggregates hold the changes applied from their queue (schema/sql/0009) so far, so the
recount counts each exchange as they should: as it counts now, unless a change of it is still
queued. Then it counts only if it stopped counting (a reversal) and its approval is not queued
too. Queue and aggregates are read in one snapshot.

People's bits and first days are the exception: applying a reversal recounts them from the
exchanges as they stand, approvals still queued included, so for the parties of a queued change
they may already be ahead of the queue. Those parties are left out of these checks until their
changes are applied (on a quiet ledger the queue is empty and nobody is left out)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.reports.repository import QUEUED

_COUNTED_E = """e.timebank_id = :tb AND CASE
    WHEN EXISTS (SELECT FROM report_queue q WHERE q.exchange_id = e.id)
    THEN e.reversed_at IS NOT NULL
         AND NOT EXISTS (SELECT FROM report_queue q WHERE q.exchange_id = e.id AND q.counting)
    ELSE e.approved_at IS NOT NULL AND e.reversed_at IS NULL END"""

CHECKS: dict[str, str] = {
    "report_days": f"""
        WITH recount AS (
            SELECT e.service_date AS day, e.category_id, g.kind AS giver_kind,
                   r.kind AS receiver_kind, sum(e.minutes) AS minutes, count(*) AS exchanges
              FROM exchanges e JOIN participants g ON g.id = e.giver_id
              JOIN participants r ON r.id = e.receiver_id
             WHERE {_COUNTED_E}
             GROUP BY 1, 2, 3, 4
        ),
        kept AS (
            SELECT day, category_id, giver_kind, receiver_kind, minutes, exchanges
              FROM report_days WHERE timebank_id = :tb AND exchanges <> 0
        )
        (SELECT * FROM recount EXCEPT SELECT * FROM kept)
        UNION ALL (SELECT * FROM kept EXCEPT SELECT * FROM recount)""",
    "report_pair_months": f"""
        WITH recount AS (
            SELECT least(giver_id, receiver_id) AS low, greatest(giver_id, receiver_id) AS high,
                   CAST(date_trunc('month', service_date) AS date) AS month,
                   count(*) FILTER (WHERE giver_id < receiver_id) AS forth,
                   count(*) FILTER (WHERE giver_id > receiver_id) AS back
              FROM exchanges e WHERE {_COUNTED_E} GROUP BY 1, 2, 3
        ),
        kept AS (
            SELECT low_id, high_id, month, CAST(forth AS bigint), CAST(back AS bigint)
              FROM report_pair_months WHERE timebank_id = :tb AND forth + back > 0
        )
        (SELECT * FROM recount EXCEPT SELECT * FROM kept)
        UNION ALL (SELECT * FROM kept EXCEPT SELECT * FROM recount)""",
    "report_tie_steps": """
        WITH months AS (
            SELECT low_id, high_id, month, forth, back FROM report_pair_months
             WHERE timebank_id = :tb AND forth + back > 0
        ),
        recount AS (
            SELECT kind, month, coalesce(previous, '-infinity') AS previous, count(*) AS pairs
              FROM (
                  SELECT 'any' AS kind, month,
                         lag(month) OVER (PARTITION BY low_id, high_id ORDER BY month) AS previous
                    FROM months
                  UNION ALL
                  SELECT 'forth', month,
                         lag(month) OVER (PARTITION BY low_id, high_id ORDER BY month)
                    FROM months WHERE forth > 0
                  UNION ALL
                  SELECT 'back', month,
                         lag(month) OVER (PARTITION BY low_id, high_id ORDER BY month)
                    FROM months WHERE back > 0
              ) steps
             GROUP BY 1, 2, 3
        ),
        kept AS (
            SELECT kind, month, previous, sum(pairs) AS pairs FROM report_tie_steps
             WHERE timebank_id = :tb GROUP BY 1, 2, 3 HAVING sum(pairs) <> 0
        )
        (SELECT * FROM recount EXCEPT SELECT * FROM kept)
        UNION ALL (SELECT * FROM kept EXCEPT SELECT * FROM recount)""",
}

# The parties of queued changes (see the module's docstring).
_QUEUED_PARTIES = f"""
        SELECT x.pid FROM ({QUEUED}) q
         CROSS JOIN LATERAL (VALUES (q.giver_id), (q.receiver_id)) AS x(pid)"""

_PEOPLE_CHECK = """
    WITH zero AS (SELECT repeat('0', 2048)::bit(2048) AS bits),
    queued AS (
        SELECT p.ordinal / 2048 AS chunk, bit_or(set_bit(zero.bits, p.ordinal % 2048, 1)) AS mask
          FROM ({queued}) x JOIN participants p ON p.id = x.pid CROSS JOIN zero
         GROUP BY 1
    ),
    legs AS (
        SELECT e.service_date AS day, e.category_id, g.kind || '>' || r.kind AS flow,
               g.ordinal, true AS gave
          FROM exchanges e JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE {counted}
        UNION ALL
        SELECT e.service_date, e.category_id, g.kind || '>' || r.kind, r.ordinal, false
          FROM exchanges e JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE {counted}
    ),
    counted AS (
        SELECT {span} AS span, d.dimension, l.ordinal / 2048 AS chunk,
               bit_or(CASE WHEN l.gave THEN set_bit(z.bits, l.ordinal % 2048, 1) ELSE z.bits END)
                   AS givers,
               bit_or(CASE WHEN l.gave THEN z.bits ELSE set_bit(z.bits, l.ordinal % 2048, 1) END)
                   AS receivers
          FROM legs l
          CROSS JOIN zero z
          CROSS JOIN LATERAL (VALUES ('all'), ('category:' || l.category_id),
                                     ('flow:' || l.flow)) AS d(dimension)
         GROUP BY 1, 2, 3
    ),
    stored AS (
        SELECT {column} AS span, dimension, chunk, givers, receivers FROM {table}
         WHERE timebank_id = :tb
    ),
    recount AS (
        SELECT c.span, c.dimension, c.chunk, c.givers & ~coalesce(q.mask, z.bits) AS givers,
               c.receivers & ~coalesce(q.mask, z.bits) AS receivers
          FROM counted c CROSS JOIN zero z LEFT JOIN queued q ON q.chunk = c.chunk
    ),
    kept AS (
        SELECT s.span, s.dimension, s.chunk, s.givers & ~coalesce(q.mask, z.bits) AS givers,
               s.receivers & ~coalesce(q.mask, z.bits) AS receivers
          FROM stored s CROSS JOIN zero z LEFT JOIN queued q ON q.chunk = s.chunk
    )
    (SELECT * FROM recount WHERE bit_count(givers) > 0 OR bit_count(receivers) > 0
     EXCEPT SELECT * FROM kept)
    UNION ALL (SELECT * FROM kept WHERE bit_count(givers) > 0 OR bit_count(receivers) > 0
               EXCEPT SELECT * FROM recount)
"""
CHECKS["report_day_people"] = _PEOPLE_CHECK.format(
    counted=_COUNTED_E,
    queued=_QUEUED_PARTIES,
    span="l.day",
    column="day",
    table="report_day_people",
)
CHECKS["report_month_people"] = _PEOPLE_CHECK.format(
    counted=_COUNTED_E,
    queued=_QUEUED_PARTIES,
    span="CAST(date_trunc('month', l.day) AS date)",
    column="month",
    table="report_month_people",
)
CHECKS["report_firsts"] = f"""
    WITH legs AS (
        SELECT giver_id AS pid, service_date FROM exchanges e WHERE {_COUNTED_E}
        UNION ALL
        SELECT receiver_id, service_date FROM exchanges e WHERE {_COUNTED_E}
    ),
    queued AS ({_QUEUED_PARTIES}),
    recount AS (
        SELECT pid, min(service_date) AS first_day FROM legs
         WHERE pid NOT IN (SELECT pid FROM queued) GROUP BY pid
    ),
    kept AS (
        SELECT participant_id, first_day FROM report_firsts
         WHERE timebank_id = :tb AND participant_id NOT IN (SELECT pid FROM queued)
    )
    (SELECT * FROM recount EXCEPT SELECT * FROM kept)
    UNION ALL (SELECT * FROM kept EXCEPT SELECT * FROM recount)"""


async def aggregate_differences(conn: AsyncConnection, timebank_id: int) -> dict[str, int]:
    """How many rows of each aggregate table differ from a recount, for one timebank."""
    found = {}
    for table, sql in CHECKS.items():
        found[table] = len((await conn.execute(text(sql), {"tb": timebank_id})).all())
    return found
