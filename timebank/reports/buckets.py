"""The buckets of a report's series: calendar months, ISO weeks (Monday first) or quarters,
clipped to the period. A bucket is named by its first day, as the SQL names it."""

from __future__ import annotations

from datetime import date, timedelta


def _truncate(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return day.replace(day=1)


def _next(first: date, interval: str) -> date:
    if interval == "week":
        return first + timedelta(days=7)
    months = 3 if interval == "quarter" else 1
    month = first.month - 1 + months
    return date(first.year + month // 12, month % 12 + 1, 1)


def buckets(start: date, end: date, interval: str) -> list[tuple[date, date]]:
    """(first day, last day) of each bucket from ``start`` to ``end`` inclusive."""
    spans = []
    cursor = _truncate(start, interval)
    while cursor <= end:
        following = _next(cursor, interval)
        spans.append((max(cursor, start), min(following - timedelta(days=1), end)))
        cursor = following
    return spans


def default_period(today: date) -> tuple[date, date]:
    """Twelve calendar months up to today: from the first of the month eleven months ago."""
    month = today.month - 1 - 11
    return date(today.year + month // 12, month % 12 + 1, 1), today
