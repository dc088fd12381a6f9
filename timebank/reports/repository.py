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

_BUCKET = "greatest(CAST(date_trunc(:unit, {day}) AS date), CAST(:start AS date))"

# The aggregates hold what counted when their queue (schema/sql/0009) was last applied; the
# changes still queued, read in the same snapshot, make them what counts now: an approval
# queued adds its exchange, a reversal queued takes it away. (timebank verify reads the queue
# the same way: timebank/reports/audit.py.)
QUEUED = """
        SELECT e.*, CASE WHEN q.counting THEN 1 ELSE -1 END AS sign
          FROM report_queue q JOIN exchanges e ON e.id = q.exchange_id
         WHERE e.timebank_id = :tb"""

# What counted as of :as_of differs from what counts now by the exchanges approved since
# (counting now, not then) and those reversed since but approved by then (counting then, not
# now); both are found through the approved_at / reversed_at indexes.
_SINCE = f"""
    since AS (
        {QUEUED} AND e.service_date BETWEEN :start AND :end
        UNION ALL
        SELECT e.*, -1 AS sign FROM exchanges e
         WHERE e.timebank_id = :tb AND e.approved_at > :as_of AND e.reversed_at IS NULL
           AND e.service_date BETWEEN :start AND :end
        UNION ALL
        SELECT e.*, 1 FROM exchanges e
         WHERE e.timebank_id = :tb AND e.reversed_at > :as_of AND e.approved_at <= :as_of
           AND e.service_date BETWEEN :start AND :end
    )"""

# Whom the aggregates may have wrong for :as_of, for the queries below that take people or
# pairs out of the aggregates and count them again from their exchanges: the parties of
# exchanges approved or reversed since :as_of, or whose change is still queued.
_TOUCHED = f"""
        SELECT e.giver_id, e.receiver_id, e.service_date FROM exchanges e
         WHERE e.timebank_id = :tb AND e.approved_at > :as_of
        UNION ALL
        SELECT e.giver_id, e.receiver_id, e.service_date FROM exchanges e
         WHERE e.timebank_id = :tb AND e.reversed_at > :as_of
        UNION ALL
        SELECT queued.giver_id, queued.receiver_id, queued.service_date
          FROM ({QUEUED}) queued"""

# Minutes and exchanges by bucket, by category, by flow and in all, in one pass over the days.
_VOLUME = f"""
    WITH {_SINCE},
    days AS (
        SELECT day, category_id, giver_kind, receiver_kind, minutes, exchanges
          FROM report_days
         WHERE timebank_id = :tb AND day BETWEEN :start AND :end
        UNION ALL
        SELECT x.service_date, x.category_id, g.kind, r.kind, x.sign * x.minutes, x.sign
          FROM since x JOIN participants g ON g.id = x.giver_id
          JOIN participants r ON r.id = x.receiver_id
    )
    SELECT GROUPING({_BUCKET.format(day="day")}, category_id, giver_kind, receiver_kind)
               AS grouping,
           {_BUCKET.format(day="day")} AS bucket, category_id, giver_kind, receiver_kind,
           sum(minutes) AS minutes, sum(exchanges) AS exchanges
      FROM days
     GROUP BY GROUPING SETS ((2), (category_id), (giver_kind, receiver_kind), ())
"""
_VOLUME_BUCKET = 0b0111
_VOLUME_CATEGORY = 0b1011
_VOLUME_FLOW = 0b1100
_VOLUME_ALL = 0b1111

