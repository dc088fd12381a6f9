"""Funder figures frozen at their first publication (rules in the package docstring): a month
counts as of the moment it is first published; a quarter's and a year's sums are the sums of
their months as published, so no published figure ever changes and no two of them differ by
what was approved, reversed or enrolled late."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from timebank.reports.release import PeriodKey, last_day, month_after, months_of
from timebank.reports.schemas import Bucket, CategoryRow, ContributionReport, FlowRow, Metrics
from timebank.reports.suppression import KIND_CELLS, Cell, rests_on

R = TypeVar("R", CategoryRow, FlowRow)


def first_published(key: PeriodKey, publish_after: timedelta) -> datetime:
    """When a period is first published: with the month it ends in."""
    return datetime.combine(month_after(last_day(key)), time(), UTC) + publish_after


def net_new(participants: Mapping[date, int]) -> dict[date, int]:
    """New people in each month as funders see them: the people enrolled at the end of the
    month (as first published) less those at the end of the month before (as first published),
    so that late joiners of earlier months count in the month they were enrolled."""
    new: dict[date, int] = {}
    previous = 0
    for month in sorted(participants):
        new[month] = participants[month] - previous
        previous = participants[month]
    return new


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _share(part: int | None, whole: int | None) -> float:
    return round(part / whole, 4) if part is not None and whole else 0.0


def _with_new(metrics: Metrics, new: int) -> dict:
    return {"new": new, "new_share": _share(new, metrics.participants)}


def frozen_month(report: ContributionReport, new: int) -> ContributionReport:
    """A month as first published, with its new people counted as funders see them."""
    totals = report.totals.model_copy(update=_with_new(report.totals, new))
    series = [bucket.model_copy(update=_with_new(bucket, new)) for bucket in report.series]
    return report.model_copy(update={"totals": totals, "series": series})


def _summed_rows(
    base: Sequence[R], months: Iterable[Sequence[R]], label: Callable[[R], object]
) -> list[R]:
    """A longer period's category or flow rows: minutes and exchanges summed over its months
    as published; people (not a sum) as counted for the whole period when it was published."""
    rows: dict[object, R] = {label(row): row for row in base}
    minutes: dict[object, int] = {}
    exchanges: dict[object, int] = {}
    people: dict[object, int] = {}
    for month in months:
        for row in month:
            key = label(row)
            rows.setdefault(key, row)
            minutes[key] = minutes.get(key, 0) + (row.minutes or 0)
            exchanges[key] = exchanges.get(key, 0) + (row.exchanges or 0)
            people[key] = max(people.get(key, 0), row.people or 0)
    summed = []
    for key, row in rows.items():
        if not minutes.get(key) and not exchanges.get(key):
            continue
        whole = next((r.people for r in base if label(r) == key), None)
        summed.append(
            row.model_copy(
                update={
                    "minutes": minutes[key],
                    "hours": _hours(minutes[key]),
                    "exchanges": exchanges[key],
                    "people": whole if whole is not None else people[key],
                }
            )
        )
    return summed


def _summed_kinds(months: Sequence[ContributionReport]) -> dict[str, int | float]:
    """The figures of gifts, grants and sessions of a longer period: its months' sums (the
    people they rest on stay as counted for the whole period)."""
    summed: dict[str, int | float] = {}
    for _, names, _ in KIND_CELLS:
        for name in names:
            if name.endswith("_hours"):
                continue
            summed[name] = sum(getattr(m.totals, name) or 0 for m in months)
            if name.endswith("_minutes"):
                summed[name.removesuffix("_minutes") + "_hours"] = _hours(int(summed[name]))
    return summed


def frozen_longer(
    base: ContributionReport, months: Sequence[ContributionReport]
) -> ContributionReport:
    """A quarter or a year as first published: its sums (minutes, hours, exchanges, first
    exchanges, new people, by category and by flow) those of its months as published, its
    people enrolled its last month's, its series its months; what is not a sum (active,
    reciprocal, ties, people per row, the median) as counted when it was published."""
    totals = base.totals
    minutes = sum(m.totals.minutes or 0 for m in months)
    new = sum(m.totals.new or 0 for m in months)
    participants = months[-1].totals.participants
    update = {
        "minutes": minutes,
        "hours": _hours(minutes),
        "exchanges": sum(m.totals.exchanges or 0 for m in months),
        "first_exchanges": sum(m.totals.first_exchanges or 0 for m in months),
        "participants": participants,
        "new": new,
        "new_share": _share(new, participants),
        "active_share": _share(totals.active, participants),
        **_summed_kinds(months),
    }
    series: list[Bucket] = [bucket for m in months for bucket in m.series]
    return base.model_copy(
        update={
            "totals": totals.model_copy(update=update),
            "series": series,
            "categories": _summed_rows(
                base.categories, (m.categories for m in months), lambda r: r.category
            ),
            "flows": _summed_rows(
                base.flows, (m.flows for m in months), lambda r: (r.giver_kind, r.receiver_kind)
            ),
        }
    )


def fewest_people(
    frozen: Mapping[PeriodKey, ContributionReport], longer: Mapping[PeriodKey, ContributionReport]
) -> dict[Cell, int]:
    """For each sum of a quarter or a year whose own count (``longer``, made at its
    publication) differs from its months as published, the fewest people it may rest on: the
    most of any one of its months. Its own count of people then includes people whose late
    exchanges the sum leaves out, so it alone must not decide that the sum rests on enough
    people. A sum equal to its own count is judged by its own count of people."""
    fewest: dict[Cell, int] = {}
    for key, base in longer.items():
        months = [frozen[("month", m)] for m in months_of(key)]
        summed = frozen[key]
        if (base.totals.minutes, base.totals.exchanges) != (
            summed.totals.minutes,
            summed.totals.exchanges,
        ):
            fewest[("volume", key)] = max((m.totals.active or 0 for m in months), default=0)
        for figure, names, _ in KIND_CELLS:
            if any(getattr(base.totals, n) != getattr(summed.totals, n) for n in names):
                fewest[(figure, key)] = max((rests_on(m.totals, figure) for m in months), default=0)
        for name, rows, label in (
            ("category", lambda r: r.categories, lambda row: row.category),
            ("flow", lambda r: r.flows, lambda row: f"{row.giver_kind}>{row.receiver_kind}"),
        ):
            own = {label(row): (row.minutes, row.exchanges) for row in rows(base)}
            for row in rows(summed):
                if own.get(label(row)) == (row.minutes, row.exchanges):
                    continue
                fewest[(name, key, label(row))] = max(
                    (r.people or 0 for m in months for r in rows(m) if label(r) == label(row)),
                    default=0,
                )
    return fewest


def frozen_periods(
    months: Mapping[date, ContributionReport],
    longer: Mapping[PeriodKey, ContributionReport],
    new: Mapping[date, int],
) -> tuple[dict[PeriodKey, ContributionReport], dict[Cell, int]]:
    """Every published period of a year as first published: ``months`` and ``longer`` (its
    quarters and the year) each counted as of its own first publication, ``new`` the new people
    of each month as funders see them; and for the sums of ``longer``, the fewest people each
    may rest on (``fewest_people``)."""
    frozen: dict[PeriodKey, ContributionReport] = {
        ("month", month): frozen_month(report, new.get(month, 0))
        for month, report in months.items()
    }
    for key, base in longer.items():
        frozen[key] = frozen_longer(base, [frozen[("month", m)] for m in months_of(key)])
    return frozen, fewest_people(frozen, longer)
