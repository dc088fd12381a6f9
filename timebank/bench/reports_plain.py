"""The plainest correct SQL for the reports, straight from the definitions
(``timebank/reports/__init__.py``), and the checks of the service's figures against it."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import asyncpg

from timebank.reports.schemas import ContributionReport, ReciprocityReport

# $1 timebank, $2 first day, $3 last day, $4 as_of. Every month of the period (clipped to
# it), and the whole period as one more row.
PLAIN_CONTRIBUTION_SERIES = """
    WITH periods AS (
        SELECT greatest(CAST(m AS date), $2::date) AS first_day,
               least(CAST(m + interval '1 month' AS date) - 1, $3::date) AS last_day,
               false AS whole
          FROM generate_series(date_trunc('month', $2::timestamp), $3::timestamp,
                               interval '1 month') AS m
        UNION ALL
        SELECT $2::date, $3::date, true
    ),
    counted AS (
        SELECT e.giver_id, e.receiver_id, e.minutes, e.service_date, e.group_id
          FROM exchanges e
         WHERE e.timebank_id = $1
           AND e.approved_at <= $4
           AND (e.reversed_at IS NULL OR e.reversed_at > $4)
    ),
    in_period AS (
        SELECT p.first_day, p.whole, c.*
          FROM periods p JOIN counted c ON c.service_date BETWEEN p.first_day AND p.last_day
    ),
    volume AS (
        SELECT first_day, whole, sum(minutes) AS minutes, count(*) AS exchanges
          FROM in_period GROUP BY first_day, whole
    ),
    took_part AS (
        SELECT first_day, whole, participant_id, bool_or(gave) AS gave,
               bool_or(received) AS received
          FROM (SELECT first_day, whole, giver_id AS participant_id, true AS gave,
                       false AS received
                  FROM in_period
                UNION ALL
                SELECT first_day, whole, receiver_id, false, true FROM in_period) AS sides
         GROUP BY first_day, whole, participant_id
    ),
    people AS (
        SELECT first_day, whole, count(*) AS active,
               count(*) FILTER (WHERE gave AND received) AS reciprocal
          FROM took_part GROUP BY first_day, whole
    ),
    pairs AS (
        SELECT first_day, whole, least(giver_id, receiver_id) AS one,
               greatest(giver_id, receiver_id) AS other, count(DISTINCT giver_id) AS directions
          FROM in_period GROUP BY first_day, whole, one, other
    ),
    ties AS (
        SELECT first_day, whole, count(*) AS ties,
               count(*) FILTER (WHERE directions = 2) AS two_way_ties
          FROM pairs GROUP BY first_day, whole
    ),
    first_dates AS (
        SELECT participant_id, min(service_date) AS first_date
          FROM (SELECT giver_id AS participant_id, service_date FROM counted
                UNION ALL
                SELECT receiver_id, service_date FROM counted) AS sides
         GROUP BY participant_id
    ),
    firsts AS (
        SELECT p.first_day, p.whole, count(*) AS first_exchanges,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY greatest(f.first_date - pt.joined_on, 0)) AS median_days
          FROM periods p
          JOIN first_dates f ON f.first_date BETWEEN p.first_day AND p.last_day
          JOIN participants pt ON pt.id = f.participant_id
         GROUP BY p.first_day, p.whole
    ),
    session_sums AS (
        SELECT first_day, whole, count(DISTINCT group_id) AS sessions,
               count(group_id) AS session_attendances,
               sum(minutes) FILTER (WHERE group_id IS NOT NULL) AS session_minutes
          FROM in_period GROUP BY first_day, whole
    ),
    gift_sums AS (
        SELECT p.first_day, p.whole,
               sum(g.minutes) FILTER (WHERE g.kind = 'gift' AND g.to_participant_id IS NOT NULL)
                   AS gifted_minutes,
               sum(g.minutes) FILTER (WHERE g.kind = 'gift' AND g.to_participant_id IS NULL)
                   AS gifted_to_pot_minutes,
               sum(g.minutes) FILTER (WHERE g.kind = 'grant') AS granted_minutes
          FROM periods p
          JOIN gifts g ON g.timebank_id = $1 AND g.created_at <= $4
           AND CAST(g.created_at AT TIME ZONE 'UTC' AS date) BETWEEN p.first_day AND p.last_day
         GROUP BY p.first_day, p.whole
    ),
    enrolled AS (
        SELECT p.first_day, p.whole,
               count(pt.id) FILTER (WHERE pt.joined_on <= p.last_day) AS participants,
               count(pt.id) FILTER (WHERE pt.joined_on BETWEEN p.first_day AND p.last_day)
                   AS new
          FROM periods p
          LEFT JOIN participants pt ON pt.timebank_id = $1 AND pt.created_at <= $4
         GROUP BY p.first_day, p.whole
    )
    SELECT p.first_day, p.last_day, p.whole,
           coalesce(v.minutes, 0) AS minutes, coalesce(v.exchanges, 0) AS exchanges,
           en.participants, en.new,
           coalesce(pe.active, 0) AS active, coalesce(pe.reciprocal, 0) AS reciprocal,
           coalesce(t.ties, 0) AS ties, coalesce(t.two_way_ties, 0) AS two_way_ties,
           coalesce(f.first_exchanges, 0) AS first_exchanges, f.median_days,
           coalesce(s.sessions, 0) AS sessions,
           coalesce(s.session_attendances, 0) AS session_attendances,
           coalesce(s.session_minutes, 0) AS session_minutes,
           coalesce(gi.gifted_minutes, 0) AS gifted_minutes,
           coalesce(gi.gifted_to_pot_minutes, 0) AS gifted_to_pot_minutes,
           coalesce(gi.granted_minutes, 0) AS granted_minutes
      FROM periods p
      JOIN enrolled en USING (first_day, whole)
      LEFT JOIN volume v USING (first_day, whole)
      LEFT JOIN people pe USING (first_day, whole)
      LEFT JOIN ties t USING (first_day, whole)
      LEFT JOIN firsts f USING (first_day, whole)
      LEFT JOIN session_sums s USING (first_day, whole)
      LEFT JOIN gift_sums gi USING (first_day, whole)
     ORDER BY p.whole, p.first_day
