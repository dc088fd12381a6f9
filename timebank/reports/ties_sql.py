"""The statements behind the contribution report's ties (pairs of people who exchanged, and
those who exchanged both ways), built with SQLAlchemy Core on the tables and compiled once, at
import (timebank/reports/repository.py sends them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY

from timebank.db import tables
from timebank.db.compose import compiled
from timebank.reports.counting import (
    AS_OF,
    END,
    START,
    TB,
    bucket,
    counted_as_of,
    exchanges,
    in_period,
    not_reversed_by,
    touched,
)


def _ties() -> Select[Any]:
    """Ties straight from the exchanges: for buckets that cut months (weeks, a period starting
    or ending mid-month)."""
    e = exchanges()
    counted = (
        select(e.c.giver_id, e.c.receiver_id, bucket(e.c.service_date).label("bucket"))
        .where(e.c.timebank_id == TB, in_period(e), counted_as_of(e))
        .cte("counted")
    )
    directed = select(
        counted.c.bucket,
        func.least(counted.c.giver_id, counted.c.receiver_id).label("a"),
        func.greatest(counted.c.giver_id, counted.c.receiver_id).label("b"),
        (counted.c.giver_id < counted.c.receiver_id).label("forward"),
    ).cte("directed")
    ends = (directed.c.a, directed.c.b)
    pairs = (
        select(
            directed.c.bucket,
            *ends,
            func.bool_or(directed.c.forward).label("forth"),
            func.bool_or(~directed.c.forward).label("back"),
        )
        .group_by(func.grouping_sets(tuple_(directed.c.bucket, *ends), tuple_(*ends)))
        .cte("pairs")
    )
    return select(
        pairs.c.bucket,
        func.count().label("ties"),
        func.count().filter(and_(pairs.c.forth, pairs.c.back)).label("two_way_ties"),
    ).group_by(pairs.c.bucket)


def _ties_by_months() -> Select[Any]:
    """Ties when every bucket is whole months, from the step counts (``report_step_pair``): for a
    bucket of months [first, last], the pairs of each kind ('any', 'forth', 'back') whose month
    falls in it and whose previous month is before it. Pairs whose exchanges changed since
    :as_of are then taken out as they are now (report_pair_months) and put back as they were
    then. Buckets come as :bucket_keys, :bucket_firsts, :bucket_lasts."""
    dates = ARRAY(Date)
    buckets = select(
        func.unnest(
            cast(bindparam("bucket_keys"), dates),
            cast(bindparam("bucket_firsts"), dates),
            cast(bindparam("bucket_lasts"), dates),
        )
        .table_valued("bucket", "first", "last")
        .render_derived(name="b")
    ).cte("buckets")
    b, s = buckets.alias("b"), tables.report_tie_steps.alias("s")
    steps = (
        select(b.c.bucket, s.c.kind, func.sum(s.c.pairs).label("pairs"))
        .select_from(
            b.join(
                s,
                and_(
                    s.c.timebank_id == TB,
                    s.c.month.between(b.c.first, b.c.last),
                    s.c.previous < b.c.first,
                ),
            )
        )
        .group_by(b.c.bucket, s.c.kind)
        .cte("steps")
    )
    changed = touched().cte("changed")
    pairs = (
        select(
            func.least(changed.c.giver_id, changed.c.receiver_id).label("low"),
            func.greatest(changed.c.giver_id, changed.c.receiver_id).label("high"),
        )
        .distinct()
        .where(changed.c.service_date.between(START, END))
        .cte("touched")
    )
    t, p, e = pairs.alias("t"), tables.report_pair_months.alias("p"), exchanges()
    month = cast(func.date_trunc("month", e.c.service_date), Date)
    months = union_all(
        select(
            literal(-1).label("sign"),
            p.c.low_id.label("low"),
            p.c.high_id.label("high"),
            p.c.month,
            (p.c.forth > 0).label("forth"),
            (p.c.back > 0).label("back"),
        )
        .select_from(
            t.join(p, and_(p.c.timebank_id == TB, p.c.low_id == t.c.low, p.c.high_id == t.c.high))
        )
        .where(p.c.month.between(START, END), p.c.forth + p.c.back > 0),
        select(
            literal(1),
            t.c.low,
            t.c.high,
            month,
            func.bool_or(e.c.giver_id == t.c.low),
            func.bool_or(e.c.giver_id == t.c.high),
        )
        .select_from(
            t.join(
                e,
                or_(
                    and_(e.c.giver_id == t.c.low, e.c.receiver_id == t.c.high),
                    and_(e.c.giver_id == t.c.high, e.c.receiver_id == t.c.low),
                ),
            )
        )
        .where(e.c.timebank_id == TB, in_period(e), e.c.approved_at <= AS_OF, not_reversed_by(e))
        .group_by(t.c.low, t.c.high, month),
    ).cte("months")
    m = months.alias("m")
    corrections = (
        select(
            b.c.bucket,
            m.c.sign,
            m.c.low,
            m.c.high,
            func.bool_or(m.c.forth).label("forth"),
            func.bool_or(m.c.back).label("back"),
        )
        .select_from(m.join(b, m.c.month.between(b.c.first, b.c.last)))
        .group_by(b.c.bucket, m.c.sign, m.c.low, m.c.high)
        .cte("corrections")
    )
    c = corrections.alias("c")
    kinds = (
        values(column("kind", Text), column("included", Boolean), name="k")
        .data([("any", True), ("forth", c.c.forth), ("back", c.c.back)])
        .lateral()
    )
    counts = union_all(
        select(steps.c.bucket, steps.c.kind, steps.c.pairs),
        select(c.c.bucket, kinds.c.kind, c.c.sign)
        .select_from(c.join(kinds, true()))
        .where(kinds.c.included),
    ).cte("counts")

    def pairs_of(kind: str) -> Any:
        return func.sum(counts.c.pairs).filter(counts.c.kind == kind)

    return select(
        counts.c.bucket,
        pairs_of("any").label("ties"),
        (
            func.coalesce(pairs_of("forth"), 0)
            + func.coalesce(pairs_of("back"), 0)
            - func.coalesce(pairs_of("any"), 0)
        ).label("two_way_ties"),
    ).group_by(counts.c.bucket)


TIES = compiled(_ties())
TIES_BY_MONTHS = compiled(_ties_by_months())
