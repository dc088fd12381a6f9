"""What a funder may ask for and when it is published (rules in the package docstring): whole
calendar months, quarters and years that have closed, counted as of one publication moment
that the funder cannot choose; and the tables of one publication, protected as a whole."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from timebank.errors import ValidationFailed
from timebank.reports.schemas import CategoryRow, ContributionReport, FlowRow
from timebank.reports.suppression import (
    KIND_CELLS,
    VOLUME,
    Cell,
    Relation,
    Table,
    protect,
    rests_on,
    suppress_metrics,
    suppress_row,
)

Kind = Literal["month", "quarter", "year"]
PeriodKey = tuple[Kind, date]  # a period by its kind and first day


@dataclass(frozen=True)
class Release:
    """One publication: every funder figure counts as of ``as_of``, and covers months up to
    ``through`` (the last day of the last month published)."""

    as_of: datetime
    through: date


def month_after(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_before(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def last_day(key: PeriodKey) -> date:
    kind, first = key
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    cursor = first
    for _ in range(months):
        cursor = month_after(cursor)
    return cursor - timedelta(days=1)


def release_at(latest: datetime, publish_after: timedelta) -> Release:
    """The latest publication at or before ``latest``: months are published together, once a
    month, ``publish_after`` after the first moment of the next month (time for late entries
    to be approved); each publication counts as of its own moment."""
    month = latest.astimezone(UTC).date().replace(day=1)
    moment = datetime.combine(month, time(), UTC) + publish_after
    if moment > latest:
        month = month_before(month)
        moment = datetime.combine(month, time(), UTC) + publish_after
    return Release(as_of=moment, through=month - timedelta(days=1))


def period_key(start: date, end: date) -> PeriodKey | None:
    """The whole calendar month, quarter or year from ``start`` to ``end``, if it is one."""
    if start.day != 1:
        return None
    for kind in ("month", "quarter", "year"):
        key: PeriodKey = (kind, start)  # type: ignore[assignment]
        if kind == "quarter" and start.month % 3 != 1:
            continue
        if kind == "year" and start.month != 1:
            continue
        if last_day(key) == end:
            return key
    return None


def funder_period(
    start: date | None, end: date | None, interval: str, release: Release
) -> PeriodKey:
    """The period a funder asked for, refused unless it is a whole closed period of this
    publication and the series is by month; by default the latest published quarter."""
    if interval != "month":
        raise ValidationFailed("funder figures are given by month", field="interval")
    if start is None and end is None:
        last = release.through
        end_month, year = last.month - last.month % 3, last.year
        if end_month == 0:
            end_month, year = 12, year - 1
        return ("quarter", date(year, end_month - 2, 1))
    if start is None or end is None:
        raise ValidationFailed(
            "funder figures cover a whole month, quarter or year: give both from and to",
            field="from" if start is None else "to",
        )
    if start > end:
        raise ValidationFailed("the period ends before it starts", field="to")
    key = period_key(start, end)
    if key is None:
        raise ValidationFailed(
            "funder figures are published for whole calendar months, quarters and years, "
            "e.g. from 2026-01-01 to 2026-03-31",
            field="from",
        )
    if end > release.through:
        raise ValidationFailed(
            f"not published yet: the latest published month ends on {release.through}",
            field="to",
        )
    return key


def year_periods(year: int, through: date) -> list[PeriodKey]:
    """The published months, quarters and the year of a calendar year."""
    keys: list[PeriodKey] = []
    for month in range(1, 13):
        keys.append(("month", date(year, month, 1)))
        if month % 3 == 1:
            keys.append(("quarter", date(year, month, 1)))
    keys.append(("year", date(year, 1, 1)))
    return [key for key in keys if last_day(key) <= through]


def months_of(key: PeriodKey) -> list[date]:
    months, cursor, last = [], key[1], last_day(key)
    while cursor <= last:
        months.append(cursor)
        cursor = month_after(cursor)
    return months


def _children(key: PeriodKey) -> list[PeriodKey]:
    kind, first = key
    if kind == "year":
        return [("quarter", date(first.year, month, 1)) for month in (1, 4, 7, 10)]
    if kind == "quarter":
        return [("month", month) for month in months_of(key)]
    return []


# The minutes of a period outside its group sessions: a cell the suppression reasons with (the
# total less the sessions' minutes), never published.
OUTSIDE_SESSIONS = "outside_sessions"


def volume_table(
    full: Mapping[PeriodKey, ContributionReport], k: int, people: Mapping[Cell, int] | None = None
) -> Table:
    """The additive figures of one calendar year's published periods: minutes (and with them
    hours and exchanges) in all, by category and by flow; first exchanges; minutes gifted,
    gifted to the pot, granted and in sessions. Relations: each period's total is the sum of
    its categories and of its flows; a quarter is the sum of its months and a year of its
    quarters, in all, per category, per flow, for first exchanges and for each of the others.
    ``people``: for a cell whose report counts more people than its figure may rest on (a sum
    of months as published), the fewest it may rest on."""
    table = Table()
    fewest = people or {}
    for key, report in full.items():
        totals = report.totals
        volume = ("volume", key)
        table.add(volume, totals.minutes or 0, min(totals.active or 0, fewest.get(volume, k)) < k)
        table.add(("firsts", key), totals.first_exchanges or 0, (totals.first_exchanges or 0) < k)
        for figure, _, minutes in KIND_CELLS:
            kind_cell = (figure, key)
            small = min(rests_on(totals, figure), fewest.get(kind_cell, k)) < k
            table.add(kind_cell, getattr(totals, minutes) or 0, small)
        # Minutes outside group sessions: never published, but the total less the sessions'
        # (a funder can subtract); it rests on the people of the other exchanges, at least
        # those active beyond the sessions' people (fewer than k: withheld, so that neither
        # the total nor the sessions give it away).
        outside = (OUTSIDE_SESSIONS, key)
        beside = (totals.active or 0) - totals.session_people
        table.add(outside, (totals.minutes or 0) - (totals.session_minutes or 0), beside < k)
        table.relations.append(Relation(volume, (("sessions", key), outside)))
        categories = [("category", key, row.category) for row in report.categories]
        flows = [("flow", key, f"{row.giver_kind}>{row.receiver_kind}") for row in report.flows]
        rows: list[CategoryRow | FlowRow] = [*report.categories, *report.flows]
        for cell, row in zip(categories + flows, rows, strict=True):
            table.add(cell, row.minutes or 0, min(row.people or 0, fewest.get(cell, k)) < k)
        table.relations.append(Relation(("volume", key), tuple(categories)))
        table.relations.append(Relation(("volume", key), tuple(flows)))
    for key in full:
        children = _children(key)
        if not children or not all(child in full for child in children):
            continue
        for name in (
            "volume",
            "firsts",
            OUTSIDE_SESSIONS,
            *(figure for figure, _, _ in KIND_CELLS),
        ):
            table.relations.append(Relation((name, key), tuple((name, c) for c in children)))
        for name in ("category", "flow"):
            labels = {
                cell[2]
                for cell in table.values
                if isinstance(cell, tuple) and cell[0] == name and cell[1] == key
            }
            for label in sorted(labels):
                parts = tuple(
                    (name, child, label)
                    for child in children
                    if (name, child, label) in table.values  # absent: known to be 0
                )
                table.relations.append(Relation((name, key, label), parts))
    return table


def enrolment_table(enrolled: Mapping[date, tuple[int, int]], through: date, k: int) -> Table:
    """Participants enrolled at the end of each month and new in it, from the first month
    given (the count before it taken as known) to ``through``: enrolled(m) = enrolled(m-1) +
    new(m); new in a quarter or year is the sum of its months."""
    table = Table()
    months = sorted(m for m in enrolled if m <= through)
    for n, month in enumerate(months):
        participants, new = enrolled[month]
        table.add(("enrolled", month), participants, participants < k)
        table.add(("new", ("month", month)), new, new < k)
        parts: tuple[Cell, ...] = (("new", ("month", month)),)
        if n:
            parts = (("enrolled", months[n - 1]), *parts)
        table.relations.append(Relation(("enrolled", month), parts))
    years = sorted({m.year for m in months})
    for year in years:
        for key in year_periods(year, through):
            if key[0] == "month" or not all(m in enrolled for m in months_of(key)):
                continue
            new = sum(enrolled[m][1] for m in months_of(key))
            table.add(("new", key), new, new < k)
            table.relations.append(
                Relation(("new", key), tuple(("new", child) for child in _children(key)))
            )
    return table


@dataclass(frozen=True)
class Protection:
    """Every cell of one publication's tables: those withheld, and those shown with their
    values."""

    withheld: frozenset[Cell]
    shown: Mapping[Cell, int]

    def earlier(self) -> dict[Cell, int | None]:
        """The cells as the next publication starts from them: cell -> the value shown, None
        for withheld."""
        return {**dict(self.shown), **dict.fromkeys(self.withheld)}


def protect_release(
    full: Mapping[PeriodKey, ContributionReport],
    enrolled: Mapping[date, tuple[int, int]],
    through: date,
    k: int,
    earlier: Mapping[Cell, int | None] | None = None,
    people: Mapping[Cell, int] | None = None,
) -> Protection:
    """Every cell to withhold in one calendar year's published periods (and the enrolment
    months given): primary and complementary suppression, starting from what earlier
    publications withheld (``earlier``: cell -> the value shown, None for withheld). A cell
    shown before with the value it has now is known to the funder and never chosen to hide
    another; one whose value has changed since (a late approval, a late joiner) is not.
    ``people``: as for ``volume_table``."""
    earlier = earlier or {}
    withheld_before = {cell for cell, value in earlier.items() if value is None}
    withheld: set[Cell] = set()
    shown: dict[Cell, int] = {}
    for table in (volume_table(full, k, people), enrolment_table(enrolled, through, k)):
        shown_before = {
            cell
            for cell, value in earlier.items()
            if value is not None and table.values.get(cell) == value
        }
        hidden = protect(table, withheld_before, shown_before)
        withheld |= hidden
        shown.update((cell, v) for cell, v in table.values.items() if cell not in hidden)
    published = {cell for cell in shown.keys() | withheld if _published(cell)}
    return Protection(
        withheld=frozenset(withheld & published),
        shown={cell: v for cell, v in shown.items() if cell in published},
    )


def _published(cell: Cell) -> bool:
    """Whether a cell is one a funder is shown (or told is withheld): not those only the
    suppression reasons with (``OUTSIDE_SESSIONS``)."""
    return not (isinstance(cell, tuple) and cell[0] == OUTSIDE_SESSIONS)


def cell_row(cell: Cell) -> tuple[str, str, date, str]:
    """A cell as it is recorded: (figure, period kind, period start, label)."""
    parts: tuple[Any, ...] = cell  # type: ignore[assignment]  # cells are tuples
    if parts[0] == "enrolled":  # people enrolled at the end of a month
        return ("enrolled", "month", parts[1], "")
    figure, (kind, start), *label = parts
    return (figure, kind, start, label[0] if label else "")


def row_cell(row: tuple[str, str, date, str]) -> Cell:
    """The cell a recorded row stands for (the inverse of ``cell_row``)."""
    figure, kind, start, label = row
    if figure == "enrolled":
        return ("enrolled", start)
    if figure in ("category", "flow"):
        return (figure, (kind, start), label)
    return (figure, (kind, start))


def funder_report(
    key: PeriodKey, report: ContributionReport, withheld: Collection[Cell], k: int
) -> ContributionReport:
    """The funder view of one period's full report, given the withheld cells of its
    publication."""

    def hidden(period: PeriodKey) -> set[str]:
        also: set[str] = set()
        if ("volume", period) in withheld:
            also |= set(VOLUME)
        if ("firsts", period) in withheld:
            also.add("first_exchanges")
        if ("new", period) in withheld:
            also.add("new")
        if ("enrolled", months_of(period)[-1]) in withheld:
            also.add("participants")
        for figure, names, _ in KIND_CELLS:
            if (figure, period) in withheld:
                also |= set(names)
        return also

    return report.model_copy(
        update={
            "view": "funder",
            "min_cell": k,
            "totals": suppress_metrics(report.totals, k, hidden(key)),
            "series": [suppress_metrics(b, k, hidden(("month", b.start))) for b in report.series],
            "categories": [
                suppress_row(row, k, ("category", key, row.category) in withheld)
                for row in report.categories
            ],
            "flows": [
                suppress_row(
                    row, k, ("flow", key, f"{row.giver_kind}>{row.receiver_kind}") in withheld
                )
                for row in report.flows
            ],
        }
    )
