"""Charts of the contribution report as SVG, drawn by matplotlib, ready for the web pages.

They are read on phones: a figure about as wide as a phone's screen, so the SVG is shown at
roughly its own size and its text stays legible; text kept as text (searchable, and read by
the same font as the page); months named as people name them ("Nov 2025"). Suppressed
figures are not drawn (a withheld month has no bar, not a zero one); the chart says how many
were withheld. A chart with nothing to draw says so in words instead of showing empty axes."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import matplotlib

# The object-oriented API only (no pyplot): no global figure state, safe in a server.
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from timebank.reports.schemas import CategoryRow, ContributionReport, FlowRow

CHARTS = ("series", "categories", "flows")

_INK = "#1f3a5f"
_ACCENT = "#e07a1f"
_MUTED = "#555555"
_GRID = "#d9dde3"

# Inches: 4.2 in is 302 pt (403 px), a little wider than a phone gives the image (about
# 350 px), so text is drawn at about nine tenths of its size there: 11 pt is about 12 px.
_WIDTH = 4.2
_TITLE = 13
_LABEL = 12
_TICK = 11
_NOTE = 10

_STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",  # real <text>: crisp at any scale, and says what it shows
    "svg.hashsalt": "timebank",  # the same report draws the same bytes
    "font.family": "sans-serif",
}

_FLOW_KINDS = {
    "member": "members",
    "professional": "professionals",
    "organisation": "organisations",
}


def _svg(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _figure(height: float) -> Figure:
    with matplotlib.rc_context(_STYLE):
        # Constrained layout keeps every label inside the figure, so the figure's width is
        # the SVG's width and nothing makes it shrink on the page.
        return Figure(figsize=(_WIDTH, height), layout="constrained")


def _literal(text: str) -> str:
    """A name drawn as typed: a `$` escaped, so that `$...$` is not read as mathtext."""
    return text.replace("$", r"\$")


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _title(figure: Figure, report: ContributionReport, what: str) -> None:
    figure.suptitle(
        f"{_literal(report.timebank_name)}\n{what}",
        x=0.02,
        ha="left",
        fontsize=_TITLE,
        color=_INK,
        fontweight="bold",
        linespacing=1.4,
    )


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _note(figure: Figure, text: str) -> None:
    """A note under the chart, in room kept free for it below the axes."""
    wrapped = _wrap(text, 56)
    room = (wrapped.count("\n") + 1) * _NOTE * 1.35 / 72 + 0.08  # inches
    height = figure.get_figheight()
    figure.set_figheight(height + room)
    share = room / (height + room)
    engine = figure.get_layout_engine()
    assert isinstance(engine, ConstrainedLayoutEngine)
    engine.set(rect=(0, share, 1, 1 - share))
    figure.text(0.02, 0.01, wrapped, fontsize=_NOTE, color=_MUTED, va="bottom")


def _withheld(report: ContributionReport, count: int, of: tuple[str, str], why: str) -> str:
    return (
        f"{_plural(count, of[0], of[1])} withheld: "
        f"{why} fewer than {report.min_cell} people, so nobody can be picked out."
    )


def _empty(report: ContributionReport, what: str, message: str) -> bytes:
    """A chart with nothing to draw: its title and a sentence saying why, no axes."""
    figure = _figure(1.6)
    _title(figure, report, what)
    figure.text(0.02, 0.3, _wrap(message, 44), va="center", fontsize=_LABEL, color=_MUTED)
    return _svg(figure)


def _month_labels(starts: list[date]) -> list[str]:
    """ "Nov" under a month, every other month when there are more than seven (so they never
    overlap on a phone); its year under the first shown and wherever the year changes. A first
    December leaves its year to the January after it (years side by side collide)."""
    step = 1 if len(starts) <= 7 else -(-len(starts) // 7)
    shown = [n for n in range(len(starts)) if (len(starts) - 1 - n) % step == 0]
    labels = [""] * len(starts)
    previous: date | None = None
    for n in shown:
        day = starts[n]
        if previous is None:
            year = not (day.month == 12 and len(shown) > 1)
        else:
            year = day.year != previous.year
        labels[n] = day.strftime("%b\n%Y") if year else day.strftime("%b")
        previous = day
    return labels


def _bucket_labels(report: ContributionReport) -> list[str]:
    starts = [bucket.start for bucket in report.series]
    if report.interval == "quarter":
        return _thin([f"Q{(d.month - 1) // 3 + 1}\n{d.year}" for d in starts], 7)
    if report.interval == "week":
        return _thin([f"{d.day} {d:%b}" for d in starts], 6)
    return _month_labels(starts)


def _thin(labels: Sequence[str], most: int) -> list[str]:
    """Every nth label only, counted back from the latest, so that they never overlap on a
    phone."""
    step = max(1, -(-len(labels) // most))
    last = len(labels) - 1
    return [label if (last - n) % step == 0 else "" for n, label in enumerate(labels)]


def _number(value: float) -> str:
    return f"{value:,.1f}".removesuffix(".0")


def _shown_bars(
    axes: Axes, positions: list[int], values: Sequence[float | None], color: str
) -> None:
    """A bar at each position whose value is shown (withheld values leave a gap)."""
    shown = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None]
    axes.bar([p for p, _ in shown], [v for _, v in shown], color=color, width=0.7)


def series_chart(report: ContributionReport) -> bytes:
    interval = report.interval
    what = f"Hours and active people, by {interval}"
    shown = [bucket for bucket in report.series if bucket.hours is not None and bucket.hours > 0]
    if not shown:
        if report.view == "funder" and any(bucket.suppressed for bucket in report.series):
            return _empty(
                report,
                what,
                f"Withheld: fewer than {report.min_cell} people took part in any one {interval}",
            )
        return _empty(report, what, "No exchanges in this period")
    positions = list(range(len(report.series)))
    labels = _bucket_labels(report)
    figure = _figure(4.6)
    hours_axes, people_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    hours = [bucket.hours for bucket in report.series]
    active = [bucket.active for bucket in report.series]
    _shown_bars(hours_axes, positions, hours, _INK)
    hours_axes.set_ylabel("hours", fontsize=_LABEL)
    _shown_bars(people_axes, positions, active, _ACCENT)
    people_axes.set_ylabel("active\npeople", fontsize=_LABEL)
    people_axes.yaxis.get_major_locator().set_params(integer=True)
    for axes in (hours_axes, people_axes):
        _tidy(axes, "y")
        axes.set_ylim(bottom=0)
    people_axes.set_xticks(positions, labels)
    people_axes.tick_params(axis="x", labelsize=_TICK, length=0)
    for tick, bucket in zip(people_axes.get_xticklabels(), report.series, strict=True):
        if bucket.hours is None:
            tick.set_color("#999999")
    _title(figure, report, what)
    figure.align_ylabels([hours_axes, people_axes])
    withheld = sum(bucket.hours is None or bucket.active is None for bucket in report.series)
    if withheld:
        _note(
            figure,
            _withheld(
                report,
                withheld,
                (interval, f"{interval}s"),
                "no bars (grey labels) where a figure rests on",
            ),
        )
    return _svg(figure)


def _tidy(axes: Axes, values: Literal["x", "y"]) -> None:
    axes.tick_params(labelsize=_TICK)
    axes.spines[["top", "right"]].set_visible(False)
    axes.spines[["bottom", "left"]].set_color("#888888")
    axes.grid(axis=values, color=_GRID, linewidth=0.8)
    axes.set_axisbelow(True)


def _bars(
    report: ContributionReport,
    what: str,
    labels: list[str],
    hours: list[float],
    color: str,
    note: str | None,
) -> bytes:
    """Horizontal bars, largest first, each with its hours written at its end."""
    rows = sorted(zip(labels, hours, strict=True), key=lambda row: row[1], reverse=True)
    wrapped = [_wrap(label, 18) for label, _ in rows]
    lines = sum(label.count("\n") + 1 for label in wrapped)
    figure = _figure(1.3 + 0.3 * max(lines, 2) + 0.12 * len(rows))
    axes = figure.subplots()
    bars = axes.barh(wrapped[::-1], [h for _, h in rows][::-1], color=color, height=0.65)
    axes.bar_label(bars, [_number(h) for _, h in rows][::-1], padding=3, fontsize=_TICK)
    axes.set_xlabel("hours", fontsize=_LABEL)
    axes.margins(x=0.18)
    _tidy(axes, "x")
    axes.tick_params(axis="y", length=0)
    _title(figure, report, what)
    if note:
        _note(figure, note)
    return _svg(figure)


@dataclass(frozen=True)
class _HoursChart:
    """Bars of the hours of one list of the report's rows, saying how many were withheld."""

    what: str
    rows: Callable[[ContributionReport], Sequence[CategoryRow] | Sequence[FlowRow]]
    nouns: tuple[str, str]
    label: Callable[[Any], str]
    color: str

    def __call__(self, report: ContributionReport) -> bytes:
        rows = self.rows(report)
        shown = [row for row in rows if row.hours is not None]
        withheld = len(rows) - len(shown)
        if not shown:
            if withheld:
                return _empty(
                    report,
                    self.what,
                    f"Withheld: each {self.nouns[0]} involved fewer than {report.min_cell} people",
                )
            return _empty(report, self.what, "No exchanges in this period")
        note = _withheld(report, withheld, self.nouns, "each involved") if withheld else None
        labels = [self.label(row) for row in shown]
        hours = [row.hours or 0.0 for row in shown]
        return _bars(report, self.what, labels, hours, self.color, note)


def _flow(giver: str, receiver: str) -> str:
    return f"{_FLOW_KINDS.get(giver, giver)} → {_FLOW_KINDS.get(receiver, receiver)}"


categories_chart = _HoursChart(
    "Hours by kind of help",
    lambda report: report.categories,
    ("kind of help", "kinds of help"),
    lambda row: _literal(row.name),
    _INK,
)
flows_chart = _HoursChart(
    "Hours by who gave → who received",
    lambda report: report.flows,
    ("flow", "flows"),
    lambda row: _flow(row.giver_kind, row.receiver_kind),
    _ACCENT,
)


_CHARTS: dict[str, Callable[[ContributionReport], bytes]] = {
    "series": series_chart,
    "categories": categories_chart,
    "flows": flows_chart,
}


def draw(name: str, report: ContributionReport) -> bytes:
    return _CHARTS[name](report)
