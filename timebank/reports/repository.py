"""All report SQL. Every query reads the counted exchanges of one timebank (see the package
docstring for what counts) and is run inside one read-only snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime, timedelta
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

# Days of the period whose counted exchanges changed after as_of: for those, figures come
# from the exchanges themselves as of then; for every other day, from the aggregates.
_CHANGED = """
    changed AS (
        SELECT DISTINCT e.service_date AS day FROM exchanges e
         WHERE e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.approved_at > :as_of
        UNION
        SELECT DISTINCT e.service_date FROM exchanges e
         WHERE e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.reversed_at > :as_of
    ),
    recounted AS (
        SELECT * FROM counted WHERE service_date IN (SELECT day FROM changed)
    )"""

_BUCKET = "greatest(CAST(date_trunc(:unit, {day}) AS date), CAST(:start AS date))"

_VOLUME = f"""
    WITH {_COUNTED}, {_CHANGED},
    days AS (
        SELECT day, category_id, giver_kind, receiver_kind, minutes, exchanges
          FROM report_days
         WHERE timebank_id = :tb AND day BETWEEN :start AND :end
           AND day NOT IN (SELECT day FROM changed)
        UNION ALL
        SELECT x.service_date, x.category_id, g.kind, r.kind, x.minutes, 1
          FROM recounted x JOIN participants g ON g.id = x.giver_id
          JOIN participants r ON r.id = x.receiver_id
    )
"""

_VOLUME_BY_BUCKET = (
    _VOLUME
    + f"""
    SELECT {_BUCKET.format(day="day")} AS bucket, sum(minutes) AS minutes,
           sum(exchanges) AS exchanges
      FROM days GROUP BY GROUPING SETS ((1), ())
     HAVING sum(exchanges) <> 0 OR GROUPING({_BUCKET.format(day="day")}) = 1
"""
)

_VOLUME_BY_CATEGORY = (
    _VOLUME
    + """
    SELECT category_id, sum(minutes) AS minutes, sum(exchanges) AS exchanges
      FROM days GROUP BY category_id HAVING sum(exchanges) <> 0
"""
)

_VOLUME_BY_FLOW = (
    _VOLUME
    + """
    SELECT giver_kind, receiver_kind, sum(minutes) AS minutes, sum(exchanges) AS exchanges
      FROM days GROUP BY giver_kind, receiver_kind HAVING sum(exchanges) <> 0
"""
)

# People by day as bitmaps of ordinals (2048 a chunk), per dimension: 'all', 'category:<id>',
# 'flow:<giver kind>><receiver kind>'.
_PEOPLE_DAYS = f"""
    WITH {_COUNTED}, {_CHANGED},
    zero AS (SELECT repeat('0', 2048)::bit(2048) AS bits),
    legs AS (
        SELECT x.service_date AS day, x.category_id, g.kind AS giver_kind, r.kind AS receiver_kind,
               g.ordinal AS ordinal, true AS gave
          FROM recounted x JOIN participants g ON g.id = x.giver_id
          JOIN participants r ON r.id = x.receiver_id
        UNION ALL
        SELECT x.service_date, x.category_id, g.kind, r.kind, r.ordinal, false
          FROM recounted x JOIN participants g ON g.id = x.giver_id
          JOIN participants r ON r.id = x.receiver_id
    ),
    recounted_bits AS (
        SELECT l.day, d.dimension, l.ordinal / 2048 AS chunk,
               CASE WHEN l.gave THEN set_bit(zero.bits, l.ordinal % 2048, 1) ELSE zero.bits END
                   AS givers,
               CASE WHEN l.gave THEN zero.bits ELSE set_bit(zero.bits, l.ordinal % 2048, 1) END
                   AS receivers
          FROM legs l CROSS JOIN zero
          CROSS JOIN LATERAL (VALUES ('all'), ('category:' || l.category_id),
                                     ('flow:' || l.giver_kind || '>' || l.receiver_kind))
                AS d(dimension)
    ),
    people_days AS (
        SELECT day, dimension, chunk, givers, receivers FROM report_day_people
         WHERE timebank_id = :tb AND day BETWEEN :start AND :end
           AND day NOT IN (SELECT day FROM changed) AND {{dimensions}}
        UNION ALL
        SELECT day, dimension, chunk, givers, receivers FROM recounted_bits WHERE {{dimensions}}
    )
"""

_PEOPLE = (
    _PEOPLE_DAYS.format(dimensions="dimension = 'all'")
    + f"""
    , by_bucket AS (
        SELECT {_BUCKET.format(day="day")} AS bucket, chunk, givers, receivers FROM people_days
    ),
    unions AS (
        SELECT bucket, chunk, bit_or(givers) AS givers, bit_or(receivers) AS receivers
          FROM by_bucket GROUP BY GROUPING SETS ((bucket, chunk), (chunk))
    )
    SELECT bucket, sum(bit_count(givers | receivers)) AS active,
           sum(bit_count(givers & receivers)) AS reciprocal
      FROM unions GROUP BY bucket
