"""What counts, as SQLAlchemy Core pieces on timebank/db/tables.py, shared by the report
statements and by their audit (see the package docstring for the definitions). The statements
built from them are compiled once, at import.

Parameters, by name (``compose.compiled`` numbers them ``$1``, ``$2``…): ``tb`` (the timebank),
``start`` and ``end`` (service dates), ``as_of`` (the moment counted), ``unit`` (week | month |
quarter)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CTE,
    CompoundSelect,
    Date,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from timebank.db import tables
from timebank.db.tables import BITMAP

TB: BindParameter[Any] = bindparam("tb")
START: BindParameter[Any] = bindparam("start")
END: BindParameter[Any] = bindparam("end")
AS_OF: BindParameter[Any] = bindparam("as_of")
UNIT: BindParameter[Any] = bindparam("unit")

CHUNK = 2048  # people a bitmap row holds (tables.BITMAP)


def exchanges() -> Any:
    """The exchanges as ``e``: a fresh alias each call, for each part of a statement."""
    return tables.exchanges.alias("e")


def zero_bits() -> CTE:
    """The CTE ``zero``: one row, an empty bitmap (``bits``)."""
    return select(cast(func.repeat("0", CHUNK), BITMAP).label("bits")).cte("zero")


def masks(people: Any, zero: CTE, name: str) -> CTE:
    """The CTE ``name``: the bits of ``people`` (rows with a ``pid``) by ``chunk`` (``mask``)."""
    p = tables.participants.alias("p")
    chunk = p.c.ordinal // CHUNK
    return (
        select(
            chunk.label("chunk"),
            func.bit_or(func.set_bit(zero.c.bits, p.c.ordinal % CHUNK, 1)).label("mask"),
        )
        .select_from(people.join(p, p.c.id == people.c.pid), zero)
        .group_by(chunk)
        .cte(name)
    )


def with_parties(e: Any) -> tuple[Any, Any, Any]:
    """``e`` joined to its giver ``g`` and its receiver ``r``: (the join, g, r)."""
    g, r = tables.participants.alias("g"), tables.participants.alias("r")
    return e.join(g, g.c.id == e.c.giver_id).join(r, r.c.id == e.c.receiver_id), g, r


def bucket(day: ColumnElement[Any]) -> ColumnElement[Any]:
    """The first day of the bucket ``day`` falls in: its week, month or quarter, cut at :start."""
    return func.greatest(cast(func.date_trunc(UNIT, day), Date), cast(START, Date))


def date_in_utc(moment: ColumnElement[Any]) -> ColumnElement[Any]:
    """The UTC date of a timestamptz (a gift's day: gifts have no service date)."""
    return cast(func.timezone("UTC", moment), Date)


def not_reversed_by(e: Any) -> ColumnElement[bool]:
    return or_(e.c.reversed_at.is_(None), e.c.reversed_at > AS_OF)


def counted_as_of(e: Any) -> ColumnElement[bool]:
    """The exchange ``e`` counted as of :as_of: approved by then, not reversed by then."""
    return and_(e.c.approved_at.is_not(None), e.c.approved_at <= AS_OF, not_reversed_by(e))


def in_period(e: Any) -> ColumnElement[bool]:
    return e.c.service_date.between(START, END)


def queued() -> Select[Any]:
    """The timebank's exchanges whose change is still queued (``report_apply_queued``), each
    with the sign of that change: +1 an approval, -1 a reversal. The aggregates do not hold them
    yet; read in the same snapshot, they make the aggregates what counts now."""
    e = exchanges()
    q = tables.report_queue.alias("q")
    return (
        select(
            e.c.giver_id,
            e.c.receiver_id,
            e.c.service_date,
            e.c.minutes,
            e.c.category_id,
            case((q.c.counting, literal(1)), else_=literal(-1)).label("sign"),
        )
        .select_from(q.join(e, e.c.id == q.c.exchange_id))
        .where(e.c.timebank_id == TB)
    )


def touched() -> CompoundSelect:
    """Whom the aggregates may have wrong for :as_of (giver_id, receiver_id, service_date): the
    parties of exchanges approved or reversed since :as_of, or whose change is still queued.
    Queries that take people or pairs out of the aggregates count them again from these."""
    approved, reversed_ = exchanges(), exchanges()
    still_queued = queued().subquery("queued")
    return union_all(
        select(approved.c.giver_id, approved.c.receiver_id, approved.c.service_date).where(
            approved.c.timebank_id == TB, approved.c.approved_at > AS_OF
        ),
        select(reversed_.c.giver_id, reversed_.c.receiver_id, reversed_.c.service_date).where(
            reversed_.c.timebank_id == TB, reversed_.c.reversed_at > AS_OF
        ),
        select(still_queued.c.giver_id, still_queued.c.receiver_id, still_queued.c.service_date),
    )
