"""Reports over HTTP: JSON, CSV (``Accept: text/csv`` or ``?format=csv``) and SVG charts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeAlias

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream

from timebank.auth.schemas import TimebankAccess
from timebank.deps import AccessDep
from timebank.errors import NotFound
from timebank.openapi import MAX_ID, problems
from timebank.reports.buckets import default_period
from timebank.reports.charts import CHARTS, draw
from timebank.reports.csv_export import contribution_csv
from timebank.reports.schemas import ContributionReport, Interval, ReciprocityReport, View
from timebank.reports.service import Reports

CSV = "text/csv"  # Litestar adds "; charset=utf-8" to every text/ type
SVG = "image/svg+xml"


ReportsDep: TypeAlias = NamedDependency[Reports]
From: TypeAlias = Annotated[
    date | None,
    QueryParameter(name="from", description="first service date (default: 12 months ago)"),
]
To: TypeAlias = Annotated[
    date | None, QueryParameter(name="to", description="last service date (default: today)")
]
AsOf: TypeAlias = Annotated[
    datetime | None,
    QueryParameter(
        description="count what was recorded by this moment (default: now); not for the "
        "funder view, which is as of its publication"
    ),
]
Format: TypeAlias = Annotated[
    Literal["json", "csv"] | None, QueryParameter(description="csv, or send Accept: text/csv")
]


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _period(start: date | None, end: date | None) -> tuple[date, date]:
    default_start, default_end = default_period(datetime.now(UTC).date())
    return start or default_start, end or default_end


def _csv(
    body: str | AsyncIterator[str],
    kind: str,
    access: TimebankAccess,
    period: tuple[date, date],
    as_of: datetime,
) -> Response[Any]:
    """A CSV download of ``body`` (bytes or an iterator of lines), named after the report."""
    start, end = period
    name = f"{access.timebank_slug}-{kind}-{start.isoformat()}-{end.isoformat()}.csv"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Report-As-Of": as_of.isoformat(),
    }
    response = Stream if isinstance(body, AsyncIterator) else Response
    return response(body, media_type=CSV, headers=headers)


# The reports answer JSON, or CSV when asked (Accept: text/csv or ?format=csv).
_DOWNLOADABLE: dict[str, Any] = {
    "responses": problems(400, 401, 403, 404, 422),
    "opt": {"csv": True},
}


class ReportsController(Controller):
    path = "/api/v1/timebanks/{slug:str}/reports"
    tags = ["reports"]

    @get("/reciprocity", summary="Reciprocity of each participant", **_DOWNLOADABLE)
    async def reciprocity(
        self,
        request: Request,
        access: AccessDep,
        reports: ReportsDep,
        start: From = None,
        end: To = None,
        as_of: AsOf = None,
        participant_id: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
        format: Format = None,
    ) -> Response[ReciprocityReport]:
        """Given and received minutes, exchanges, partners and reciprocity of each participant
        over the period (by service date). Members see their own row; coordinators everyone's.
        """
        first, last = _period(start, end)
        if _wants_csv(request, format):
            moment, lines = await reports.reciprocity_csv(
                access, start=first, end=last, as_of=as_of, participant_id=participant_id
            )
            return _csv(lines, "reciprocity", access, (first, last), moment)
        report = await reports.reciprocity(
            access, start=first, end=last, as_of=as_of, participant_id=participant_id
        )
        return Response(report)

    @get("/contribution", summary="What the timebank adds up to", **_DOWNLOADABLE)
    async def contribution(
        self,
        request: Request,
        access: AccessDep,
        reports: ReportsDep,
        start: From = None,
        end: To = None,
        as_of: AsOf = None,
        interval: Annotated[Interval, QueryParameter()] = "month",
        view: Annotated[View | None, QueryParameter(description="funder: preview it")] = None,
        format: Format = None,
    ) -> Response[ContributionReport]:
        """Hours, exchanges, active, new and reciprocal participants, two-way ties, days to a
        first exchange, hours by category and by flow between kinds, for the period and by
        interval. Funders get aggregates with small cells suppressed, for a whole closed
        month, quarter or year (by default the latest published quarter), as of its
        publication: they may not send as_of."""
        report = await reports.contribution(
            access, start=start, end=end, as_of=as_of, interval=interval, view=view
        )
        if _wants_csv(request, format):
            period = (report.period.start, report.period.end)
            return _csv(contribution_csv(report), "contribution", access, period, report.as_of)
        return Response(report)

    @get(
        "/contribution/charts/{file:str}",
        summary="A chart of the contribution report (SVG)",
        media_type=SVG,
        responses=problems(400, 401, 403, 404, 422),
    )
    async def chart(
        self,
        access: AccessDep,
        reports: ReportsDep,
        file: Annotated[str, PathParameter(description="series.svg, categories.svg or flows.svg")],
        start: From = None,
        end: To = None,
        as_of: AsOf = None,
        interval: Annotated[Interval, QueryParameter()] = "month",
        view: Annotated[View | None, QueryParameter()] = None,
    ) -> Response[bytes]:
        """The series, the categories or the flows of the contribution report, as SVG."""
        name = file.removesuffix(".svg")
        if not file.endswith(".svg") or name not in CHARTS:
            raise NotFound(f"no chart {file!r}; there are {', '.join(c + '.svg' for c in CHARTS)}")
        report = await reports.contribution(
            access, start=start, end=end, as_of=as_of, interval=interval, view=view
        )
        return Response(draw(name, report), media_type=SVG)


ROUTES: list = [ReportsController]