"""
)

_PEOPLE_BY_DIMENSION = (
    _PEOPLE_DAYS.format(dimensions="dimension <> 'all'")
    + """
    , unions AS (
        SELECT dimension, chunk, bit_or(givers | receivers) AS people
          FROM people_days GROUP BY dimension, chunk
    )
    SELECT dimension, sum(bit_count(people)) AS people FROM unions GROUP BY dimension
"""
)

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

# Ties when every bucket is whole months: each pair's months per direction (report_pairs),
# masked by each bucket's months; pairs whose exchanges changed after as_of are recounted.
_TIES_BY_MONTHS = f"""
    WITH {_COUNTED},
    segments AS (
        SELECT * FROM unnest(CAST(:seg_buckets AS date[]), CAST(:seg_years AS int[]),
                             CAST(:seg_masks AS int[])) AS s(bucket, year, mask)
    ),
    touched AS (
        SELECT DISTINCT least(giver_id, receiver_id) AS a, greatest(giver_id, receiver_id) AS b
          FROM exchanges
         WHERE timebank_id = :tb AND service_date BETWEEN :start AND :end
           AND (approved_at > :as_of OR reversed_at > :as_of)
    ),
    pair_years AS (
        SELECT p.year, p.low_id AS a, p.high_id AS b, p.forth, p.back FROM report_pairs p
         WHERE p.timebank_id = :tb
           AND p.year BETWEEN extract(year FROM CAST(:start AS date))
                          AND extract(year FROM CAST(:end AS date))
           AND NOT EXISTS (SELECT 1 FROM touched t WHERE t.a = p.low_id AND t.b = p.high_id)
        UNION ALL
        SELECT CAST(extract(year FROM x.service_date) AS int), t.a, t.b,
               bit_or(CASE WHEN x.giver_id = t.a
                           THEN 1 << (CAST(extract(month FROM x.service_date) AS int) - 1)
                           ELSE 0 END),
               bit_or(CASE WHEN x.giver_id = t.b
                           THEN 1 << (CAST(extract(month FROM x.service_date) AS int) - 1)
                           ELSE 0 END)
          FROM counted x JOIN touched t
            ON t.a = least(x.giver_id, x.receiver_id) AND t.b = greatest(x.giver_id, x.receiver_id)
         GROUP BY 1, 2, 3
    ),
    hits AS (
        SELECT s.bucket, p.a, p.b, bool_or((p.forth & s.mask) <> 0) AS forth,
               bool_or((p.back & s.mask) <> 0) AS back
          FROM pair_years p JOIN segments s
            ON s.year = p.year AND ((p.forth | p.back) & s.mask) <> 0
         GROUP BY s.bucket, p.a, p.b
    ),
    two_way_people AS (
        SELECT bucket, count(DISTINCT pid) AS people
          FROM hits CROSS JOIN LATERAL (VALUES (a), (b)) AS side(pid)
         WHERE forth AND back GROUP BY bucket
    )
    SELECT h.bucket, count(*) AS ties, count(*) FILTER (WHERE forth AND back) AS two_way_ties,
           coalesce(max(w.people), 0) AS two_way_people
      FROM hits h LEFT JOIN two_way_people w ON w.bucket IS NOT DISTINCT FROM h.bucket
     GROUP BY h.bucket
