"""All report SQL. Every query reads the counted exchanges of one timebank (see the package
docstring for what counts) and is run inside one read-only snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# :tb, :start, :end, :as_of, :unit (week | month | quarter)
_COUNTED = """
    counted AS (
        SELECT e.service_date, e.giver_id, e.receiver_id, e.minutes, e.category_id,
               greatest(CAST(date_trunc(:unit, e.service_date) AS date), CAST(:start AS date))
                   AS bucket
          FROM exchanges e
         WHERE e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.approved_at IS NOT NULL AND e.approved_at <= :as_of
           AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)
    )"""

_VOLUME = f"""
    WITH {_COUNTED}
    SELECT bucket, sum(minutes) AS minutes, count(*) AS exchanges
      FROM counted GROUP BY GROUPING SETS ((bucket), ())
"""

_PEOPLE = f"""
    WITH {_COUNTED},
    legs AS (
        SELECT bucket, giver_id AS pid, true AS gave, false AS received FROM counted
        UNION ALL
        SELECT bucket, receiver_id, false, true FROM counted
    ),
    people AS (
        SELECT bucket, pid, bool_or(gave) AS gave, bool_or(received) AS received
          FROM legs GROUP BY GROUPING SETS ((bucket, pid), (pid))
    )
    SELECT bucket, count(*) AS active, count(*) FILTER (WHERE gave AND received) AS reciprocal
      FROM people GROUP BY bucket
"""

_TIES = f"""
    WITH {_COUNTED},
    directed AS (
        SELECT bucket, least(giver_id, receiver_id) AS a, greatest(giver_id, receiver_id) AS b,
               giver_id < receiver_id AS forward
          FROM counted
    ),
    pairs AS (
        SELECT bucket, a, b, bool_or(forward) AS forth, bool_or(NOT forward) AS back
          FROM directed GROUP BY GROUPING SETS ((bucket, a, b), (a, b))
    ),
    two_way_people AS (
        SELECT bucket, count(DISTINCT pid) AS people
          FROM pairs CROSS JOIN LATERAL (VALUES (a), (b)) AS side(pid)
         WHERE forth AND back GROUP BY bucket
    )
    SELECT p.bucket, count(*) AS ties, count(*) FILTER (WHERE forth AND back) AS two_way_ties,
           coalesce(max(w.people), 0) AS two_way_people
      FROM pairs p LEFT JOIN two_way_people w ON w.bucket IS NOT DISTINCT FROM p.bucket
     GROUP BY p.bucket
"""

_FIRSTS = """
    WITH legs AS (
        SELECT e.giver_id AS pid, e.service_date FROM exchanges e
         WHERE e.timebank_id = :tb AND e.approved_at IS NOT NULL AND e.approved_at <= :as_of
           AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)
        UNION ALL
        SELECT e.receiver_id, e.service_date FROM exchanges e
         WHERE e.timebank_id = :tb AND e.approved_at IS NOT NULL AND e.approved_at <= :as_of
           AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)
    ),
    firsts AS (
        SELECT l.pid, min(l.service_date) AS first_date FROM legs l GROUP BY l.pid
    ),
    in_period AS (
        SELECT greatest(CAST(date_trunc(:unit, f.first_date) AS date), CAST(:start AS date))
                   AS bucket,
               greatest(f.first_date - p.joined_on, 0) AS days
          FROM firsts f JOIN participants p ON p.id = f.pid
         WHERE f.first_date BETWEEN :start AND :end
    )
    SELECT bucket, count(*) AS first_exchanges,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS median_days
      FROM in_period GROUP BY GROUPING SETS ((bucket), ())
"""

_ENROLLED = """
    SELECT b.start AS bucket,
           count(p.id) FILTER (WHERE p.joined_on <= b.last) AS participants,
           count(p.id) FILTER (WHERE p.joined_on BETWEEN b.start AND b.last) AS new
      FROM unnest(CAST(:starts AS date[]), CAST(:lasts AS date[])) AS b(start, last)
      LEFT JOIN participants p
        ON p.timebank_id = :tb AND p.created_at <= :as_of AND p.joined_on <= b.last
     GROUP BY b.start
"""

_CATEGORIES = f"""
    WITH {_COUNTED},
    legs AS (
        SELECT category_id, giver_id AS pid FROM counted
        UNION ALL SELECT category_id, receiver_id FROM counted
    ),
    people AS (SELECT category_id, count(DISTINCT pid) AS people FROM legs GROUP BY 1)
    SELECT c.slug AS category, c.name, sum(x.minutes) AS minutes, count(*) AS exchanges,
           max(people.people) AS people
      FROM counted x JOIN categories c ON c.id = x.category_id
      JOIN people ON people.category_id = x.category_id
     GROUP BY c.slug, c.name ORDER BY sum(x.minutes) DESC, c.slug
