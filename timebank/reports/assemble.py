"""Report rows as the API gives them, from the rows the repositories read: hours and shares
rounded one way everywhere, the series keyed by bucket, totals for the whole period."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from timebank.reports.schemas import (
    Bucket,
    CategoryRow,
    ContributionReport,
    FlowRow,
    Metrics,
    ReciprocityRow,
)


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def figures(report: ContributionReport) -> dict:
    """A period's figures and the labels its cells are named by (not its display names)."""
    return report.model_dump(exclude={"timebank_name": True, "categories": {"__all__": {"name"}}})


def reciprocity_row(row: Mapping) -> ReciprocityRow:
    given, received = row["given_minutes"], row["received_minutes"]
    most = max(given, received)
    return ReciprocityRow(
        **row,
        reciprocal=row["exchanges_given"] > 0 and row["exchanges_received"] > 0,
        reciprocity=round(min(given, received) / most, 4) if most else 0.0,
    )


def _by_bucket(rows: list[Mapping]) -> dict[date | None, Mapping]:
    return {row["bucket"]: row for row in rows}


def _metrics(bucket: date | None, parts: dict[str, dict], participants: int, new: int) -> dict:
    volume = parts["volume"].get(bucket, {})
    people = parts["people"].get(bucket, {})
    ties = parts["ties"].get(bucket, {})
    firsts = parts["firsts"].get(bucket, {})
    minutes = int(volume.get("minutes") or 0)
    active = people.get("active", 0)
    reciprocal = people.get("reciprocal", 0)
    tie_count = int(ties.get("ties") or 0)
    two_way = int(ties.get("two_way_ties") or 0)
    gifts = parts["gifts"].get(bucket, {})
    sessions = parts["sessions"].get(bucket, {})
    median = firsts.get("median_days")
    return {
        "minutes": minutes,
        "hours": _hours(minutes),
        "exchanges": int(volume.get("exchanges") or 0),
        "participants": participants,
        "active": active,
        "active_share": _share(active, participants),
        "new": new,
        "new_share": _share(new, participants),
        "reciprocal": reciprocal,
        "reciprocal_share": _share(reciprocal, active),
        "ties": tie_count,
        "two_way_ties": two_way,
        "two_way_tie_share": _share(two_way, tie_count),
        "first_exchanges": firsts.get("first_exchanges", 0),
        "median_days_to_first_exchange": float(median) if median is not None else None,
        **_kinds(gifts, sessions),
    }


def _kinds(gifts: Mapping, sessions: Mapping) -> dict[str, Any]:
    """The figures of gifts, grants and group sessions, and the people they rest on."""
    figures: dict[str, Any] = {}
    for name in ("gifted", "gifted_to_pot", "granted"):
        minutes = int(gifts.get(f"{name}_minutes") or 0)
        figures |= {f"{name}_minutes": minutes, f"{name}_hours": _hours(minutes)}
    session_minutes = int(sessions.get("session_minutes") or 0)
    figures |= {
        "sessions": int(sessions.get("sessions") or 0),
        "session_attendances": int(sessions.get("session_attendances") or 0),
        "session_minutes": session_minutes,
        "session_hours": _hours(session_minutes),
        "session_people": int(sessions.get("session_people") or 0),
    }
    for name in ("gift_givers", "gift_recipients", "pot_givers", "grant_recipients"):
        figures[name] = int(gifts.get(name) or 0)
    return figures


def _volume(row: Mapping) -> dict[str, Any]:
    minutes = int(row["minutes"])
    return {
        "minutes": minutes,
        "hours": _hours(minutes),
        "exchanges": row["exchanges"],
        "people": row["people"],
    }


def assemble(parts: dict[str, list[Mapping]], spans: list[tuple[date, date]]) -> dict:
    """The totals, the series by bucket (``spans``), the categories and the flows of a
    contribution report, from ``repository.contribution_parts``."""
    keyed = {
        name: _by_bucket(rows)
        for name, rows in parts.items()
        if name not in ("categories", "flows")
    }
    enrolled = keyed.pop("enrolled")
    series = []
    for first, last in spans:
        counts = enrolled.get(first, {})
        figures = _metrics(first, keyed, counts.get("participants", 0), counts.get("new", 0))
        series.append(Bucket.of(start=first, end=last, **figures))
    whole = enrolled.get(spans[-1][0], {}) if spans else {}
    new_in_period = sum(enrolled.get(first, {}).get("new", 0) for first, _ in spans)
    totals = _metrics(None, keyed, whole.get("participants", 0), new_in_period)
    return {
        "totals": Metrics.of(**totals),
        "series": series,
        "categories": [
            CategoryRow(category=row["category"], name=row["name"], **_volume(row))
            for row in parts["categories"]
        ],
        "flows": [
            FlowRow(
                giver_kind=row["giver_kind"], receiver_kind=row["receiver_kind"], **_volume(row)
            )
            for row in parts["flows"]
        ],
    }
