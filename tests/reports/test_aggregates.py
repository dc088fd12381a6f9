"""The report aggregates PostgreSQL keeps (schema/sql/0004-0006) under concurrent approvals and
reversals: afterwards each one equals a recount from the exchanges that count, so no race
between two approvals, or between an approval and a reversal, leaves a person, a pair or a
minute out of a report.

Eight participants, so pairs and months repeat a lot; sixteen tasks log exchanges (approved as
they are logged) on random days of the last seven months and reverse some of them, all at once
through the real exchanges service."""

from __future__ import annotations

import asyncio
import random
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import unique_slug
from tests.people import make_person
from timebank.auth.schemas import Principal, TimebankAccess
from timebank.errors import TimebankError
from timebank.exchanges.schemas import ExchangeCreate
from timebank.exchanges.service import Exchanges
from timebank.participants.schemas import TimebankPolicy
from timebank.participants.service import Participants

COUNTED = "approved_at IS NOT NULL AND reversed_at IS NULL AND timebank_id = :tb"

# Each query returns the rows where the aggregate and the recount differ.
MISMATCHES = {
    "report_days": f"""
        WITH recount AS (
            SELECT e.service_date AS day, e.category_id, g.kind AS giver_kind,
                   r.kind AS receiver_kind, sum(e.minutes) AS minutes, count(*) AS exchanges
              FROM exchanges e JOIN participants g ON g.id = e.giver_id
              JOIN participants r ON r.id = e.receiver_id
             WHERE e.{COUNTED.replace(" AND ", " AND e.")}
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
              FROM exchanges WHERE {COUNTED} GROUP BY 1, 2, 3
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

PEOPLE_MISMATCHES = """
    WITH legs AS (
        SELECT e.service_date AS day, e.category_id, g.kind || '>' || r.kind AS flow,
               g.ordinal, true AS gave
          FROM exchanges e JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE e.{counted}
        UNION ALL
        SELECT e.service_date, e.category_id, g.kind || '>' || r.kind, r.ordinal, false
          FROM exchanges e JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE e.{counted}
    ),
    recount AS (
        SELECT {span} AS span, d.dimension, l.ordinal / 2048 AS chunk,
               bit_or(CASE WHEN l.gave THEN set_bit(z.bits, l.ordinal % 2048, 1) ELSE z.bits END)
                   AS givers,
               bit_or(CASE WHEN l.gave THEN z.bits ELSE set_bit(z.bits, l.ordinal % 2048, 1) END)
                   AS receivers
          FROM legs l
          CROSS JOIN (SELECT repeat('0', 2048)::bit(2048) AS bits) z
          CROSS JOIN LATERAL (VALUES ('all'), ('category:' || l.category_id),
                                     ('flow:' || l.flow)) AS d(dimension)
         GROUP BY 1, 2, 3
    ),
    kept AS (
        SELECT {column}, dimension, chunk, givers, receivers FROM {table}
         WHERE timebank_id = :tb AND (bit_count(givers) > 0 OR bit_count(receivers) > 0)
    )
    (SELECT * FROM recount EXCEPT SELECT * FROM kept)
    UNION ALL (SELECT * FROM kept EXCEPT SELECT * FROM recount)
"""
MISMATCHES["report_day_people"] = PEOPLE_MISMATCHES.format(
    counted=COUNTED.replace(" AND ", " AND e."),
    span="l.day",
    column="day",
    table="report_day_people",
)
MISMATCHES["report_month_people"] = PEOPLE_MISMATCHES.format(
    counted=COUNTED.replace(" AND ", " AND e."),
    span="CAST(date_trunc('month', l.day) AS date)",
    column="month",
    table="report_month_people",
)


async def mismatches(engine: AsyncEngine, timebank_id: int) -> dict[str, int]:
    found = {}
    async with engine.connect() as conn:
        for name, sql in MISMATCHES.items():
            rows = (await conn.execute(text(sql), {"tb": timebank_id})).all()
            found[name] = len(rows)
    return found


async def test_aggregates_equal_a_recount_after_concurrent_approvals_and_reversals(
    engine: AsyncEngine, participants: Participants
) -> None:
    policy = TimebankPolicy(
        approval_mode="automatic",
        confirmation_required=False,
        default_floor_minutes=-1_000_000,
        default_ceiling_minutes=1_000_000,
    )
    timebank = await participants.create_timebank(unique_slug("agg"), "Aggregates", policy)
    kinds = ("member", "member", "member", "member", "professional", "organisation")
    people = [
        (await participants.enrol(timebank, kinds[i % len(kinds)], f"Person {i}")).id
        for i in range(8)
    ]
    someone = await make_person(engine, "aggregates-admin", is_admin=True)
    admin = TimebankAccess(
        principal=Principal(
            user_id=someone.user_id, email=someone.email, is_admin=True, token_id=0
        ),
        timebank_id=timebank.id,
        timebank_slug=timebank.slug,
    )
    exchanges = Exchanges(engine)
    today = date.today()
    logged: list[int] = []

    async def member_at_work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(14):
            if logged and rng.random() < 0.25:
                try:
                    await exchanges.decide(admin, rng.choice(logged), "reverse", "logged in error")
                except TimebankError:
                    pass  # reversed already by another task
                continue
            giver, receiver = rng.sample(people, 2)
            result = await exchanges.log(
                admin,
                ExchangeCreate(
                    giver_id=giver,
                    receiver_id=receiver,
                    minutes=rng.choice((30, 60, 90)),
                    service_date=today - timedelta(days=rng.randrange(0, 210)),
                    category=rng.choice(("gardening", "lifts", "cooking")),
                ),
            )
            assert result.exchange.state == "approved"
            logged.append(result.exchange.id)

    await asyncio.gather(*(member_at_work(seed) for seed in range(16)))

    async with engine.connect() as conn:
        states = dict(
            (
                await conn.execute(
                    text(
                        "SELECT state, count(*) FROM exchanges WHERE timebank_id = :tb"
                        " GROUP BY state"
                    ),
                    {"tb": timebank.id},
                )
            ).all()
        )
    assert states.get("approved", 0) > 100 and states.get("reversed", 0) > 10, states
    assert await mismatches(engine, timebank.id) == dict.fromkeys(MISMATCHES, 0)
