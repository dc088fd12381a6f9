"""The funder page: the contribution report for a chosen period, its charts and CSV download.
Funders get the funder view (aggregates, small cells withheld), which names nobody; the
charts and the CSV are the API's own, fetched with the same session."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from litestar import Controller, Response, get
from litestar.params import QueryParameter

from timebank.errors import ValidationFailed
from timebank.reports.charts import CHARTS
from timebank.web.deps import PageDep, ReportsDep

CHART_NAMES = {
    "series": "Hours exchanged and active people, by {interval}",
    "categories": "Hours by kind of help",
    "flows": "Hours by who gave and who received (members, professionals, organisations)",
}


def _day(text: str | None) -> tuple[date | None, str | None]:
    if not text:
        return None, None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return None, f"“{text}” is not a date; use the form 2026-01-31."


class ReportPages(Controller):
    path = "/t/{slug:str}"

    @get("/report")
    async def report(
        self,
        page: PageDep,
        reports: ReportsDep,
        start: Annotated[str | None, QueryParameter(name="from", max_length=20)] = None,
        end: Annotated[str | None, QueryParameter(name="to", max_length=20)] = None,
    ) -> Response:
        """The contribution report for the chosen whole closed month, quarter or year, as a
        funder sees it (by default the latest published quarter)."""
        access = page.access
        first, start_error = _day(start)
        last, end_error = _day(end)
        errors: dict[str, str | None] = {"from": start_error, "to": end_error}
        status = 422 if start_error or end_error else 200
        report = None
        if status == 200:
            try:
                report = await reports.contribution(access, start=first, end=last, view="funder")
            except ValidationFailed as error:
                key = str(error.extra.get("errors", [{}])[0].get("key", "from"))
                errors[key if key in errors else "from"] = error.detail
                status = 422
        if report is None:  # a period refused: say so, and show the default period instead
            report = await reports.contribution(access, view="funder")
        first, last = report.period.start, report.period.end
        query = urlencode(
            {"from": first.isoformat(), "to": last.isoformat(), "interval": report.interval}
        )
        api = f"/api/v1/timebanks/{access.timebank_slug}/reports/contribution"
        charts = [
            (
                f"{api}/charts/{name}.svg?{query}&view=funder",
                CHART_NAMES[name].format(interval=report.interval),
            )
            for name in CHARTS
        ]
        return await page.render(
            "report.html",
            status_code=status,
            report=report,
            start=start if status == 422 else first.isoformat(),
            end=end if status == 422 else last.isoformat(),
            errors=errors,
            charts=charts,
            csv_url=f"{api}?{query}&view=funder&format=csv",
        )
