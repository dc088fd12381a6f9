"""The reciprocity report's SQL: each participant's giving and receiving over a period, for
everyone or for one participant, straight from the exchanges counted as of a moment. The two
statements are built with SQLAlchemy Core and compiled once, at import."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Select,
    bindparam,
    distinct,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from timebank.db import tables
from timebank.db.compose import CompiledStatement, compiled
from timebank.db.statements import stream
from timebank.reports.counting import AS_OF, END, START, TB, counted_as_of, exchanges, in_period
from timebank.reports.repository import rows

PID: BindParameter[Any] = bindparam("pid")


def _counted_for_everyone() -> Select[Any]:
    e = exchanges()
    return select(e.c.giver_id, e.c.receiver_id, e.c.minutes).where(
        e.c.timebank_id == TB, in_period(e), counted_as_of(e)
    )


def _counted_for_one() -> CompoundSelect:
    """One participant's counted exchanges: lookups by party, never a scan of the timebank's
    period. Those not reversed come from the party's counted-exchange index (its conditions
    spelled out so that the planner takes it even before the table has statistics); those
    reversed after ``as_of``, few, from the reversal index (OFFSET 0 keeps the period's condition
    outside, so that the period's index does not look cheaper). No exchange has the same giver
    and receiver, so nothing is counted twice."""

    def not_reversed(party: str) -> Select[Any]:
        e = exchanges()
        return select(e.c.giver_id, e.c.receiver_id, e.c.minutes).where(
            e.c[party] == PID,
            in_period(e),
            e.c.approved_at.is_not(None),
            e.c.reversed_at.is_(None),
            e.c.timebank_id == TB,
            e.c.approved_at <= AS_OF,
        )

    e = exchanges()
    reversed_later = (
        select(e.c.giver_id, e.c.receiver_id, e.c.minutes, e.c.service_date)
        .where(
            e.c.timebank_id == TB,
            e.c.reversed_at > AS_OF,
            e.c.approved_at <= AS_OF,
            or_(e.c.giver_id == PID, e.c.receiver_id == PID),
        )
        .offset(0)
        .subquery("r")
    )
    return union_all(
        not_reversed("giver_id"),
        not_reversed("receiver_id"),
        select(
            reversed_later.c.giver_id, reversed_later.c.receiver_id, reversed_later.c.minutes
        ).where(reversed_later.c.service_date.between(START, END)),
    )


def _reciprocity(*, one: bool) -> Select[Any]:
    counted = (_counted_for_one() if one else _counted_for_everyone()).cte("counted")
    legs = union_all(
        select(
            counted.c.giver_id.label("pid"),
            counted.c.receiver_id.label("partner"),
            counted.c.minutes.label("given"),
            literal(0).label("received"),
        ),
        select(counted.c.receiver_id, counted.c.giver_id, literal(0), counted.c.minutes),
    ).cte("legs")
    figures = select(
        legs.c.pid,
        func.sum(legs.c.given).label("given_minutes"),
        func.sum(legs.c.received).label("received_minutes"),
        func.count().filter(legs.c.given > 0).label("exchanges_given"),
        func.count().filter(legs.c.received > 0).label("exchanges_received"),
        func.count(distinct(legs.c.partner)).label("partners"),
    ).group_by(legs.c.pid)
    if one:
        figures = figures.where(legs.c.pid == PID)
    f = figures.cte("figures").alias("f")
    p = tables.participants.alias("p")
    report = (
        select(
            p.c.id.label("participant_id"),
            p.c.display_name,
            p.c.kind,
            *(
                func.coalesce(f.c[name], 0).label(name)
                for name in (
                    "given_minutes",
                    "received_minutes",
                    "exchanges_given",
                    "exchanges_received",
                    "partners",
                )
            ),
        )
        .select_from(p.outerjoin(f, f.c.pid == p.c.id))
        .where(p.c.timebank_id == TB, p.c.created_at <= AS_OF)
        .order_by(p.c.id)
    )
    return report.where(p.c.id == PID) if one else report


RECIPROCITY_EVERYONE = compiled(_reciprocity(one=False))
RECIPROCITY_ONE = compiled(_reciprocity(one=True))


@dataclass(frozen=True)
class ReciprocityQuery:
    """Whose figures (everyone's, or one participant's), over which service dates, as of when."""

    timebank_id: int
    start: date
    end: date
    as_of: datetime
    participant_id: int | None = None

    @property
    def statement(self) -> CompiledStatement:
        return RECIPROCITY_EVERYONE if self.participant_id is None else RECIPROCITY_ONE

    @property
    def params(self) -> dict[str, Any]:
        return {
            "tb": self.timebank_id,
            "start": self.start,
            "end": self.end,
            "as_of": self.as_of,
            "pid": self.participant_id,
        }


async def reciprocity_rows(conn: AsyncConnection, query: ReciprocityQuery) -> list[Mapping]:
    """One row per participant enrolled by ``as_of`` (or the one asked for), by id."""
    return await rows(conn, query.statement, query.params)


async def stream_reciprocity_rows(
    conn: AsyncConnection, query: ReciprocityQuery, *, batch: int = 1000
) -> AsyncIterator[dict]:
    """The same rows as ``reciprocity_rows``, fetched from a server-side cursor in batches."""
    statement = query.statement
    async for row in stream(conn, statement.sql, *statement.args(query.params), batch=batch):
        yield dict(row)
