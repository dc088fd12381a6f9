"""The statements behind the contribution report's figures, built with SQLAlchemy Core on the
tables and compiled once, at import (timebank/reports/repository.py sends them). Each reads the
aggregates (``schema/sql/tables``) and corrects them, in the same snapshot, by the exchanges
whose count changed since :as_of or whose change is still queued (timebank/reports/counting.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Interval,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    distinct,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union,
    union_all,
    values,
)
from sqlalchemy.sql.elements import ColumnElement

from timebank.db import tables
from timebank.db.compose import compiled
from timebank.reports.counting import (
    AS_OF,
    CHUNK,
    END,
    START,
    TB,
    bucket,
    counted_as_of,
    date_in_utc,
    exchanges,
    in_period,
    masks,
    not_reversed_by,
    queued,
    touched,
    with_parties,
    zero_bits,
)


def _volume() -> Select[Any]:
    """Minutes and exchanges by bucket, by category, by flow and in all, in one pass over the
    days. What counted as of :as_of differs from what counts now by the exchanges approved
    since (counting now, not then) and those reversed since but approved by then (counting
    then, not now); both are found through the approved_at / reversed_at indexes."""
    queued_now = queued()
    approved, reversed_ = exchanges(), exchanges()
    since = union_all(
        queued_now.where(queued_now.selected_columns.service_date.between(START, END)),
        select(*_changed_columns(approved), literal(-1).label("sign")).where(
            approved.c.timebank_id == TB,
            approved.c.approved_at > AS_OF,
            approved.c.reversed_at.is_(None),
            in_period(approved),
        ),
        select(*_changed_columns(reversed_), literal(1).label("sign")).where(
            reversed_.c.timebank_id == TB,
            reversed_.c.reversed_at > AS_OF,
            reversed_.c.approved_at <= AS_OF,
            in_period(reversed_),
        ),
    ).cte("since")
    day = tables.report_days
    x = since.alias("x")
    parties, g, r = with_parties(x)
    days = union_all(
        select(
            day.c.day,
            day.c.category_id,
            day.c.giver_kind,
            day.c.receiver_kind,
            day.c.minutes,
            day.c.exchanges,
        ).where(day.c.timebank_id == TB, day.c.day.between(START, END)),
        select(
            x.c.service_date, x.c.category_id, g.c.kind, r.c.kind, x.c.sign * x.c.minutes, x.c.sign
        ).select_from(parties),
    ).cte("days")
    first = bucket(days.c.day)
    kinds = (days.c.giver_kind, days.c.receiver_kind)
    return select(
        func.grouping(first, days.c.category_id, *kinds).label("grouping"),
        first.label("bucket"),
        days.c.category_id,
        *kinds,
        func.sum(days.c.minutes).label("minutes"),
        func.sum(days.c.exchanges).label("exchanges"),
    ).group_by(
        func.grouping_sets(tuple_(first), tuple_(days.c.category_id), tuple_(*kinds), tuple_())
    )


def _changed_columns(e: Any) -> tuple[Any, ...]:
    c = e.c
    return (c.giver_id, c.receiver_id, c.service_date, c.minutes, c.category_id)


def _people_rows(*, overall: bool) -> Any:
    """People as bitmaps of ordinals (CHUNK a row) by bucket, for the dimension 'all' or for
    the others ('category:<id>', 'flow:<giver kind>><receiver kind>'). Whole months come from
    the month rows, other days from the day rows (:months_from..:months_to, :head_from..
    :head_to, :tail_from..:tail_to). The aggregates are as of now: the bits of people whose
    exchanges changed since :as_of are cleared and set again from their exchanges that counted
    as of then."""
    zero = zero_bits()
    changed = touched().cte("changed")
    people = union(
        select(changed.c.giver_id.label("pid")).where(changed.c.service_date.between(START, END)),
        select(changed.c.receiver_id).where(changed.c.service_date.between(START, END)),
    ).cte("touched")
    changes = masks(people, zero, "masks")

    def legs_of(party: str, gave: bool) -> Select[Any]:
        e = exchanges()
        parties, g, r = with_parties(e)
        person = g if gave else r
        return (
            select(
                e.c.service_date.label("day"),
                e.c.category_id,
                g.c.kind.label("giver_kind"),
                r.c.kind.label("receiver_kind"),
                person.c.ordinal,
                literal(gave).label("gave"),
            )
            .select_from(parties)
            .where(
                e.c[party].in_(select(people.c.pid)),
                e.c.timebank_id == TB,
                in_period(e),
                e.c.approved_at <= AS_OF,
                not_reversed_by(e),
            )
        )

    legs = union_all(legs_of("giver_id", True), legs_of("receiver_id", False)).cte("legs")

    def chosen(dimension: Any) -> ColumnElement[bool]:
        return dimension == "all" if overall else dimension != "all"

    t = changes.alias("t")

    def rows(stored: Any, day: Any, *where: Any) -> Select[Any]:
        kept = func.coalesce(t.c.mask, zero.c.bits).bitwise_not()
        return (
            select(
                bucket(day).label("bucket"),
                stored.c.dimension,
                stored.c.chunk,
                stored.c.givers.bitwise_and(kept).label("givers"),
                stored.c.receivers.bitwise_and(kept).label("receivers"),
            )
            .select_from(stored.join(zero, true()).outerjoin(t, t.c.chunk == stored.c.chunk))
            .where(stored.c.timebank_id == TB, *where, chosen(stored.c.dimension))
        )

    m = tables.report_month_people.alias("m")
    d = tables.report_day_people.alias("d")
    leg = legs.alias("l")
    dimensions = (
        values(column("dimension", Text), name="d")
        .data(
            [
                ("all",),
                (literal("category:") + cast(leg.c.category_id, Text),),
                (literal("flow:") + leg.c.giver_kind + ">" + leg.c.receiver_kind,),
            ]
        )
        .lateral()
    )
    bit = func.set_bit(zero.c.bits, leg.c.ordinal % CHUNK, 1)
    return union_all(
        rows(m, m.c.month, m.c.month.between(bindparam("months_from"), bindparam("months_to"))),
        rows(
            d,
            d.c.day,
            or_(
                d.c.day.between(bindparam("head_from"), bindparam("head_to")),
                d.c.day.between(bindparam("tail_from"), bindparam("tail_to")),
            ),
        ),
        select(
            bucket(leg.c.day),
            dimensions.c.dimension,
            leg.c.ordinal // CHUNK,
            case((leg.c.gave, bit), else_=zero.c.bits),
            case((leg.c.gave, zero.c.bits), else_=bit),
        )
        .select_from(leg.join(zero, true()).join(dimensions, true()))
        .where(chosen(dimensions.c.dimension)),
    ).cte("people_rows")


def _people() -> Select[Any]:
    """Active and reciprocal people by bucket and in all."""
    rows = _people_rows(overall=True)
    unions = (
        select(
            rows.c.bucket,
            rows.c.chunk,
            func.bit_or(rows.c.givers).label("givers"),
            func.bit_or(rows.c.receivers).label("receivers"),
        )
        .group_by(func.grouping_sets(tuple_(rows.c.bucket, rows.c.chunk), tuple_(rows.c.chunk)))
        .cte("unions")
    )
    return select(
        unions.c.bucket,
        func.sum(func.bit_count(unions.c.givers.bitwise_or(unions.c.receivers))).label("active"),
        func.sum(func.bit_count(unions.c.givers.bitwise_and(unions.c.receivers))).label(
            "reciprocal"
        ),
    ).group_by(unions.c.bucket)


def _people_by_dimension() -> Select[Any]:
    """People by category and by flow over the whole period."""
    rows = _people_rows(overall=False)
    people = func.bit_or(rows.c.givers.bitwise_or(rows.c.receivers)).label("people")
    keys = (rows.c.dimension, rows.c.chunk)
    unions = select(*keys, people).group_by(*keys).cte("unions")
    return select(
        unions.c.dimension, func.sum(func.bit_count(unions.c.people)).label("people")
    ).group_by(unions.c.dimension)


def _firsts() -> Select[Any]:
    """First exchanges by bucket and in all, and the median days from joining to them: from
    the aggregate, except for participants whose exchanges changed after :as_of, whose first
    day is found again among the exchanges counted as of then."""
    changed = touched().cte("changed")
    people = union(select(changed.c.giver_id.label("pid")), select(changed.c.receiver_id)).cte(
        "touched"
    )
    t, e = people.alias("t"), exchanges()
    recomputed = (
        select(t.c.pid, func.min(e.c.service_date).label("first_day"))
        .select_from(t.join(e, or_(e.c.giver_id == t.c.pid, e.c.receiver_id == t.c.pid)))
        .where(counted_as_of(e))
        .group_by(t.c.pid)
        .cte("recomputed")
    )
    stored = tables.report_firsts
    firsts = union_all(
        select(stored.c.participant_id.label("pid"), stored.c.first_day).where(
            stored.c.timebank_id == TB,
            stored.c.first_day.between(START, END),
            stored.c.participant_id.not_in(select(people.c.pid)),
        ),
        select(recomputed.c.pid, recomputed.c.first_day).where(
            recomputed.c.first_day.between(START, END)
        ),
    ).cte("firsts")
    f, p = firsts.alias("f"), tables.participants.alias("p")
    in_period_ = (
        select(
            bucket(f.c.first_day).label("bucket"),
            func.greatest(f.c.first_day - p.c.joined_on, 0).label("days"),
        )
        .select_from(f.join(p, p.c.id == f.c.pid))
        .cte("in_period")
    )
    return select(
        in_period_.c.bucket,
        func.count().label("first_exchanges"),
        func.percentile_cont(0.5).within_group(in_period_.c.days).label("median_days"),
    ).group_by(func.grouping_sets(tuple_(in_period_.c.bucket), tuple_()))


def _gifts() -> Select[Any]:
    """Gifts between members, gifts to the pot and grants from the pot by bucket and in all:
    minutes, and the distinct people each rests on. A gift counts as of :as_of when made at
    or before it, on the UTC date it was made (read through gifts (timebank_id, created_at))."""
    g = tables.gifts.alias("g")
    day = date_in_utc(g.c.created_at)
    made = (
        select(
            bucket(day).label("bucket"),
            g.c.kind,
            g.c.from_participant_id,
            g.c.to_participant_id,
            g.c.minutes,
        )
        .where(
            g.c.timebank_id == TB,
            g.c.created_at <= AS_OF,
            g.c.created_at >= func.timezone("UTC", cast(cast(START, Date), DateTime)),
            g.c.created_at
            < func.timezone(
                "UTC", cast(cast(END, Date), DateTime) + cast(literal("1 day"), Interval)
            ),
        )
        .cte("made")
    )
    to_member = and_(made.c.kind == "gift", made.c.to_participant_id.is_not(None))
    to_pot = and_(made.c.kind == "gift", made.c.to_participant_id.is_(None))
    grant = made.c.kind == "grant"
    return select(
        made.c.bucket,
        func.coalesce(func.sum(made.c.minutes).filter(to_member), 0).label("gifted_minutes"),
        func.count(distinct(made.c.from_participant_id)).filter(to_member).label("gift_givers"),
        func.count(distinct(made.c.to_participant_id)).filter(to_member).label("gift_recipients"),
        func.coalesce(func.sum(made.c.minutes).filter(to_pot), 0).label("gifted_to_pot_minutes"),
        func.count(distinct(made.c.from_participant_id)).filter(to_pot).label("pot_givers"),
        func.coalesce(func.sum(made.c.minutes).filter(grant), 0).label("granted_minutes"),
        func.count(distinct(made.c.to_participant_id)).filter(grant).label("grant_recipients"),
    ).group_by(func.grouping_sets(tuple_(made.c.bucket), tuple_()))


def _sessions() -> Select[Any]:
    """Group sessions by bucket and in all: sessions whose legs count as of :as_of, their legs
    (attendances), the legs' minutes and the distinct participants taking part (read through
    the legs' partial index by service date)."""
    e = exchanges()
    legs = (
        select(
            bucket(e.c.service_date).label("bucket"),
            e.c.id,
            e.c.group_id,
            e.c.minutes,
            e.c.giver_id,
            e.c.receiver_id,
        )
        .where(
            e.c.timebank_id == TB,
            e.c.group_id.is_not(None),
            in_period(e),
            counted_as_of(e),
        )
        .cte("legs")
    )
    party = (
        values(column("pid", BigInteger), column("gave", Boolean), name="party")
        .data([(legs.c.giver_id, True), (legs.c.receiver_id, False)])
        .lateral()
    )
    return (
        select(
            legs.c.bucket,
            func.count(distinct(legs.c.group_id)).label("sessions"),
            func.count(distinct(legs.c.id)).label("session_attendances"),
            func.coalesce(func.sum(legs.c.minutes).filter(party.c.gave), 0).label(
                "session_minutes"
            ),
            func.count(distinct(party.c.pid)).label("session_people"),
        )
        .select_from(legs.join(party, true()))
        .group_by(func.grouping_sets(tuple_(legs.c.bucket), tuple_()))
    )


VOLUME = compiled(_volume())
PEOPLE = compiled(_people())
PEOPLE_BY_DIMENSION = compiled(_people_by_dimension())
FIRSTS = compiled(_firsts())
GIFTS = compiled(_gifts())
SESSIONS = compiled(_sessions())