"""

_FLOWS = f"""
    WITH {_COUNTED},
    kinds AS (
        SELECT x.*, g.kind AS giver_kind, r.kind AS receiver_kind
          FROM counted x JOIN participants g ON g.id = x.giver_id
          JOIN participants r ON r.id = x.receiver_id
    ),
    legs AS (
        SELECT giver_kind, receiver_kind, giver_id AS pid FROM kinds
        UNION ALL SELECT giver_kind, receiver_kind, receiver_id FROM kinds
    ),
    people AS (
        SELECT giver_kind, receiver_kind, count(DISTINCT pid) AS people FROM legs GROUP BY 1, 2
    )
    SELECT k.giver_kind, k.receiver_kind, sum(k.minutes) AS minutes, count(*) AS exchanges,
           max(p.people) AS people
      FROM kinds k JOIN people p USING (giver_kind, receiver_kind)
     GROUP BY k.giver_kind, k.receiver_kind ORDER BY sum(k.minutes) DESC, 1, 2
"""

_RECIPROCITY = """
    WITH counted AS (
        SELECT e.giver_id, e.receiver_id, e.minutes FROM exchanges e
         WHERE e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.approved_at IS NOT NULL AND e.approved_at <= :as_of
           AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)
           AND (CAST(:pid AS bigint) IS NULL OR e.giver_id = :pid OR e.receiver_id = :pid)
    ),
    legs AS (
        SELECT giver_id AS pid, receiver_id AS partner, minutes AS given, 0 AS received
          FROM counted
        UNION ALL
        SELECT receiver_id, giver_id, 0, minutes FROM counted
    ),
    figures AS (
        SELECT pid, sum(given) AS given_minutes, sum(received) AS received_minutes,
               count(*) FILTER (WHERE given > 0) AS exchanges_given,
               count(*) FILTER (WHERE received > 0) AS exchanges_received,
               count(DISTINCT partner) AS partners
          FROM legs WHERE CAST(:pid AS bigint) IS NULL OR pid = :pid GROUP BY pid
    )
    SELECT p.id AS participant_id, p.display_name, p.kind,
           coalesce(f.given_minutes, 0) AS given_minutes,
           coalesce(f.received_minutes, 0) AS received_minutes,
           coalesce(f.exchanges_given, 0) AS exchanges_given,
           coalesce(f.exchanges_received, 0) AS exchanges_received,
           coalesce(f.partners, 0) AS partners
      FROM participants p LEFT JOIN figures f ON f.pid = p.id
     WHERE p.timebank_id = :tb AND p.created_at <= :as_of
       AND (CAST(:pid AS bigint) IS NULL OR p.id = :pid)
     ORDER BY p.id
"""


async def _rows(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> list[Mapping]:
    return [dict(row) for row in (await conn.execute(text(sql), params)).mappings()]


async def begin_snapshot(conn: AsyncConnection) -> datetime:
    """Start a read-only snapshot; return the database's clock."""
    await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    return (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()


async def contribution_parts(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    start: date,
    end: date,
    as_of: datetime,
    unit: str,
    bucket_starts: list[date],
    bucket_lasts: list[date],
) -> dict[str, list[Mapping]]:
    params = {"tb": timebank_id, "start": start, "end": end, "as_of": as_of, "unit": unit}
    return {
        "volume": await _rows(conn, _VOLUME, params),
        "people": await _rows(conn, _PEOPLE, params),
        "ties": await _rows(conn, _TIES, params),
        "firsts": await _rows(conn, _FIRSTS, params),
        "enrolled": await _rows(
            conn,
            _ENROLLED,
            {"tb": timebank_id, "as_of": as_of, "starts": bucket_starts, "lasts": bucket_lasts},
        ),
        "categories": await _rows(conn, _CATEGORIES, params),
        "flows": await _rows(conn, _FLOWS, params),
    }


async def reciprocity_rows(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    start: date,
    end: date,
    as_of: datetime,
    participant_id: int | None,
) -> list[Mapping]:
    params = {"tb": timebank_id, "start": start, "end": end, "as_of": as_of, "pid": participant_id}
    return await _rows(conn, _RECIPROCITY, params)


async def stream_reciprocity_rows(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    start: date,
    end: date,
    as_of: datetime,
    participant_id: int | None,
    batch: int = 1000,
) -> AsyncIterator[dict]:
    """The same rows as ``reciprocity_rows``, fetched from a server-side cursor in batches."""
    params = {"tb": timebank_id, "start": start, "end": end, "as_of": as_of, "pid": participant_id}
    result = await conn.stream(text(_RECIPROCITY), params)
    async for rows in result.mappings().partitions(batch):
        for row in rows:
            yield dict(row)