"""

PLAIN_CONTRIBUTION_CATEGORIES = """
    WITH counted AS (
        SELECT e.giver_id, e.receiver_id, e.minutes, e.category_id
          FROM exchanges e
         WHERE e.timebank_id = $1 AND e.service_date BETWEEN $2 AND $3
           AND e.approved_at <= $4
           AND (e.reversed_at IS NULL OR e.reversed_at > $4)
    ),
    people AS (
        SELECT category_id, count(DISTINCT participant_id) AS people
          FROM (SELECT category_id, giver_id AS participant_id FROM counted
                UNION ALL
                SELECT category_id, receiver_id FROM counted) AS sides
         GROUP BY category_id
    )
    SELECT c.slug AS category, c.name, sum(x.minutes) AS minutes, count(*) AS exchanges,
           max(p.people) AS people
      FROM counted x
      JOIN categories c ON c.id = x.category_id
      JOIN people p ON p.category_id = x.category_id
     GROUP BY c.slug, c.name
     ORDER BY minutes DESC, c.slug
"""

PLAIN_CONTRIBUTION_FLOWS = """
    WITH counted AS (
        SELECT e.giver_id, e.receiver_id, e.minutes, g.kind AS giver_kind,
               r.kind AS receiver_kind
          FROM exchanges e
          JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE e.timebank_id = $1 AND e.service_date BETWEEN $2 AND $3
           AND e.approved_at <= $4
           AND (e.reversed_at IS NULL OR e.reversed_at > $4)
    ),
    people AS (
        SELECT giver_kind, receiver_kind, count(DISTINCT participant_id) AS people
          FROM (SELECT giver_kind, receiver_kind, giver_id AS participant_id FROM counted
                UNION ALL
                SELECT giver_kind, receiver_kind, receiver_id FROM counted) AS sides
         GROUP BY giver_kind, receiver_kind
    )
    SELECT x.giver_kind, x.receiver_kind, sum(x.minutes) AS minutes, count(*) AS exchanges,
           max(p.people) AS people
      FROM counted x JOIN people p USING (giver_kind, receiver_kind)
     GROUP BY x.giver_kind, x.receiver_kind
     ORDER BY minutes DESC, x.giver_kind, x.receiver_kind