"""


# First days: from the aggregate, except for participants whose exchanges changed after
# as_of, whose first day is found again among the exchanges counted as of then.
_FIRSTS = f"""
    WITH touched AS (
        SELECT giver_id AS pid FROM exchanges
         WHERE timebank_id = :tb AND (approved_at > :as_of OR reversed_at > :as_of)
        UNION
        SELECT receiver_id FROM exchanges
         WHERE timebank_id = :tb AND (approved_at > :as_of OR reversed_at > :as_of)
    ),
    recomputed AS (
        SELECT t.pid, min(e.service_date) AS first_day
          FROM touched t JOIN exchanges e ON (e.giver_id = t.pid OR e.receiver_id = t.pid)
         WHERE e.approved_at IS NOT NULL AND e.approved_at <= :as_of
           AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)
         GROUP BY t.pid
    ),
    firsts AS (
        SELECT participant_id AS pid, first_day FROM report_firsts
         WHERE timebank_id = :tb AND first_day BETWEEN :start AND :end
           AND participant_id NOT IN (SELECT pid FROM touched)
        UNION ALL
        SELECT pid, first_day FROM recomputed WHERE first_day BETWEEN :start AND :end
    ),
    in_period AS (
        SELECT {_BUCKET.format(day="f.first_day")} AS bucket,
               greatest(f.first_day - p.joined_on, 0) AS days
          FROM firsts f JOIN participants p ON p.id = f.pid
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

_CATEGORY_NAMES = "SELECT id, slug, name FROM categories WHERE timebank_id = :tb"

_COUNTED_FOR_EVERYONE = """
        SELECT e.giver_id, e.receiver_id, e.minutes FROM exchanges e
         WHERE e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.approved_at IS NOT NULL AND e.approved_at <= :as_of
           AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)"""

# One participant: two lookups by party (indexed), never a scan of the timebank's period.
# (No exchange has the same giver and receiver, so nothing is counted twice.)
_COUNTED_FOR_ONE = (
    _COUNTED_FOR_EVERYONE
    + " AND e.giver_id = :pid\n        UNION ALL"
    + _COUNTED_FOR_EVERYONE
    + " AND e.receiver_id = :pid"
)

_RECIPROCITY = """
    WITH counted AS ({counted}),
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
          FROM legs {only_pid} GROUP BY pid
    )
    SELECT p.id AS participant_id, p.display_name, p.kind,
           coalesce(f.given_minutes, 0) AS given_minutes,
           coalesce(f.received_minutes, 0) AS received_minutes,
           coalesce(f.exchanges_given, 0) AS exchanges_given,
           coalesce(f.exchanges_received, 0) AS exchanges_received,
           coalesce(f.partners, 0) AS partners
      FROM participants p LEFT JOIN figures f ON f.pid = p.id
     WHERE p.timebank_id = :tb AND p.created_at <= :as_of {only_participant}
     ORDER BY p.id
"""
_RECIPROCITY_EVERYONE = _RECIPROCITY.format(
    counted=_COUNTED_FOR_EVERYONE, only_pid="", only_participant=""
)
_RECIPROCITY_ONE = _RECIPROCITY.format(
    counted=_COUNTED_FOR_ONE, only_pid="WHERE pid = :pid", only_participant="AND p.id = :pid"
)


def _reciprocity_sql(participant_id: int | None) -> str:
    return _RECIPROCITY_EVERYONE if participant_id is None else _RECIPROCITY_ONE


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
    names = {row["id"]: row for row in await _rows(conn, _CATEGORY_NAMES, {"tb": timebank_id})}
    people = {
        row["dimension"]: int(row["people"])
        for row in await _rows(conn, _PEOPLE_BY_DIMENSION, params)
    }
    categories = [
        {
            "category": names[row["category_id"]]["slug"],
            "name": names[row["category_id"]]["name"],
            "minutes": row["minutes"],
            "exchanges": row["exchanges"],
            "people": people.get(f"category:{row['category_id']}", 0),
        }
        for row in await _rows(conn, _VOLUME_BY_CATEGORY, params)
    ]
    flows = [
        {
            **row,
            "people": people.get(f"flow:{row['giver_kind']}>{row['receiver_kind']}", 0),
        }
        for row in await _rows(conn, _VOLUME_BY_FLOW, params)
    ]
    return {
        "volume": await _rows(conn, _VOLUME_BY_BUCKET, params),
        "people": await _rows(conn, _PEOPLE, params),
        "ties": await _ties(conn, params, bucket_starts, bucket_lasts),
        "firsts": await _rows(conn, _FIRSTS, params),
        "enrolled": await _rows(
            conn,
            _ENROLLED,
            {"tb": timebank_id, "as_of": as_of, "starts": bucket_starts, "lasts": bucket_lasts},
        ),
        "categories": sorted(categories, key=lambda c: (-c["minutes"], c["category"])),
        "flows": sorted(flows, key=lambda f: (-f["minutes"], f["giver_kind"], f["receiver_kind"])),
    }


def _month_segments(first: date, last: date) -> list[tuple[int, int]]:
    """(year, bitmask of months) covering the whole months from ``first`` to ``last``."""
    segments = []
    for year in range(first.year, last.year + 1):
        low = first.month if year == first.year else 1
        high = last.month if year == last.year else 12
        segments.append((year, sum(1 << (month - 1) for month in range(low, high + 1))))
    return segments


def _whole_months(first: date, last: date) -> bool:
    return first.day == 1 and (last + timedelta(days=1)).day == 1


async def _ties(
    conn: AsyncConnection,
    params: dict[str, Any],
    bucket_starts: list[date],
    bucket_lasts: list[date],
) -> list[Mapping]:
    spans = list(zip(bucket_starts, bucket_lasts, strict=True))
    if not spans or not all(_whole_months(first, last) for first, last in spans):
        return await _rows(conn, _TIES, params)  # weeks, or a period cut mid-month
    buckets: list[date | None] = []
    years: list[int] = []
    masks: list[int] = []
    whole = [(None, spans[0][0], spans[-1][1]), *((first, first, last) for first, last in spans)]
    for bucket, first, last in whole:
        for year, mask in _month_segments(first, last):
            buckets.append(bucket)
            years.append(year)
            masks.append(mask)
    return await _rows(
        conn,
        _TIES_BY_MONTHS,
        {**params, "seg_buckets": buckets, "seg_years": years, "seg_masks": masks},
    )


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
    return await _rows(conn, _reciprocity_sql(participant_id), params)


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
    result = await conn.stream(text(_reciprocity_sql(participant_id)), params)
    async for rows in result.mappings().partitions(batch):
        for row in rows:
            yield dict(row)
