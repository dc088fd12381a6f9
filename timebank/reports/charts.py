"""Charts of the contribution report as SVG, drawn by matplotlib, ready for the web pages.
Suppressed figures are not drawn; the chart says how many were withheld."""

from __future__ import annotations

import io

# The object-oriented API only (no pyplot): no global figure state, safe in a server.
from matplotlib.figure import Figure

from timebank.reports.schemas import ContributionReport

CHARTS = ("series", "categories", "flows")

_INK = "#1f3a5f"
_ACCENT = "#e07a1f"


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    return buffer.getvalue()


def _note_withheld(axes, withheld: int) -> None:
    if withheld:
        axes.annotate(
            f"{withheld} figure(s) withheld: fewer people than the reporting threshold",
            xy=(0, -0.22),
            xycoords="axes fraction",
            fontsize=8,
            color="#555555",
        )


def series_chart(report: ContributionReport) -> bytes:
    labels = [bucket.start.isoformat() for bucket in report.series]
    hours = [bucket.hours or 0 for bucket in report.series]
    active = [bucket.active for bucket in report.series]
    figure = Figure(figsize=(8, 3.6))
    axes = figure.subplots()
    axes.bar(labels, hours, color=_INK, label="hours exchanged")
    axes.set_ylabel("hours")
    axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    people = axes.twinx()
    people.plot(
        labels,
        [a if a is not None else float("nan") for a in active],
        color=_ACCENT,
        marker="o",
        label="active people",
    )
    people.set_ylabel("active people")
    axes.set_title(f"{report.timebank}: hours and active people by {report.interval}")
    withheld = sum(len(bucket.suppressed) > 0 for bucket in report.series)
    _note_withheld(axes, withheld)
    return _svg(figure)


def categories_chart(report: ContributionReport) -> bytes:
    shown = [row for row in report.categories if row.hours is not None]
    figure = Figure(figsize=(8, 0.45 * max(len(shown), 2) + 1))
    axes = figure.subplots()
    axes.barh(
        [row.name for row in shown][::-1], [row.hours or 0.0 for row in shown][::-1], color=_INK
    )
    axes.set_xlabel("hours")
    axes.set_title(f"{report.timebank}: hours by category")
    _note_withheld(axes, len(report.categories) - len(shown))
    return _svg(figure)


def flows_chart(report: ContributionReport) -> bytes:
    shown = [row for row in report.flows if row.hours is not None]
    figure = Figure(figsize=(8, 0.45 * max(len(shown), 2) + 1))
    axes = figure.subplots()
    labels = [f"{row.giver_kind} → {row.receiver_kind}" for row in shown]
    axes.barh(labels[::-1], [row.hours or 0.0 for row in shown][::-1], color=_ACCENT)
    axes.set_xlabel("hours")
    axes.set_title(f"{report.timebank}: hours by flow (who gave → who received)")
    _note_withheld(axes, len(report.flows) - len(shown))
    return _svg(figure)


def draw(name: str, report: ContributionReport) -> bytes:
    return {"series": series_chart, "categories": categories_chart, "flows": flows_chart}[name](
        report
    )