"""

# $1 timebank, $2 first day, $3 last day, $4 as_of, $5 the participant.
PLAIN_RECIPROCITY_ONE = """
    SELECT p.id AS participant_id, p.display_name, p.kind,
           coalesce(sum(e.minutes) FILTER (WHERE e.giver_id = p.id), 0) AS given_minutes,
           coalesce(sum(e.minutes) FILTER (WHERE e.receiver_id = p.id), 0) AS received_minutes,
           count(e.id) FILTER (WHERE e.giver_id = p.id) AS exchanges_given,
           count(e.id) FILTER (WHERE e.receiver_id = p.id) AS exchanges_received,
           count(DISTINCT CASE WHEN e.giver_id = p.id THEN e.receiver_id ELSE e.giver_id END)
               AS partners
      FROM participants p
      LEFT JOIN exchanges e
        ON (e.giver_id = p.id OR e.receiver_id = p.id)
       AND e.service_date BETWEEN $2 AND $3
       AND e.approved_at <= $4
       AND (e.reversed_at IS NULL OR e.reversed_at > $4)
     WHERE p.timebank_id = $1 AND p.created_at <= $4 AND p.id = $5
     GROUP BY p.id
     ORDER BY p.id
"""

BUSIEST_MEMBER = """
    SELECT s.participant_id, count(*) AS exchanges
      FROM (SELECT giver_id AS participant_id FROM exchanges e
             WHERE e.timebank_id = $1 AND e.service_date BETWEEN $2 AND $3
               AND e.approved_at <= $4 AND (e.reversed_at IS NULL OR e.reversed_at > $4)
            UNION ALL
            SELECT receiver_id FROM exchanges e
             WHERE e.timebank_id = $1 AND e.service_date BETWEEN $2 AND $3
               AND e.approved_at <= $4 AND (e.reversed_at IS NULL OR e.reversed_at > $4)) AS s
      JOIN participants p ON p.id = s.participant_id AND p.kind = 'member'
     GROUP BY s.participant_id
     ORDER BY exchanges DESC, s.participant_id
     LIMIT 1