# People as bitmaps of ordinals (2048 a chunk), per dimension: 'all', 'category:<id>',
# 'flow:<giver kind>><receiver kind>'. Whole months come from the month rows, other days from
# the day rows (:months_from..:months_to, :head_from..:head_to, :tail_from..:tail_to). The
# aggregates are as of now: the bits of people whose exchanges changed since :as_of are
# cleared and set again from their exchanges that counted as of then.
_PEOPLE_ROWS = f"""
    WITH zero AS (SELECT repeat('0', 2048)::bit(2048) AS bits),
    changed AS ({_TOUCHED}),
    touched AS (
        SELECT giver_id AS pid FROM changed WHERE service_date BETWEEN :start AND :end
        UNION
        SELECT receiver_id FROM changed WHERE service_date BETWEEN :start AND :end
    ),
    masks AS (
        SELECT p.ordinal / 2048 AS chunk, bit_or(set_bit(zero.bits, p.ordinal % 2048, 1)) AS mask
          FROM touched t JOIN participants p ON p.id = t.pid CROSS JOIN zero
         GROUP BY 1
    ),
    legs AS (
        SELECT e.service_date AS day, e.category_id, g.kind AS giver_kind,
               r.kind AS receiver_kind, g.ordinal, true AS gave
          FROM exchanges e JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE e.giver_id IN (SELECT pid FROM touched)
           AND e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.approved_at <= :as_of AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)
        UNION ALL
        SELECT e.service_date, e.category_id, g.kind, r.kind, r.ordinal, false
          FROM exchanges e JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE e.receiver_id IN (SELECT pid FROM touched)
           AND e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.approved_at <= :as_of AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)
    ),
    people_rows AS (
        SELECT {_BUCKET.format(day="m.month")} AS bucket, m.dimension, m.chunk,
               m.givers & ~coalesce(t.mask, zero.bits) AS givers,
               m.receivers & ~coalesce(t.mask, zero.bits) AS receivers
          FROM report_month_people m CROSS JOIN zero LEFT JOIN masks t ON t.chunk = m.chunk
         WHERE m.timebank_id = :tb AND m.month BETWEEN :months_from AND :months_to
           AND {{dimensions}}
        UNION ALL
        SELECT {_BUCKET.format(day="d.day")}, d.dimension, d.chunk,
               d.givers & ~coalesce(t.mask, zero.bits), d.receivers & ~coalesce(t.mask, zero.bits)
          FROM report_day_people d CROSS JOIN zero LEFT JOIN masks t ON t.chunk = d.chunk
         WHERE d.timebank_id = :tb
           AND (d.day BETWEEN :head_from AND :head_to OR d.day BETWEEN :tail_from AND :tail_to)
           AND {{dimensions}}
        UNION ALL
        SELECT {_BUCKET.format(day="l.day")}, d.dimension, l.ordinal / 2048,
               CASE WHEN l.gave THEN set_bit(zero.bits, l.ordinal % 2048, 1) ELSE zero.bits END,
               CASE WHEN l.gave THEN zero.bits ELSE set_bit(zero.bits, l.ordinal % 2048, 1) END
          FROM legs l CROSS JOIN zero
          CROSS JOIN LATERAL (VALUES ('all'), ('category:' || l.category_id),
                                     ('flow:' || l.giver_kind || '>' || l.receiver_kind))
                AS d(dimension)
         WHERE {{dimensions}}
    )
"""

_PEOPLE = (
    _PEOPLE_ROWS.format(dimensions="dimension = 'all'")
    + """
    , unions AS (
        SELECT bucket, chunk, bit_or(givers) AS givers, bit_or(receivers) AS receivers
          FROM people_rows GROUP BY GROUPING SETS ((bucket, chunk), (chunk))
    )
    SELECT bucket, sum(bit_count(givers | receivers)) AS active,
           sum(bit_count(givers & receivers)) AS reciprocal
      FROM unions GROUP BY bucket
"""
)

_PEOPLE_BY_DIMENSION = (
    _PEOPLE_ROWS.format(dimensions="dimension <> 'all'")
    + """
    , unions AS (
        SELECT dimension, chunk, bit_or(givers | receivers) AS people
          FROM people_rows GROUP BY dimension, chunk
    )
    SELECT dimension, sum(bit_count(people)) AS people FROM unions GROUP BY dimension
"""
)

# Ties straight from the exchanges: for buckets that cut months (weeks, a period starting or
# ending mid-month).
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
    )
    SELECT bucket, count(*) AS ties, count(*) FILTER (WHERE forth AND back) AS two_way_ties
      FROM pairs GROUP BY bucket
