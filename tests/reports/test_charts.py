"""The charts drawn from reports made by hand: what a chart with every figure withheld says,
and that what is shown is labelled for people (months by name, the timebank by its name)."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime

import pytest

from timebank.reports.buckets import buckets
from timebank.reports.charts import CHARTS, draw
from timebank.reports.schemas import (
    METRICS,
    Bucket,
    CategoryRow,
    ContributionReport,
    FlowRow,
    Metrics,
    Period,
)

START, END = date(2025, 11, 1), date(2026, 4, 30)


def _figures(active: int, k: int = 5) -> dict:
    figures: dict = dict.fromkeys(METRICS, 0)
    figures.update(minutes=active * 90, hours=active * 1.5, active=active, participants=20)
    if active < k:
        figures.update(dict.fromkeys(METRICS, None), participants=20, suppressed=["active"])
    return figures


def _report(active_by_month: list[int], people_per_row: int) -> ContributionReport:
    spans = buckets(START, END, "month")
    shown = people_per_row >= 5
    hours = 6.5 if shown else None
    return ContributionReport(
        timebank="tb-slug-x1",
        timebank_name="Riverside Timebank",
        period=Period(start=START, end=END),
        as_of=datetime(2026, 5, 1, tzinfo=UTC),
        interval="month",
        view="funder",
        min_cell=5,
        totals=Metrics(**_figures(sum(active_by_month))),
        series=[
            Bucket(start=first, end=last, **_figures(active))
            for (first, last), active in zip(spans, active_by_month, strict=True)
        ],
        categories=[
            CategoryRow(
                category="lifts",
                name="Lifts",
                minutes=390 if shown else None,
                hours=hours,
                exchanges=4 if shown else None,
                people=people_per_row if shown else None,
                suppressed=[] if shown else ["minutes", "hours", "exchanges", "people"],
            )
        ],
        flows=[
            FlowRow(
                giver_kind="member",
                receiver_kind="organisation",
                minutes=390 if shown else None,
                hours=hours,
                exchanges=4 if shown else None,
                people=people_per_row if shown else None,
                suppressed=[] if shown else ["minutes", "hours", "exchanges", "people"],
            )
        ],
    )


def words(svg: bytes) -> str:
    """The chart's text as a reader sees it: its <text> elements, lines joined by spaces."""
    return " ".join(
        html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg.decode())
    )


@pytest.mark.parametrize("chart", CHARTS)
def test_a_chart_whose_every_figure_is_withheld_says_so(chart):
    text = words(draw(chart, _report([2, 3, 4, 1, 0, 2], people_per_row=3)))
    assert text.startswith("Riverside Timebank ")
    assert "Withheld: " in text and "fewer than 5 people" in text
    assert "tb-slug-x1" not in text


def test_the_series_names_months_and_counts_what_it_withheld():
    text = words(draw("series", _report([2, 6, 7, 8, 0, 9], people_per_row=6)))
    assert "Nov 2025 Dec Jan 2026 Feb Mar Apr" in text
    assert "2025-11-01" not in text
    assert "2 months withheld" in text and "Withheld:" not in text


def test_shown_rows_are_drawn_with_their_hours():
    report = _report([6, 6, 6, 6, 6, 6], people_per_row=6)
    categories = words(draw("categories", report))
    flows = words(draw("flows", report))
    assert "Lifts" in categories and "6.5" in categories and "withheld" not in categories
    assert "members → organisations" in flows and "withheld" not in flows
