"""Reports as CSV: one header row, the same figures as the JSON. Participant rows are streamed
from a connection of their own, a batch at a time, so memory stays flat however many rows."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from typing import Any

from timebank.reports.schemas import METRICS, ContributionReport

SUPPRESSED = "suppressed"

RECIPROCITY_COLUMNS = (
    "participant_id",
    "display_name",
    "kind",
    "given_minutes",
    "received_minutes",
    "exchanges_given",
    "exchanges_received",
    "partners",
    "reciprocal",
    "reciprocity",
)

CONTRIBUTION_COLUMNS = (
    "section",
    "start",
    "end",
    "category",
    "giver_kind",
    "receiver_kind",
    *METRICS,
    "people",
)


# A text cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def literal(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: prefixed with ' when it would start a formula.
    Numbers stay numbers (a balance of -90 is not text)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([literal(value) for value in values])
    return buffer.getvalue()


def _cell(row: dict, name: str) -> Any:
    if name in row.get("suppressed", ()):
        return SUPPRESSED
    value = row.get(name)
    return "" if value is None else value


async def reciprocity_csv(rows: AsyncIterator[dict]) -> AsyncIterator[str]:
    yield _line(RECIPROCITY_COLUMNS)
    async for row in rows:
        given, received = row["given_minutes"], row["received_minutes"]
        most = max(given, received)
        row = {
            **row,
            "reciprocal": row["exchanges_given"] > 0 and row["exchanges_received"] > 0,
            "reciprocity": round(min(given, received) / most, 4) if most else 0.0,
        }
        yield _line(row[name] for name in RECIPROCITY_COLUMNS)


def contribution_csv(report: ContributionReport) -> str:
    """Totals, then the series, then categories, then flows: one section per row kind."""
    lines = [_line(CONTRIBUTION_COLUMNS)]
    period = {"start": report.period.start, "end": report.period.end}
    sections: list[tuple[str, dict]] = [("totals", {**report.totals.model_dump(), **period})]
    sections += [("series", bucket.model_dump()) for bucket in report.series]
    sections += [("category", {**row.model_dump(), **period}) for row in report.categories]
    sections += [("flow", {**row.model_dump(), **period}) for row in report.flows]
    for section, row in sections:
        lines.append(_line([section, *(_cell(row, name) for name in CONTRIBUTION_COLUMNS[1:])]))
    return "".join(lines)
