"""The funder view: every figure that rests on fewer than k people is withheld and named, so
that no person can be singled out (rules in the package docstring)."""

from __future__ import annotations

from typing import TypeVar

from timebank.reports.schemas import CategoryRow, FlowRow, Metrics

M = TypeVar("M", bound=Metrics)
R = TypeVar("R", CategoryRow, FlowRow)


def most_ties_among(people: int) -> int:
    """The most pairs that so many people can form: more two-way ties than that involve at
    least one more person."""
    return max(people, 0) * max(people - 1, 0) // 2


def suppress_metrics(metrics: M, k: int) -> M:
    hidden: set[str] = set()
    for count in ("participants", "active", "new", "reciprocal", "first_exchanges"):
        if (getattr(metrics, count) or 0) < k:
            hidden.add(count)
    if "active" in hidden:
        hidden |= {"minutes", "hours", "exchanges", "ties", "two_way_ties", "two_way_tie_share"}
    if (metrics.two_way_ties or 0) <= most_ties_among(k - 1):
        hidden |= {"two_way_ties", "two_way_tie_share"}
    for share, parts in (
        ("active_share", ("active", "participants")),
        ("new_share", ("new", "participants")),
        ("reciprocal_share", ("reciprocal", "active")),
    ):
        if hidden & set(parts):
            hidden.add(share)
    if "first_exchanges" in hidden:
        hidden.add("median_days_to_first_exchange")
    return metrics.model_copy(update={**dict.fromkeys(hidden), "suppressed": sorted(hidden)})


def suppress_row(row: R, k: int) -> R:
    if (row.people or 0) >= k:
        return row
    hidden = ["exchanges", "hours", "minutes", "people"]
    return row.model_copy(update={**dict.fromkeys(hidden), "suppressed": hidden})