"""


async def plain_contribution(
    conn: asyncpg.Connection, tb: int, start: date, end: date, as_of: datetime
) -> dict[str, list[asyncpg.Record]]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return {
            "series": await conn.fetch(PLAIN_CONTRIBUTION_SERIES, tb, start, end, as_of),
            "categories": await conn.fetch(PLAIN_CONTRIBUTION_CATEGORIES, tb, start, end, as_of),
            "flows": await conn.fetch(PLAIN_CONTRIBUTION_FLOWS, tb, start, end, as_of),
        }


TOTALS_CHECKED = ("minutes", "exchanges", "active")
FIGURES_CHECKED = (
    "minutes",
    "exchanges",
    "participants",
    "active",
    "new",
    "reciprocal",
    "ties",
    "two_way_ties",
    "first_exchanges",
    "median_days_to_first_exchange",
    "sessions",
    "session_attendances",
    "session_minutes",
    "gifted_minutes",
    "gifted_to_pot_minutes",
    "granted_minutes",
)
RECIPROCITY_CHECKED = (
    "participant_id",
    "given_minutes",
    "received_minutes",
    "exchanges_given",
    "exchanges_received",
    "partners",
)


def _plain_figures(row: asyncpg.Record) -> dict[str, Any]:
    figures = {name: row[name] for name in FIGURES_CHECKED if name in row}
    median = row["median_days"]
    figures["median_days_to_first_exchange"] = None if median is None else float(median)
    return figures


def _differences(where: str, service: dict[str, Any], plain: dict[str, Any]) -> list[str]:
    found = []
    for name, value in plain.items():
        mine = service.get(name)
        same = (
            mine is None and value is None
            if mine is None or value is None
            else math.isclose(float(mine), float(value), rel_tol=1e-9, abs_tol=1e-9)
        )
        if not same:
            found.append(f"{where} {name}: service {mine}, plain SQL {value}")
    return found


def check_contribution(
    report: ContributionReport, plain: dict[str, list[asyncpg.Record]]
) -> tuple[list[str], list[str]]:
    """Differences in the totals named by the brief, and in every figure of every row."""
    whole = next(row for row in plain["series"] if row["whole"])
    months = [row for row in plain["series"] if not row["whole"]]
    totals = report.totals.model_dump()
    in_totals = _differences("totals", totals, {name: whole[name] for name in TOTALS_CHECKED})
    everywhere = _differences("totals", totals, _plain_figures(whole))
    if [(b.start, b.end) for b in report.series] != [
        (row["first_day"], row["last_day"]) for row in months
    ]:
        everywhere.append("series: the months differ")
    else:
        for bucket, row in zip(report.series, months, strict=True):
            everywhere += _differences(str(bucket.start), bucket.model_dump(), _plain_figures(row))
    for name, key in (("categories", "category"), ("flows", None)):
        mine = {
            (r.category if key else (r.giver_kind, r.receiver_kind)): r.model_dump()
            for r in getattr(report, name)
        }
        theirs = {
            (row["category"] if key else (row["giver_kind"], row["receiver_kind"])): row
            for row in plain[name]
        }
        if set(mine) != set(theirs):
            everywhere.append(f"{name}: different rows")
            continue
        for label, row in theirs.items():
            everywhere += _differences(
                f"{name} {label}",
                mine[label],
                {figure: row[figure] for figure in ("minutes", "exchanges", "people")},
            )
    return in_totals, everywhere


def check_reciprocity(report: ReciprocityReport, plain: list[asyncpg.Record]) -> list[str]:
    if len(report.rows) != len(plain):
        return [f"{len(report.rows)} rows from the service, {len(plain)} from plain SQL"]
    found: list[str] = []
    for row, theirs in zip(report.rows, plain, strict=True):
        found += _differences(
            f"participant {theirs['participant_id']}",
            row.model_dump(),
            {name: theirs[name] for name in RECIPROCITY_CHECKED},
        )
    return found


def check_everyone(
    everyone: ReciprocityReport, one: ReciprocityReport, contribution: ContributionReport
) -> list[str]:
    """Every counted exchange has one giver and one receiver: everyone's given (and received)
    minutes and exchanges add up to the contribution totals; and c's row is d's row."""
    totals = contribution.totals
    found = []
    for side in ("given", "received"):
        minutes = sum(getattr(row, f"{side}_minutes") for row in everyone.rows)
        exchanges = sum(getattr(row, f"exchanges_{side}") for row in everyone.rows)
        if minutes != totals.minutes or exchanges != totals.exchanges:
            found.append(
                f"{side}: {minutes} minutes in {exchanges} exchanges, but the contribution "
                f"report counts {totals.minutes} in {totals.exchanges}"
            )
    rows = {row.participant_id: row for row in everyone.rows}
    for row in one.rows:
        if rows.get(row.participant_id) != row:
            found.append(f"participant {row.participant_id}: c and d differ")
    return found
