"""The report aggregates (``schema/sql/tables``) recounted from the exchanges, for ``timebank
verify``: each check names an aggregate table and returns its rows that differ from the
recount (those the table has and the recount has not, and the other way round). The checks are
built with SQLAlchemy Core on the tables and compiled once, at import.

The aggregates hold the changes applied from their queue (``report_apply_queued``) so far, so the
recount counts each exchange as they should: as it counts now, unless a change of it is still
queued. Then it counts only if it stopped counting (a reversal) and its approval is not queued
too. Queue and aggregates are read in one snapshot.

People's bits and first days are the exception: applying a reversal recounts them from the
exchanges as they stand, approvals still queued included, so for the parties of a queued change
they may already be ahead of the queue. Those parties are left out of these checks until their
changes are applied (on a quiet ledger the queue is empty and nobody is left out)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    CompoundSelect,
    Date,
    Select,
    Text,
    and_,
    case,
    cast,
    column,
    except_,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    values,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from timebank.db import tables
from timebank.db.compose import CompiledStatement, compiled
from timebank.db.statements import fetch
from timebank.ledger.audit import Finding, audited_timebanks
from timebank.reports.counting import (
    CHUNK,
    TB,
    exchanges,
    masks,
    queued,
    with_parties,
    zero_bits,
)


def _counts_in_aggregates(e: Any) -> ColumnElement[bool]:
    """The exchange ``e`` of the timebank as the aggregates count it (see the docstring)."""
    change, approval = tables.report_queue.alias("q"), tables.report_queue.alias("q")
    return and_(
        e.c.timebank_id == TB,
        case(
            (
                exists().where(change.c.exchange_id == e.c.id),
                and_(
                    e.c.reversed_at.is_not(None),
                    ~exists().where(approval.c.exchange_id == e.c.id, approval.c.counting),
                ),
            ),
            else_=and_(e.c.approved_at.is_not(None), e.c.reversed_at.is_(None)),
        ),
    )


def _queued_parties() -> Select[Any]:
    """The parties (``pid``) of queued changes (see the docstring)."""
    change = queued().subquery("q")
    party = (
        values(column("pid", BigInteger), name="x")
        .data([(change.c.giver_id,), (change.c.receiver_id,)])
        .lateral()
    )
    return select(party.c.pid).select_from(change.join(party, true()))


def _differences(recount: CTE, kept: CTE, *, only: Any = None) -> CompoundSelect:
    """The rows of ``recount`` not ``kept`` and the other way round (those where ``only``
    holds, if given)."""

    def rows(table: CTE) -> Select[Any]:
        return select(table) if only is None else select(table).where(only(table))

    return union_all(except_(rows(recount), select(kept)), except_(rows(kept), select(recount)))


def _report_days() -> CompoundSelect:
    e = exchanges()
    joined, g, r = with_parties(e)
    keys = (e.c.service_date, e.c.category_id, g.c.kind, r.c.kind)
    recount = (
        select(
            e.c.service_date.label("day"),
            e.c.category_id,
            g.c.kind.label("giver_kind"),
            r.c.kind.label("receiver_kind"),
            func.sum(e.c.minutes).label("minutes"),
            func.count().label("exchanges"),
        )
        .select_from(joined)
        .where(_counts_in_aggregates(e))
        .group_by(*keys)
        .cte("recount")
    )
    day = tables.report_days
    stored = [column for column in day.c if column.name != "timebank_id"]
    kept = select(*stored).where(day.c.timebank_id == TB, day.c.exchanges != 0).cte("kept")
    return _differences(recount, kept)


def _report_pair_months() -> CompoundSelect:
    e = exchanges()
    low = func.least(e.c.giver_id, e.c.receiver_id)
    high = func.greatest(e.c.giver_id, e.c.receiver_id)
    month = cast(func.date_trunc("month", e.c.service_date), Date)
    recount = (
        select(
            low.label("low"),
            high.label("high"),
            month.label("month"),
            func.count().filter(e.c.giver_id < e.c.receiver_id).label("forth"),
            func.count().filter(e.c.giver_id > e.c.receiver_id).label("back"),
        )
        .where(_counts_in_aggregates(e))
        .group_by(low, high, month)
        .cte("recount")
    )
    pair = tables.report_pair_months
    kept = (
        select(
            pair.c.low_id,
            pair.c.high_id,
            pair.c.month,
            cast(pair.c.forth, BigInteger),
            cast(pair.c.back, BigInteger),
        )
        .where(pair.c.timebank_id == TB, pair.c.forth + pair.c.back > 0)
        .cte("kept")
    )
    return _differences(recount, kept)


def _report_tie_steps() -> CompoundSelect:
    pair = tables.report_pair_months
    months = (
        select(pair.c.low_id, pair.c.high_id, pair.c.month, pair.c.forth, pair.c.back)
        .where(pair.c.timebank_id == TB, pair.c.forth + pair.c.back > 0)
        .cte("months")
    )
    previous = func.lag(months.c.month).over(
        partition_by=(months.c.low_id, months.c.high_id), order_by=months.c.month
    )
    steps = union_all(
        select(literal("any").label("kind"), months.c.month, previous.label("previous")),
        select(literal("forth"), months.c.month, previous).where(months.c.forth > 0),
        select(literal("back"), months.c.month, previous).where(months.c.back > 0),
    ).subquery("steps")
    since = func.coalesce(steps.c.previous, literal("-infinity"))
    recount = (
        select(steps.c.kind, steps.c.month, since.label("previous"), func.count().label("pairs"))
        .group_by(steps.c.kind, steps.c.month, since)
        .cte("recount")
    )
    step = tables.report_tie_steps
    kept = (
        select(step.c.kind, step.c.month, step.c.previous, func.sum(step.c.pairs).label("pairs"))
        .where(step.c.timebank_id == TB)
        .group_by(step.c.kind, step.c.month, step.c.previous)
        .having(func.sum(step.c.pairs) != 0)
        .cte("kept")
    )
    return _differences(recount, kept)


def _people_bits(stored: Any, span: str) -> CompoundSelect:
    """People's bitmaps by day (``span`` "day") or by month ("month"), but for the parties of
    queued changes."""
    zero = zero_bits()
    parties = _queued_parties().subquery("x")
    queued_bits = masks(parties, zero, "queued")

    def legs_of(gave: bool) -> Select[Any]:
        e = exchanges()
        joined, g, r = with_parties(e)
        return (
            select(
                e.c.service_date.label("day"),
                e.c.category_id,
                (g.c.kind + ">" + r.c.kind).label("flow"),
                (g if gave else r).c.ordinal,
                literal(gave).label("gave"),
            )
            .select_from(joined)
            .where(_counts_in_aggregates(e))
        )

    leg = union_all(legs_of(True), legs_of(False)).cte("legs").alias("l")
    z, q = zero.alias("z"), queued_bits.alias("q")
    dimensions = (
        values(column("dimension", Text), name="d")
        .data(
            [
                ("all",),
                (literal("category:") + cast(leg.c.category_id, Text),),
                (literal("flow:") + leg.c.flow,),
            ]
        )
        .lateral()
    )
    bit = func.set_bit(z.c.bits, leg.c.ordinal % CHUNK, 1)
    day = leg.c.day if span == "day" else cast(func.date_trunc("month", leg.c.day), Date)
    counted = (
        select(
            day.label("span"),
            dimensions.c.dimension,
            (leg.c.ordinal // CHUNK).label("chunk"),
            func.bit_or(case((leg.c.gave, bit), else_=z.c.bits)).label("givers"),
            func.bit_or(case((leg.c.gave, z.c.bits), else_=bit)).label("receivers"),
        )
        .select_from(leg.join(z, true()).join(dimensions, true()))
        .group_by(day, dimensions.c.dimension, leg.c.ordinal // CHUNK)
        .cte("counted")
    )
    kept_rows = (
        select(
            stored.c[span].label("span"),
            stored.c.dimension,
            stored.c.chunk,
            stored.c.givers,
            stored.c.receivers,
        )
        .where(stored.c.timebank_id == TB)
        .cte("stored")
    )

    def unqueued(rows: CTE, name: str) -> CTE:
        kept = func.coalesce(q.c.mask, z.c.bits).bitwise_not()
        return (
            select(
                rows.c.span,
                rows.c.dimension,
                rows.c.chunk,
                rows.c.givers.bitwise_and(kept).label("givers"),
                rows.c.receivers.bitwise_and(kept).label("receivers"),
            )
            .select_from(rows.join(z, true()).outerjoin(q, q.c.chunk == rows.c.chunk))
            .cte(name)
        )

    def anyone(rows: CTE) -> ColumnElement[bool]:
        return or_(func.bit_count(rows.c.givers) > 0, func.bit_count(rows.c.receivers) > 0)

    return _differences(unqueued(counted, "recount"), unqueued(kept_rows, "kept"), only=anyone)


def _report_firsts() -> CompoundSelect:
    giving, receiving = exchanges(), exchanges()
    legs = union_all(
        select(giving.c.giver_id.label("pid"), giving.c.service_date).where(
            _counts_in_aggregates(giving)
        ),
        select(receiving.c.receiver_id, receiving.c.service_date).where(
            _counts_in_aggregates(receiving)
        ),
    ).cte("legs")
    parties = _queued_parties().cte("queued")
    recount = (
        select(legs.c.pid, func.min(legs.c.service_date).label("first_day"))
        .where(legs.c.pid.not_in(select(parties.c.pid)))
        .group_by(legs.c.pid)
        .cte("recount")
    )
    first = tables.report_firsts
    kept = (
        select(first.c.participant_id, first.c.first_day)
        .where(first.c.timebank_id == TB, first.c.participant_id.not_in(select(parties.c.pid)))
        .cte("kept")
    )
    return _differences(recount, kept)


CHECKS: dict[str, CompiledStatement] = {
    "report_days": compiled(_report_days()),
    "report_pair_months": compiled(_report_pair_months()),
    "report_tie_steps": compiled(_report_tie_steps()),
    "report_day_people": compiled(_people_bits(tables.report_day_people, "day")),
    "report_month_people": compiled(_people_bits(tables.report_month_people, "month")),
    "report_firsts": compiled(_report_firsts()),
}


async def aggregate_differences(conn: AsyncConnection, timebank_id: int) -> dict[str, int]:
    """How many rows of each aggregate table differ from a recount, for one timebank."""
    found = {}
    for table, check in CHECKS.items():
        found[table] = len(await fetch(conn, check.sql, *check.args({"tb": timebank_id})))
    return found


async def aggregate_findings(conn: AsyncConnection, timebank_slug: str | None) -> list[Finding]:
    """The aggregates reports read must equal a recount of the exchanges that count: one
    finding per table that does not, per timebank (or for the one named)."""
    findings = []
    for timebank_id, slug in (await audited_timebanks(conn, timebank_slug)).items():
        for table, rows in (await aggregate_differences(conn, timebank_id)).items():
            if rows:
                findings.append(
                    Finding(
                        "report-aggregates",
                        slug,
                        table,
                        f"{rows} row(s) differ from a recount of the exchanges that count",
                    )
                )
    return findings
