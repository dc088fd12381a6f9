"""The contribution report's SQL: its figures (statements composed in contribution_sql.py and
ties_sql.py) and the enrolment counts, read inside one read-only snapshot. Every query reads
the counted exchanges of one timebank (see the package docstring for what counts)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.compose import CompiledStatement
from timebank.db.statements import execute, fetch, fetch_value
from timebank.reports.contribution_sql import (
    FIRSTS,
    GIFTS,
    PEOPLE,
    PEOPLE_BY_DIMENSION,
    SESSIONS,
    VOLUME,
)
from timebank.reports.ties_sql import TIES, TIES_BY_MONTHS

# GROUPING() of the volume's rows: by bucket, by category, by flow, in all.
_VOLUME_BUCKET = 0b0111
_VOLUME_CATEGORY = 0b1011
_VOLUME_FLOW = 0b1100
_VOLUME_ALL = 0b1111

# Enrolled participants per joining day first (a few hundred rows), then per bucket.
# $1 timebank, $2 as of, $3 the buckets' first days, $4 their last days.
_ENROLLED = """
    WITH joined AS (
        SELECT joined_on, count(*) AS people FROM participants
         WHERE timebank_id = $1 AND created_at <= $2
         GROUP BY joined_on
    )
    SELECT b.start AS bucket,
           CAST(coalesce(sum(j.people) FILTER (WHERE j.joined_on <= b.last), 0) AS bigint)
               AS participants,
           CAST(coalesce(sum(j.people) FILTER (WHERE j.joined_on >= b.start), 0) AS bigint)
               AS new
      FROM unnest(CAST($3 AS date[]), CAST($4 AS date[])) AS b(start, last)
      LEFT JOIN joined j ON j.joined_on <= b.last
     GROUP BY b.start
"""

# Participants enrolled by the end of each month, each month as of a moment of its own.
_ENROLLED_BY_MONTH = """
    SELECT m.first AS month,
           (SELECT count(*) FROM participants p
             WHERE p.timebank_id = $1 AND p.created_at <= m.as_of AND p.joined_on <= m.last)
               AS participants
      FROM unnest(CAST($2 AS date[]), CAST($3 AS date[]),
                  CAST($4 AS timestamptz[])) AS m(first, last, as_of)
"""

_CATEGORY_NAMES = "SELECT id, slug, name FROM categories WHERE timebank_id = $1"

_FIRST_JOINED = """
    SELECT min(joined_on) FROM participants WHERE timebank_id = $1 AND created_at <= $2
"""


async def rows(
    conn: AsyncConnection, statement: CompiledStatement, params: Mapping[str, Any]
) -> list[Mapping]:
    """The rows of one composed statement, its parameters taken from ``params`` by name."""
    return list(await fetch(conn, statement.sql, *statement.args(params)))


async def begin_snapshot(conn: AsyncConnection) -> datetime:
    """Start a read-only snapshot; return the database's clock."""
    await execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    # Plan each statement for its own moment and period (set for this transaction only): a
    # cached generic plan cannot tell a handful of exchanges changed since as_of from a whole
    # year of them.
    return await fetch_value(
        conn, "SELECT clock_timestamp(), set_config('plan_cache_mode', 'force_custom_plan', true)"
    )


async def timebank_name(conn: AsyncConnection, timebank_id: int) -> str:
    """The timebank's name, for the titles of its report."""
    return await fetch_value(conn, "SELECT name FROM timebanks WHERE id = $1", timebank_id)


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
    """The figures of the contribution report, each as rows keyed by bucket (None: the whole
    period), and its categories and flows."""
    params = {"tb": timebank_id, "start": start, "end": end, "as_of": as_of, "unit": unit}
    names = {row["id"]: row for row in await fetch(conn, _CATEGORY_NAMES, timebank_id)}
    people_params = {**params, **_people_spans(start, end, months=unit != "week")}
    people = {
        row["dimension"]: int(row["people"])
        for row in await rows(conn, PEOPLE_BY_DIMENSION, people_params)
    }
    volume = await rows(conn, VOLUME, params)
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
        "people": await rows(conn, PEOPLE, people_params),
        "ties": await _ties(conn, params, bucket_starts, bucket_lasts),
        "firsts": await rows(conn, FIRSTS, params),
        "gifts": await rows(conn, GIFTS, params),
        "sessions": await rows(conn, SESSIONS, params),
        "enrolled": list(
            await fetch(conn, _ENROLLED, timebank_id, as_of, bucket_starts, bucket_lasts)
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
        return await rows(conn, TIES, params)  # weeks, or a period cut mid-month
    keys: list[date | None] = [None, *bucket_starts]
    firsts = [bucket_starts[0], *bucket_starts]
    lasts = [bucket_lasts[-1], *bucket_lasts]
    return await rows(
        conn,
        TIES_BY_MONTHS,
        {**params, "bucket_keys": keys, "bucket_firsts": firsts, "bucket_lasts": lasts},
    )


async def first_joined(conn: AsyncConnection, timebank_id: int, as_of: datetime) -> date | None:
    """The earliest joining day among the participants enrolled by ``as_of``."""
    return await fetch_value(conn, _FIRST_JOINED, timebank_id, as_of)


async def enrolled_by_month(
    conn: AsyncConnection,
    timebank_id: int,
    *,
    firsts: list[date],
    lasts: list[date],
    as_ofs: list[datetime],
) -> dict[date, int]:
    """Participants with joined_on up to each month's last day, each month counting those
    enrolled by its own moment (``as_ofs``): {first day: participants}."""
    found = await fetch(conn, _ENROLLED_BY_MONTH, timebank_id, firsts, lasts, as_ofs)
    return {row["month"]: int(row["participants"]) for row in found}