"""

# Ties when every bucket is whole months, from the step counts (schema/sql/0006): for a bucket
# of months [first, last], the pairs of each kind ('any', 'forth', 'back') whose month falls in
# it and whose previous month is before it. Pairs whose exchanges changed since :as_of are
# then taken out as they are now (report_pair_months) and put back as they were then.
_TIES_BY_MONTHS = f"""
    WITH buckets AS (
        SELECT * FROM unnest(CAST(:bucket_keys AS date[]), CAST(:bucket_firsts AS date[]),
                             CAST(:bucket_lasts AS date[])) AS b(bucket, first, last)
    ),
    steps AS (
        SELECT b.bucket, s.kind, sum(s.pairs) AS pairs
          FROM buckets b JOIN report_tie_steps s
            ON s.timebank_id = :tb AND s.month BETWEEN b.first AND b.last
           AND s.previous < b.first
         GROUP BY b.bucket, s.kind
    ),
    changed AS ({_TOUCHED}),
    touched AS (
        SELECT DISTINCT least(giver_id, receiver_id) AS low, greatest(giver_id, receiver_id) AS high
          FROM changed WHERE service_date BETWEEN :start AND :end
    ),
    months AS (
        SELECT -1 AS sign, p.low_id AS low, p.high_id AS high, p.month, p.forth > 0 AS forth,
               p.back > 0 AS back
          FROM touched t JOIN report_pair_months p
            ON p.timebank_id = :tb AND p.low_id = t.low AND p.high_id = t.high
         WHERE p.month BETWEEN :start AND :end AND p.forth + p.back > 0
        UNION ALL
        SELECT 1, t.low, t.high, CAST(date_trunc('month', e.service_date) AS date),
               bool_or(e.giver_id = t.low), bool_or(e.giver_id = t.high)
          FROM touched t JOIN exchanges e
            ON (e.giver_id = t.low AND e.receiver_id = t.high)
            OR (e.giver_id = t.high AND e.receiver_id = t.low)
         WHERE e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.approved_at <= :as_of AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)
         GROUP BY 2, 3, 4
    ),
    corrections AS (
        SELECT b.bucket, m.sign, m.low, m.high, bool_or(m.forth) AS forth, bool_or(m.back) AS back
          FROM months m JOIN buckets b ON m.month BETWEEN b.first AND b.last
         GROUP BY b.bucket, m.sign, m.low, m.high
    ),
    counts AS (
        SELECT bucket, kind, pairs FROM steps
        UNION ALL
        SELECT c.bucket, k.kind, c.sign
          FROM corrections c
          CROSS JOIN LATERAL (VALUES ('any', true), ('forth', c.forth), ('back', c.back))
                AS k(kind, included)
         WHERE k.included
    )
    SELECT bucket, sum(pairs) FILTER (WHERE kind = 'any') AS ties,
           coalesce(sum(pairs) FILTER (WHERE kind = 'forth'), 0)
           + coalesce(sum(pairs) FILTER (WHERE kind = 'back'), 0)
           - coalesce(sum(pairs) FILTER (WHERE kind = 'any'), 0) AS two_way_ties
      FROM counts GROUP BY bucket
