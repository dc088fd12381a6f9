"""Reports for those allowed to see them: participant reciprocity (a member their own row,
coordinators and admins everyone's) and the timebank's contribution (coordinators, admins, and
funders of timebanks they are granted, who see aggregates with small cells suppressed)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import NotRequired, TypedDict, Unpack

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.auth.schemas import TimebankAccess
from timebank.db.transactions import transaction
from timebank.errors import Forbidden, ValidationFailed
from timebank.reports import publications, repository
from timebank.reports.assemble import assemble, reciprocity_row
from timebank.reports.buckets import buckets, default_period
from timebank.reports.csv_export import reciprocity_csv
from timebank.reports.frozen import first_published, frozen_periods, net_new
from timebank.reports.reciprocity_repository import (
    ReciprocityQuery,
    reciprocity_rows,
    stream_reciprocity_rows,
)
from timebank.reports.release import (
    PeriodKey,
    Release,
    cell_row,
    funder_period,
    funder_report,
    last_day,
    month_after,
    protect_release,
    release_at,
    row_cell,
    year_periods,
)
from timebank.reports.schemas import (
    ContributionReport,
    Interval,
    Period,
    ReciprocityReport,
    View,
)
from timebank.reports.suppression import Cell
from timebank.settings import Settings

MAX_PERIOD_DAYS = 366 * 10
# Reports cover service dates in these years; outside them a date is a typing slip.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)
PUBLICATIONS_KEPT = 256  # protected publications remembered, the oldest forgotten first


class ReciprocityAsk(TypedDict):
    """What a caller asks of the reciprocity report: the period (service dates, both ends
    included), as of when (by default the latest settled moment), and optionally one person."""

    start: date
    end: date
    as_of: NotRequired[datetime | None]
    participant_id: NotRequired[int | None]


class Reports:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._min_cell = settings.report_min_cell
        self._settle = timedelta(seconds=settings.report_settle_seconds)
        self._publish_after = timedelta(days=settings.report_publish_after_days)
        # (timebank, year, release, k) -> each period's figures as frozen, and the cells withheld
        self._publications: OrderedDict[
            tuple, tuple[dict[PeriodKey, ContributionReport], set[Cell]]
        ] = OrderedDict()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @staticmethod
    def _check_days(start: date | None, end: date | None) -> None:
        for name, day in (("from", start), ("to", end)):
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                raise ValidationFailed(
                    f"a report covers days from {FIRST_DAY} to {LAST_DAY}", field=name
                )

    @classmethod
    def _check_period(cls, start: date, end: date) -> None:
        cls._check_days(start, end)
        if start > end:
            raise ValidationFailed("the period ends before it starts", field="to")
        if (end - start).days > MAX_PERIOD_DAYS:
            raise ValidationFailed("a report covers at most ten years", field="from")

    def _as_of(self, requested: datetime | None, clock: datetime) -> datetime:
        latest = clock - self._settle
        if requested is None:
            return latest
        if requested.tzinfo is None:
            raise ValidationFailed(
                "as_of needs a time zone, e.g. 2026-11-26T12:00:00Z", field="as_of"
            )
        if not FIRST_DAY <= requested.date() <= LAST_DAY:
            raise ValidationFailed(
                f"as_of must fall between {FIRST_DAY} and {LAST_DAY}", field="as_of"
            )
        return min(requested, latest)

    async def reciprocity(
        self, access: TimebankAccess, **ask: Unpack[ReciprocityAsk]
    ) -> ReciprocityReport:
        """Each participant's giving and receiving over the period: members their own row,
        coordinators and admins everyone's (or one participant's)."""
        async with self._engine.connect() as conn:
            query = await self._reciprocity_query(conn, access, ask)
            rows = await reciprocity_rows(conn, query)
        return ReciprocityReport(
            timebank=access.timebank_slug,
            period=Period(start=query.start, end=query.end),
            as_of=query.as_of,
            rows=[reciprocity_row(row) for row in rows],
        )

    async def reciprocity_csv(
        self, access: TimebankAccess, **ask: Unpack[ReciprocityAsk]
    ) -> tuple[datetime, AsyncIterator[str]]:
        """The reciprocity report as CSV lines, streamed from a connection of its own (the
        request's own connection is gone once the response starts); and its as_of."""
        async with self._engine.connect() as conn:
            query = await self._reciprocity_query(conn, access, ask)

        async def lines() -> AsyncIterator[str]:
            async with self._engine.connect() as conn:
                await repository.begin_snapshot(conn)
                async for line in reciprocity_csv(stream_reciprocity_rows(conn, query)):
                    yield line

        return query.as_of, lines()

    async def _reciprocity_query(
        self, conn: AsyncConnection, access: TimebankAccess, ask: ReciprocityAsk
    ) -> ReciprocityQuery:
        """Whose rows the caller may read, over a checked period, as of a moment of the
        snapshot ``conn`` begins."""
        start, end = ask["start"], ask["end"]
        participant_id = ask.get("participant_id")
        if not access.can_manage:
            own = access.member_participant_id
            if own is None:
                raise Forbidden("the reciprocity report names people: members see their own row")
            if participant_id is not None and participant_id != own:
                raise Forbidden("members see their own row only")
            participant_id = own
        self._check_period(start, end)
        moment = self._as_of(ask.get("as_of"), await repository.begin_snapshot(conn))
        return ReciprocityQuery(access.timebank_id, start, end, moment, participant_id)

    async def contribution(
        self,
        access: TimebankAccess,
        *,
        start: date | None = None,
        end: date | None = None,
        as_of: datetime | None = None,
        interval: Interval = "month",
        view: View | None = None,
    ) -> ContributionReport:
        """What the timebank adds up to over the period, with a series by interval. Funders
        always get the funder view (``funder_contribution``); coordinators and admins may ask
        for it to preview it, under the same rules. The full view covers any period (by
        default twelve months up to today) as of any moment."""
        if access.can_manage:
            chosen: View = view or "full"
        elif access.is_funder:
            chosen = "funder"
        else:
            raise Forbidden("the contribution report is for coordinators and funders")
        if chosen == "funder":
            if as_of is not None:
                raise ValidationFailed(
                    "funder figures are as of their publication, not of a chosen moment",
                    field="as_of",
                )
            return await self.funder_contribution(access, start=start, end=end, interval=interval)
        default_start, default_end = default_period(datetime.now(UTC).date())
        start, end = start or default_start, end or default_end
        self._check_period(start, end)
        async with self._engine.connect() as conn:
            clock = await repository.begin_snapshot(conn)
            moment = self._as_of(as_of, clock)
            return await self._full(conn, access, start, end, moment, interval)

    async def _full(
        self,
        conn: AsyncConnection,
        access: TimebankAccess,
        start: date,
        end: date,
        moment: datetime,
        interval: Interval,
    ) -> ContributionReport:
        spans = buckets(start, end, interval)
        name = await repository.timebank_name(conn, access.timebank_id)
        parts = await repository.contribution_parts(
            conn,
            timebank_id=access.timebank_id,
            start=start,
            end=end,
            as_of=moment,
            unit=interval,
            bucket_starts=[first for first, _ in spans],
            bucket_lasts=[last for _, last in spans],
        )
        report = assemble(parts, spans)
        return ContributionReport(
            timebank=access.timebank_slug,
            timebank_name=name,
            period=Period(start=start, end=end),
            as_of=moment,
            interval=interval,
            view="full",
            min_cell=None,
            totals=report["totals"],
            series=report["series"],
            categories=report["categories"],
            flows=report["flows"],
        )

    async def release(self) -> Release:
        """The latest publication of funder figures (by the database's clock)."""
        async with self._engine.connect() as conn:
            clock = await repository.begin_snapshot(conn)
        return release_at(clock - self._settle, self._publish_after)

    async def funder_contribution(
        self,
        access: TimebankAccess,
        *,
        start: date | None = None,
        end: date | None = None,
        interval: str = "month",
        release: Release | None = None,
    ) -> ContributionReport:
        """The funder view of a whole closed calendar month, quarter or year of the latest
        publication (or ``release``; by default its latest quarter), frozen at its first
        publication: every published period of its calendar year, and the enrolment months up
        to it, are frozen and protected together, so that what any two requests show is
        consistent."""
        if not (access.can_manage or access.is_funder):
            raise Forbidden("the contribution report is for coordinators and funders")
        self._check_days(start, end)
        release = release or await self.release()
        key = funder_period(start, end, interval, release)
        k = self._min_cell
        publication = (access.timebank_id, key[1].year, release, k)
        # Figures as of a past moment never change, so a publication is frozen and protected
        # once per process; counting them again as of that moment costs a pass over everything
        # approved since.
        cached = self._publications.get(publication)
        if cached is not None and key in cached[0]:
            return funder_report(key, cached[0][key], cached[1], k)
        async with self._engine.connect() as conn:
            await repository.begin_snapshot(conn)
            base = await self._full(
                conn, access, key[1], last_day(key), self._moment(key, release), "month"
            )
            full, enrolled, people = await self._publication(conn, access, key, base, release)
        withheld = await self._protect(full, enrolled, people, access, release)
        self._publications[publication] = (full, withheld)
        while len(self._publications) > PUBLICATIONS_KEPT:
            self._publications.popitem(last=False)
        return funder_report(key, full[key], withheld, k)

    def _moment(self, key: PeriodKey, release: Release) -> datetime:
        """When a period's funder figures count: its first publication (never later than the
        publication asked for)."""
        return min(first_published(key, self._publish_after), release.as_of)

    async def _publication(
        self,
        conn: AsyncConnection,
        access: TimebankAccess,
        key: PeriodKey,
        base: ContributionReport,
        release: Release,
    ) -> tuple[
        dict[PeriodKey, ContributionReport],
        dict[date, tuple[int, int]],
        dict[Cell, int],
    ]:
        """Every published period of the key's calendar year (the key's own, ``base``, already
        counted), each counted as of its first publication and frozen, and the enrolment months
        up to the publication, each as first published: what is protected together."""
        bases: dict[PeriodKey, ContributionReport] = {key: base}
        for period in year_periods(key[1].year, release.through):
            if period in bases:
                continue
            bases[period] = await self._full(
                conn, access, period[1], last_day(period), self._moment(period, release), "month"
            )
        first = await repository.first_joined(conn, access.timebank_id, release.as_of)
        enrolment_months: list[date] = []
        cursor = max(first or key[1], FIRST_DAY).replace(day=1)
        while cursor <= release.through:
            enrolment_months.append(cursor)
            cursor = month_after(cursor)
        participants = await repository.enrolled_by_month(
            conn,
            access.timebank_id,
            firsts=enrolment_months,
            lasts=[last_day(("month", month)) for month in enrolment_months],
            as_ofs=[self._moment(("month", month), release) for month in enrolment_months],
        )
        new = net_new(participants)
        months = {p[1]: r for p, r in bases.items() if p[0] == "month"}
        longer = {p: r for p, r in bases.items() if p[0] != "month"}
        full, people = frozen_periods(months, longer, new)
        enrolled = {month: (count, new[month]) for month, count in participants.items()}
        return full, enrolled, people

    @transaction
    async def _protect(
        self,
        write: AsyncConnection,
        full: dict[PeriodKey, ContributionReport],
        enrolled: dict[date, tuple[int, int]],
        people: dict[Cell, int],
        access: TimebankAccess,
        release: Release,
    ) -> set[Cell]:
        """The cells a publication withholds, starting from what the timebank's earlier
        publications withheld and showed (one publication at a time); recorded before any is
        shown, in one transaction, so that no later publication can contradict it."""
        await publications.lock_publications(write, access.timebank_id)
        recorded = await publications.published_cells(write, access.timebank_id)
        earlier = {row_cell(row): value for row, value in recorded.items()}
        protection = protect_release(
            full, enrolled, release.through, self._min_cell, earlier, people
        )
        cells = {cell_row(cell): value for cell, value in protection.earlier().items()}
        changed = {
            row: value
            for row, value in cells.items()
            if row not in recorded or recorded[row] != value
        }
        if changed:
            await publications.record_published_cells(
                write, access.timebank_id, release.through, changed
            )
        return set(protection.withheld)