"""


# First days: from the aggregate, except for participants whose exchanges changed after
# as_of, whose first day is found again among the exchanges counted as of then.
_FIRSTS = f"""
    WITH changed AS ({_TOUCHED}),
    touched AS (
        SELECT giver_id AS pid FROM changed
        UNION
        SELECT receiver_id FROM changed
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

# Enrolled participants per joining day first (a few hundred rows), then per bucket.
_ENROLLED = """
    WITH joined AS (
        SELECT joined_on, count(*) AS people FROM participants
         WHERE timebank_id = :tb AND created_at <= :as_of
         GROUP BY joined_on
    )
    SELECT b.start AS bucket,
           CAST(coalesce(sum(j.people) FILTER (WHERE j.joined_on <= b.last), 0) AS bigint)
               AS participants,
           CAST(coalesce(sum(j.people) FILTER (WHERE j.joined_on >= b.start), 0) AS bigint)
               AS new
      FROM unnest(CAST(:starts AS date[]), CAST(:lasts AS date[])) AS b(start, last)
      LEFT JOIN joined j ON j.joined_on <= b.last
     GROUP BY b.start
"""

_CATEGORY_NAMES = "SELECT id, slug, name FROM categories WHERE timebank_id = :tb"

_COUNTED_FOR_EVERYONE = """
        SELECT e.giver_id, e.receiver_id, e.minutes FROM exchanges e
         WHERE e.timebank_id = :tb AND e.service_date BETWEEN :start AND :end
           AND e.approved_at IS NOT NULL AND e.approved_at <= :as_of
           AND (e.reversed_at IS NULL OR e.reversed_at > :as_of)"""

# One participant: lookups by party, never a scan of the timebank's period. Those not
# reversed come from the party's counted-exchange index (its conditions spelled out so that
# the planner takes it even before the table has statistics); those reversed after :as_of,
# few, from the reversal index (OFFSET 0 keeps the period's condition outside, so that the
# period's index does not look cheaper). No exchange has the same giver and receiver, so
# nothing is counted twice.
_COUNTED_NOT_REVERSED = """
        SELECT e.giver_id, e.receiver_id, e.minutes FROM exchanges e
         WHERE e.{party} = :pid AND e.service_date BETWEEN :start AND :end
           AND e.approved_at IS NOT NULL AND e.reversed_at IS NULL
           AND e.timebank_id = :tb AND e.approved_at <= :as_of"""
_COUNTED_FOR_ONE = (
    _COUNTED_NOT_REVERSED.format(party="giver_id")
    + "\n        UNION ALL"
    + _COUNTED_NOT_REVERSED.format(party="receiver_id")
    + """
        UNION ALL
        SELECT r.giver_id, r.receiver_id, r.minutes FROM (
            SELECT e.giver_id, e.receiver_id, e.minutes, e.service_date FROM exchanges e
             WHERE e.timebank_id = :tb AND e.reversed_at > :as_of AND e.approved_at <= :as_of
               AND (e.giver_id = :pid OR e.receiver_id = :pid)
            OFFSET 0) r
         WHERE r.service_date BETWEEN :start AND :end"""
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
    # Plan each statement for its own moment and period (set for this transaction only): a
    # cached generic plan cannot tell a handful of exchanges changed since as_of from a whole
    # year of them.
    clock = await conn.execute(
        text("SELECT clock_timestamp(), set_config('plan_cache_mode', 'force_custom_plan', true)")
    )
    return clock.scalar_one()


async def timebank_name(conn: AsyncConnection, timebank_id: int) -> str:
    """The timebank's name, for the titles of its report."""
    name = await conn.execute(
        text("SELECT name FROM timebanks WHERE id = :id"), {"id": timebank_id}
    )
    return name.scalar_one()


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
    people_params = {**params, **_people_spans(start, end, months=unit != "week")}
    people = {
        row["dimension"]: int(row["people"])
        for row in await _rows(conn, _PEOPLE_BY_DIMENSION, people_params)
    }
    volume = await _rows(conn, _VOLUME, params)
    categories = [
        {
            "category": names[row["category_id"]]["slug"],
            "name": names[row["category_id"]]["name"],
            "minutes": row["minutes"],
            "exchanges": row["exchanges"],
            "people": people.get(f"category:{row['category_id']}", 0),
        }
        for row in volume
        if row["grouping"] == _VOLUME_CATEGORY and row["exchanges"] != 0
    ]
    flows = [
        {
            "giver_kind": row["giver_kind"],
            "receiver_kind": row["receiver_kind"],
            "minutes": row["minutes"],
            "exchanges": row["exchanges"],
            "people": people.get(f"flow:{row['giver_kind']}>{row['receiver_kind']}", 0),
        }
        for row in volume
        if row["grouping"] == _VOLUME_FLOW and row["exchanges"] != 0
    ]
    return {
        "volume": [row for row in volume if row["grouping"] in (_VOLUME_BUCKET, _VOLUME_ALL)],
        "people": await _rows(conn, _PEOPLE, people_params),
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


def _month_after(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _people_spans(start: date, end: date, *, months: bool) -> dict[str, date]:
    """Which rows the people bitmaps come from: the whole months within the period from the
    month rows (unless buckets cut months), the days before and after them from the day rows.
    An empty range has its first day after its last."""
    first_month = start if start.day == 1 else _month_after(start)
    ends_a_month = _month_after(end) - timedelta(days=1) == end
    after_last_month = _month_after(end) if ends_a_month else end.replace(day=1)
    if not months or first_month >= after_last_month:
        return {
            "months_from": end,
            "months_to": start,
            "head_from": start,
            "head_to": end,
            "tail_from": end,
            "tail_to": start,
        }
    return {
        "months_from": first_month,
        "months_to": after_last_month - timedelta(days=1),
        "head_from": start,
        "head_to": first_month - timedelta(days=1),
        "tail_from": after_last_month,
        "tail_to": end,
    }


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
    keys: list[date | None] = [None, *bucket_starts]
    firsts = [bucket_starts[0], *bucket_starts]
    lasts = [bucket_lasts[-1], *bucket_lasts]
    return await _rows(
        conn,
        _TIES_BY_MONTHS,
        {**params, "bucket_keys": keys, "bucket_firsts": firsts, "bucket_lasts": lasts},
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


_FIRST_JOINED = """
    SELECT min(joined_on) FROM participants WHERE timebank_id = :tb AND created_at <= :as_of
"""


async def first_joined(conn: AsyncConnection, timebank_id: int, as_of: datetime) -> date | None:
    """The earliest joining day among the participants enrolled by ``as_of``."""
    found = await conn.execute(text(_FIRST_JOINED), {"tb": timebank_id, "as_of": as_of})
    return found.scalar_one()


async def enrolled_by_month(
    conn: AsyncConnection,
    *,
    timebank_id: int,
    as_of: datetime,
    firsts: list[date],
    lasts: list[date],
) -> dict[date, tuple[int, int]]:
    """Participants enrolled by ``as_of`` with joined_on up to each month's last day, and those
    who joined within it: {first day: (participants, new)}."""
    rows = await _rows(
        conn, _ENROLLED, {"tb": timebank_id, "as_of": as_of, "starts": firsts, "lasts": lasts}
    )
    return {row["bucket"]: (int(row["participants"]), int(row["new"])) for row in rows}


_LOCK_PUBLICATIONS = "SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"

_PUBLISHED_CELLS = """
    SELECT figure, period_kind, period_start, label, withheld
    FROM published_cells
    WHERE timebank_id = :tb
"""

_RECORD_CELLS = """
    INSERT INTO published_cells AS cell
        (timebank_id, figure, period_kind, period_start, label, withheld, first_published,
         first_withheld)
    SELECT :tb, figure, period_kind, period_start, label, withheld, :through,
           CASE WHEN withheld THEN CAST(:through AS date) END
    FROM unnest(
        CAST(:figures AS text[]), CAST(:kinds AS text[]), CAST(:starts AS date[]),
        CAST(:labels AS text[]), CAST(:withheld AS boolean[])
    ) AS given (figure, period_kind, period_start, label, withheld)
    ON CONFLICT (timebank_id, figure, period_kind, period_start, label) DO UPDATE
    SET withheld = true, first_withheld = excluded.first_withheld
    WHERE excluded.withheld AND NOT cell.withheld
"""

CellRow = tuple[str, str, date, str]


async def lock_publications(conn: AsyncConnection, timebank_id: int) -> None:
    """Protect one timebank's funder publications one at a time (until the transaction ends),
    so that each starts from everything the others recorded."""
    await conn.execute(text(_LOCK_PUBLICATIONS), {"name": f"funder publication {timebank_id}"})


async def published_cells(conn: AsyncConnection, timebank_id: int) -> dict[CellRow, bool]:
    """Every cell the timebank's funder publications have published: cell -> withheld."""
    rows = await _rows(conn, _PUBLISHED_CELLS, {"tb": timebank_id})
    return {
        (row["figure"], row["period_kind"], row["period_start"], row["label"]): row["withheld"]
        for row in rows
    }


async def record_published_cells(
    conn: AsyncConnection, timebank_id: int, through: date, cells: Mapping[CellRow, bool]
) -> None:
    """Record the cells of a publication (through ``through``): new cells as they are, and
    cells shown before that it withholds as withheld from now on (never the other way)."""
    rows = sorted(cells.items())
    await conn.execute(
        text(_RECORD_CELLS),
        {
            "tb": timebank_id,
            "through": through,
            "figures": [cell[0] for cell, _ in rows],
            "kinds": [cell[1] for cell, _ in rows],
            "starts": [cell[2] for cell, _ in rows],
            "labels": [cell[3] for cell, _ in rows],
            "withheld": [withheld for _, withheld in rows],
        },
    )
